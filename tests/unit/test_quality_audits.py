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
