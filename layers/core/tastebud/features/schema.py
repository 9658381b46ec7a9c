"""The ranker's feature columns: their names, order and version, shared by training, serving and the stored
models (a version whose names differ is refused)."""

from __future__ import annotations

from tastebud.features.basket import BASKET_FEATURES
from tastebud.features.history import DECAY_HALF_LIVES_DAYS

FEATURE_VERSION = "ranker-features-v4"
# Σ 0.5^(age / half-life) over the user's purchases of the item, exact (tastebud.features.history.decayed_purchases):
# the time-aware intensity of the next-basket literature at a few time scales, and the ranker's prior (ranker_prior).
DECAYED_FEATURES = tuple(f"decayed_purchases_{h:g}d" for h in DECAY_HALF_LIVES_DAYS)

FEATURE_NAMES: tuple[str, ...] = (
    # Retrieval inputs as ranks and per-request z-scores: the ranker is trained on a two-tower fitted at the feature
    # cut and served behind a refit one, whose raw scores live in another embedding space (no skew by construction).
    "retrieval_rank",
    "from_history",
    "from_popular",
    "log_popularity",
    "log_recent_popularity",
    "item_ctr",
    "user_item_weight",
    "user_item_recency_rank",
    "category_affinity",
    "merchant_affinity",
    "domain_affinity",
    "price_ratio",
    "log_price",
    "distance_km",
    "item_age_days",
    "merchant_age_days",
    "hour_of_day",
    "day_of_week",
    "domain",
    "user_log_positives",
    "user_history_len",
    "retrieval_score_z",
    # Re-consumption (tastebud.features.history.REPEAT_COLUMNS and the catalog's item statistics): purchases only.
    "user_item_purchases",
    "user_item_purchase_share",
    "days_since_item_purchase",
    "user_item_reorder_days",
    "item_due_ratio",
    "days_since_category_purchase",
    "category_due_ratio",
    "item_repeat_rate",
    "item_reorder_days",
    "bought_together_max",
    "bought_together_sum",
    "item_hour_affinity",
    "item_weekday_affinity",
    "domain_hour_affinity",
    "from_bought_together",
    # Grocery timing counted in baskets (tastebud.features.basket).
    *BASKET_FEATURES,
    *DECAYED_FEATURES,
    # Item-kNN over shoppers (catalog.similar) against the user's decayed purchases: the explore signal.
    "same_shoppers_score",
    "from_same_shoppers",
)

COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
# The repeat features that come from the user's history (the rest come from the catalog and the candidate).
USER_REPEAT_FEATURES = ("user_item_purchases", "user_item_purchase_share", "days_since_item_purchase",
                        "user_item_reorder_days", "item_due_ratio", "days_since_category_purchase",
                        "category_due_ratio", "bought_together_max", "bought_together_sum", "item_hour_affinity",
                        "item_weekday_affinity", "domain_hour_affinity", *BASKET_FEATURES,
                        *DECAYED_FEATURES, "same_shoppers_score")
