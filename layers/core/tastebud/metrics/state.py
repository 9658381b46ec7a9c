"""What is served, as metrics: versions, their ages, freshness and dependency states, read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from tastebud.circuit import STATE_VALUES
from tastebud.serving_port import Serving


class StateCollector(Collector):
    """Versions, their ages and freshness, read from the live service at scrape time."""

    def __init__(self, provide: Callable[[], dict[str, Any] | None], clock: Callable[[], float]) -> None:
        self._provide = provide
        self._clock = clock

    def collect(self) -> Iterator[Any]:
        state = self._provide()
        if not state:
            return
        info = InfoMetricFamily("tastebud_version", "The artifact version being served")
        info.add_metric([], {k: str(state[k]) for k in ("version", "model_version", "index_version") if state.get(k)})
        yield info
        now = self._clock()
        for key, name, text in (("created_at", "tastebud_model_age_seconds", "Age of the live model (training time)"),
                                ("index_built_at", "tastebud_index_age_seconds", "Age of the live ANN index"),
                                ("data_read_at", "tastebud_data_age_seconds",
                                 "Age of the data the live version was trained on")):
            if state.get(key) is not None:
                yield GaugeMetricFamily(name, text, value=max(0.0, now - float(state[key])))
        if state.get("fresh_items") is not None:
            yield GaugeMetricFamily("tastebud_fresh_items", "Items served from the fresh-items side index (added "
                                    "since the index was built; folded in by the next rebuild)",
                                    value=float(state["fresh_items"]))
        if state.get("catalog_items") is not None:
            yield GaugeMetricFamily("tastebud_catalog_items", "Items in the live catalog",
                                    value=float(state["catalog_items"]))
        dependencies = state.get("dependencies") or {}
        if dependencies:
            gauge = GaugeMetricFamily("tastebud_dependency_state", "Each dependency as /health/ready reports it: "
                                      "0 ok, 1 degraded (failures counting or circuit half-open), 2 down (circuit "
                                      "open: calls skipped)", labels=["dependency"])
            for name, value in sorted(dependencies.items()):
                gauge.add_metric([name], float(STATE_VALUES.get(value, 2)))
            yield gauge


def service_state(serving: Serving) -> dict[str, Any]:
    """Versions, freshness and dependency states of what is served (``Serving.state``: on AWS, the versions and
    the circuit breakers; embedded, also the version's age and the items added since)."""
    served = serving.state()
    versions = served.versions
    state: dict[str, Any] = {"version": served.version_name,
                             "model_version": versions.model_version, "index_version": versions.index_version,
                             "catalog_items": int(served.catalog.size), "dependencies": serving.dependencies()}
    if served.created_at is not None:
        state["created_at"] = served.created_at
        state["index_built_at"] = served.created_at  # the index is built with the model, in one version
        state["data_read_at"] = served.data_read_at
        state["fresh_items"] = served.fresh_items
    return state
