"""Serving metrics: ONE definition of each metric, three outlets.

``observations(result, trace)`` is the only place that turns a served request into metric values. The same
values go to:

* Prometheus (``prometheus_client`` histograms/counters in a registry per app; ``GET /metrics``),
* a recent window per series (``GET /metrics.json``: p50/p99 over the last ``window_s`` seconds, rates) that the
  dashboard page reads,
* CloudWatch on AWS through the Powertools ``Metrics`` the Lambda handler already flushes as EMF
  (``emit_powertools``; names ``<stage>_ms``, ``degraded_<stage>``, ``candidates_<stage>``, ...).

Stage latency: ``user_tower`` and ``knn`` are stage 1's two halves (the query embedding, then the ANN +
fresh-items search); ``retrieve`` is the whole stage (both halves plus history/popular merging and filters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tastebud.domain import (
    SOURCE_ANN,
    SOURCE_FRESH,
    SOURCE_HISTORY,
    SOURCE_POPULAR,
    SOURCE_RELATED,
    SOURCE_SIMILAR,
)
from tastebud.metrics.state import StateCollector
from tastebud.metrics.window import RecentWindow, percentile

# The seed plan's per-stage budget (ms). The retrieve budget covers its two halves (user tower + k-NN).
TARGET_MS: dict[str, float] = {"retrieve": 70.0, "user_tower": 70.0, "knn": 70.0, "rerank": 25.0, "fairness": 10.0,
                               "stock": 10.0, "total": 115.0}
LATENCY_STAGES = ("user_tower", "knn", "retrieve", "rerank", "fairness", "stock", "total")
COUNT_STAGES = ("retrieve", "rerank", "fairness", "stock")  # candidates left after each stage
SOURCES = {"ann": SOURCE_ANN, "history": SOURCE_HISTORY, "popular": SOURCE_POPULAR, "fresh": SOURCE_FRESH,
           "bought_together": SOURCE_RELATED, "same_shoppers": SOURCE_SIMILAR}
# Stages that can degrade (fall back) and report it in ``Recommendation.degraded``.
DEGRADABLE = ("features", "live_state", "retrieve", "rerank", "stock")
# Stages that catch a BUG (an unexpected exception), log it with its stack and serve a fallback
# (``tastebud.pipeline.stages.failures``); each such request also counts in tastebud_stage_errors_total{stage}.
ERROR_STAGES = ("retrieve", "rerank")
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.07, 0.1, 0.115, 0.25, 0.5,
                     1.0, 2.5)
COUNT_BUCKETS = (0, 1, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000, 4000)
LAG_BUCKETS_S = (0.1, 1, 5, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
DEFAULT_WINDOW_S = 300.0


@dataclass(frozen=True)
class MetricDef:
    """One metric: its Prometheus name, help, label name, and the EMF name pattern on AWS."""

    prometheus: str
    help: str
    label: str | None
    emf: str  # ``{label}`` is replaced by the label value
    emf_unit: str  # Powertools MetricUnit name


LATENCY = MetricDef("tastebud_stage_latency_seconds", "Time spent in each serving stage per request", "stage",
                    "{label}_ms", "Milliseconds")
CANDIDATES = MetricDef("tastebud_stage_candidates", "Candidates left after each stage per request", "stage",
                       "candidates_{label}", "Count")
SOURCE_CANDIDATES = MetricDef("tastebud_retrieved_candidates", "Candidates retrieved per source per request "
                              "(a candidate found by two sources counts for both)", "source",
                              "candidates_source_{label}", "Count")
DEGRADED = MetricDef("tastebud_stage_degraded_total", "Requests on which a stage degraded (fell back)", "stage",
                     "degraded_{label}", "Count")
STAGE_ERRORS = MetricDef("tastebud_stage_errors_total", "Requests on which a stage failed with a bug (an unexpected "
                         "exception, logged with its stack) and served its fallback; outages are not counted here",
                         "stage", "errors_{label}", "Count")
DEGRADED_REQUESTS = MetricDef("tastebud_degraded_requests_total", "Requests with at least one degraded stage",
                              None, "degraded_requests", "Count")
RECOMMENDATIONS = MetricDef("tastebud_recommendations_total", "Recommendation requests served", None,
                            "recommendations", "Count")
REQUESTS = MetricDef("tastebud_http_requests_total", "HTTP requests by route and status", "route", "", "")
EVENT_LAG = MetricDef("tastebud_event_lag_seconds", "Received time minus event time of accepted events", None,
                      "event_lag_s", "Seconds")


@dataclass(frozen=True)
class Observation:
    metric: MetricDef
    label: str | None
    value: float


def observations(result: Any, trace: Any = None) -> list[Observation]:
    """The metric values of one served recommendation (``Recommendation`` + optional ``StageTrace``)."""
    out = [Observation(RECOMMENDATIONS, None, 1.0)]
    stage_ms = dict(result.stage_ms)
    if trace is not None:
        stage_ms.update(trace.timings)
    out += [Observation(LATENCY, stage, float(stage_ms[stage])) for stage in LATENCY_STAGES if stage in stage_ms]
    out += [Observation(DEGRADED, stage, 1.0) for stage in result.degraded]
    out += [Observation(STAGE_ERRORS, stage, 1.0) for stage in getattr(result, "stage_errors", ())]
    out.append(Observation(DEGRADED_REQUESTS, None, 1.0 if result.degraded else 0.0))
    if trace is not None and trace.retrieved is not None:
        sources = trace.retrieved.sources
        out += [Observation(SOURCE_CANDIDATES, name, float(np.count_nonzero(sources & bit)))
                for name, bit in SOURCES.items()]
        n = float(len(trace.retrieved))
        ranked = float(len(trace.ranked)) if trace.ranked is not None else n
        out += [Observation(CANDIDATES, "retrieve", n), Observation(CANDIDATES, "rerank", n),
                Observation(CANDIDATES, "fairness", ranked)]
    out.append(Observation(CANDIDATES, "stock", float(len(result.items))))
    return out


def emit_powertools(metrics: Any, obs: Iterable[Observation]) -> None:
    """The same observations as CloudWatch EMF metrics (Powertools ``Metrics.add_metric``)."""
    from aws_lambda_powertools.metrics import MetricUnit

    for o in obs:
        if not o.metric.emf:
            continue
        name = o.metric.emf.format(label=o.label)
        metrics.add_metric(name=name, unit=MetricUnit[o.metric.emf_unit], value=o.value)


class ServingMetrics:
    """The serving metrics of one process (one per app): Prometheus registry + recent window."""

    def __init__(self, *, window_s: float = DEFAULT_WINDOW_S, clock: Callable[[], float] = time.time,
                 state: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._started = clock()
        self.window = RecentWindow(window_s, clock)
        self._state = state
        self._histograms = {
            LATENCY: Histogram(LATENCY.prometheus, LATENCY.help, ["stage"], buckets=LATENCY_BUCKETS_S,
                               registry=self.registry),
            CANDIDATES: Histogram(CANDIDATES.prometheus, CANDIDATES.help, ["stage"], buckets=COUNT_BUCKETS,
                                  registry=self.registry),
            SOURCE_CANDIDATES: Histogram(SOURCE_CANDIDATES.prometheus, SOURCE_CANDIDATES.help, ["source"],
                                         buckets=COUNT_BUCKETS, registry=self.registry),
            EVENT_LAG: Histogram(EVENT_LAG.prometheus, EVENT_LAG.help, buckets=LAG_BUCKETS_S, registry=self.registry),
        }
        # prometheus_client appends ``_total`` to counter names itself.
        self._counters = {
            metric: Counter(metric.prometheus.removesuffix("_total"), metric.help,
                            [metric.label] if metric.label else [], registry=self.registry)
            for metric in (DEGRADED, STAGE_ERRORS, DEGRADED_REQUESTS, RECOMMENDATIONS)
        }
        self._requests = Counter(REQUESTS.prometheus.removesuffix("_total"), REQUESTS.help, ["route", "status"],
                                 registry=self.registry)
        for stage in LATENCY_STAGES:  # every series exists from the start (0 samples), so scrapes see them
            self._histograms[LATENCY].labels(stage)
        for stage in DEGRADABLE:
            self._counters[DEGRADED].labels(stage)
        for stage in ERROR_STAGES:
            self._counters[STAGE_ERRORS].labels(stage)
        self._writers: dict[tuple[MetricDef, str | None], Callable[[float], None]] = {}
        self.registry.register(StateCollector(self._read_state, clock))

    def set_state(self, state: Callable[[], dict[str, Any] | None]) -> None:
        self._state = state

    def _read_state(self) -> dict[str, Any] | None:
        if self._state is None:
            return None
        try:
            return self._state()
        except Exception:  # the service is not ready yet (no version loaded): no version metrics
            return None

    # -- recording ------------------------------------------------------------------------------------------------

    def record(self, obs: Iterable[Observation]) -> None:
        samples = []
        writers = self._writers
        for o in obs:
            write = writers.get((o.metric, o.label))
            if write is None:
                write = writers[(o.metric, o.label)] = self._writer(o.metric, o.label)
            write(o.value)
            samples.append(((o.metric.prometheus, o.label), o.value))
        self.window.add_all(samples, self._clock())

    def _writer(self, metric: MetricDef, label: str | None) -> Callable[[float], None]:
        """One series' Prometheus call, resolved once: ``labels()`` takes a lock and builds a key on every call, and a
        request records ~20 observations (49 -> 29 us per request for the whole of ``record``, docs/BENCHMARKS.md)."""
        histogram = self._histograms.get(metric)
        if histogram is not None:
            observe = (histogram.labels(label) if label else histogram).observe
            return (lambda value: observe(value / 1000)) if metric is LATENCY else observe
        counter = self._counters[metric]
        inc = (counter.labels(label) if label else counter).inc

        def count(value: float) -> None:
            if value:
                inc(value)

        return count

    def record_request(self, route: str, status: int) -> None:
        self._requests.labels(route, str(status)).inc()
        self.window.add((REQUESTS.prometheus, f"{status // 100}xx"), 1.0, self._clock())

    def record_event_lags(self, lags_s: Iterable[float]) -> None:
        self.record(Observation(EVENT_LAG, None, max(0.0, float(lag))) for lag in lags_s)

    # -- reading --------------------------------------------------------------------------------------------------

    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """What the dashboard reads: per stage p50/p99 over the window, rates, candidate counts, versions.

        A number that has no sample in the window is ``None`` ("no data yet" on the page), never 0.
        """
        window = self.window
        now = self._clock()
        span = max(1e-9, min(window.window_s, now - self._started))
        served = window.values((RECOMMENDATIONS.prometheus, None))
        n = int(served.size)
        stages: dict[str, Any] = {}
        for stage in LATENCY_STAGES:
            values = window.values((LATENCY.prometheus, stage))
            stages[stage] = {
                "target_ms": TARGET_MS[stage],
                "count": int(values.size),
                "p50_ms": percentile(values, 50) if values.size else None,
                "p99_ms": percentile(values, 99) if values.size else None,
            }
        for stage in DEGRADABLE:
            count = int(window.values((DEGRADED.prometheus, stage)).size)
            stages.setdefault(stage, {})["degraded_rate"] = round(count / n, 4) if n else None
        for stage in ERROR_STAGES:  # bugs caught in the window (a count: any non-zero value needs a look at the logs)
            stages[stage]["errors"] = int(window.values((STAGE_ERRORS.prometheus, stage)).size)
        for stage in COUNT_STAGES:
            values = window.values((CANDIDATES.prometheus, stage))
            stages[stage]["candidates_mean"] = round(float(values.mean()), 1) if values.size else None
        sources = {}
        for name in SOURCES:
            values = window.values((SOURCE_CANDIDATES.prometheus, name))
            sources[name] = round(float(values.mean()), 1) if values.size else None
        degraded_requests = window.values((DEGRADED_REQUESTS.prometheus, None))
        statuses = {cls: int(window.values((REQUESTS.prometheus, cls)).size) for cls in ("2xx", "4xx", "5xx")}
        lags = window.values((EVENT_LAG.prometheus, None))
        state = self._read_state() or {}
        versions: dict[str, Any] = {k: state.get(k) for k in ("version", "model_version", "index_version")}
        for key, out in (("created_at", "model_age_s"), ("index_built_at", "index_age_s"),
                         ("data_read_at", "data_age_s")):
            versions[out] = round(now - float(state[key]), 1) if state.get(key) is not None else None
        return {
            "window_s": window.window_s,
            "generated_at": now,
            "requests": n,
            "requests_per_s": round(n / span, 3),
            "http": {**statuses, "errors_per_s": round(statuses["5xx"] / span, 3)},
            "degraded_rate": round(float(degraded_requests.mean()), 4) if degraded_requests.size else None,
            "stages": stages,
            "sources": sources,
            "versions": versions,
            "freshness": {
                "fresh_items": state.get("fresh_items"),
                "catalog_items": state.get("catalog_items"),
                "event_lag_p50_s": percentile(lags, 50) if lags.size else None,
                "event_lag_p99_s": percentile(lags, 99) if lags.size else None,
            },
            "dependencies": state.get("dependencies") or {},
        }
