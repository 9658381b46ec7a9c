"""The fairness audit's exposure share and the cross-domain study's single-domain log, on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.settings import ServingKnobs
from tastebud_training.cross_domain import domain_only
from tastebud_training.exposure import exposure_share

from factories import NOW, make_catalog


def test_exposure_share_counts_new_and_unpopular_merchants_in_the_top_k() -> None:
    # make_catalog: merchant = row % 4, popularity percentiles 0, 1/3, 2/3, 1; merchant 3 is new.
    catalog = make_catalog(12, n_merchants=4, new_merchants=(3,))
    knobs = ServingKnobs(emerging_popularity_pct=0.5)  # merchants 0 and 1 are the less popular half
    lists = [np.asarray([0, 1, 2, 3]), np.asarray([2, 6]), np.asarray([], dtype=np.int64)]
    share = exposure_share(lists, [NOW, NOW, NOW], catalog, knobs, k=4)
    assert share == pytest.approx(np.mean([3 / 4, 0 / 4, 0.0]))  # rows 0, 1 (unpopular) and 3 (new)
    # Without the popularity criterion only the new merchant counts.
    assert exposure_share(lists[:1], [NOW], catalog, ServingKnobs(emerging_popularity_pct=0.0), k=4) == 0.25


def test_domain_only_keeps_one_domains_interactions_and_the_whole_catalog(tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    grocery = domain_only(tiny_dataset, "grocery")
    domain_of = tiny_dataset.items.set_index("item_id")["merchant_id"].map(
        tiny_dataset.merchants.set_index("merchant_id")["domain"])
    assert set(grocery.interactions["item_id"].map(domain_of)) == {"grocery"}
    assert len(grocery.items) == len(tiny_dataset.items) and len(grocery.users) == len(tiny_dataset.users)
    restaurant = domain_only(tiny_dataset, "restaurant")
    assert len(grocery.interactions) + len(restaurant.interactions) == len(tiny_dataset.interactions)


def test_fairness_audit_reports_shares_costs_and_whether_the_floor_holds() -> None:
    from tastebud_training.evaluate import fairness_audit
    from tastebud_training.evaluation_report import render_markdown

    models = {"tastebud": {"ndcg@10": 0.29, "exposure@20": 0.18},
              "tastebud_no_fairness": {"ndcg@10": 0.30, "exposure@20": 0.10},
              "tastebud_exposure_floor": {"ndcg@10": 0.294, "exposure@20": 0.25}}
    audit = fairness_audit(models, 0.25, ServingKnobs())
    assert audit["floor_met"] and audit["enforced_by"] == "tastebud_exposure_floor"
    assert audit["ndcg@10_cost_of_fairness_stage"] == pytest.approx(1 / 30)
    assert audit["ndcg@10_cost_with_floor"] == pytest.approx(0.02)
    scores = {f"{m}@{k}": 0.1 for m in ("recall", "ndcg") for k in (10, 20, 50, 100, 200)}
    report = {"split": {"kind": "global-temporal", "cutoff_quantile": 0.9, "cutoff": "x", "test_users": 3,
                        "test_positives": 5, "exclude_seen": False},
              "models": {name: {**scores, "exposure@20": 0.2} for name in models}, "fairness": audit,
              "cross_domain": {"domains": {"grocery": {"test_users": 4, "models": {
                  "both_domains": {"ndcg@10": 0.3, "recall@20": 0.4, "recall@100": 0.5},
                  "grocery_only": {"ndcg@10": 0.2, "recall@20": 0.3, "recall@100": 0.4}}}}}}
    page = render_markdown(report, "tastebud evaluate")
    assert "25.0% of the top 20 with `tastebud_exposure_floor` against a floor of 25% (met)" in page
    assert "| grocery | both domains | 4 | 0.3000 | 0.4000 | 0.5000 |" in page
