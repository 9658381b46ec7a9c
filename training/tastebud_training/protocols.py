"""Evaluation protocols on a log of positives: what is the truth after a cutoff, and when is it asked for.

Shared by `tastebud evaluate`, the baselines that choose their settings on the training period, and training (the
ranker's prior chooses its half-life the same way), so every place splits a log the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tastebud_training.data import POSITIVE_EVENTS

PROTOCOLS = ("window", "next-basket")
__all__ = ["PROTOCOLS", "first_baskets", "positives_with_rows", "split_positives"]


def positives_with_rows(interactions: pd.DataFrame, catalog_ids: np.ndarray) -> pd.DataFrame:
    """Positive events with their catalog row and basket key (the session id; the timestamp where there is none)."""
    pos = interactions[interactions["event_type"].isin(POSITIVE_EVENTS)]
    sessions = pos["session_id"].astype(str) if "session_id" in pos else pd.Series("", index=pos.index)
    basket = sessions.where(sessions != "", "ts:" + pos["ts"].astype(str))
    return pos.assign(row=pd.Index(catalog_ids).get_indexer(pos["item_id"].to_numpy()), basket=basket.to_numpy())


def first_baskets(after: pd.DataFrame) -> pd.DataFrame:
    """Each user's first basket after the cutoff: the rows sharing the basket key of the user's earliest row."""
    ordered = after.sort_values(["user_id", "ts"], kind="stable")
    first = ordered.groupby("user_id")["basket"].first()
    return ordered[ordered["basket"].to_numpy() == ordered["user_id"].map(first).to_numpy()]


def split_positives(pos: pd.DataFrame, cutoff: float, protocol: str
                    ) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Per test user (positives on both sides of ``cutoff``): rows seen before, truth rows, request time, baskets.

    ``window``: the truth is every positive after the cutoff, requested at the first one's time. ``next-basket``:
    the truth is the first basket after the cutoff, requested at its start (the next-basket literature's protocol).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    before, after = pos[pos["ts"] < cutoff], pos[pos["ts"] >= cutoff]
    after = after[after["user_id"].isin(before["user_id"].unique())]
    if protocol == "next-basket":
        after = first_baskets(after)
    truth = after.groupby("user_id")["row"].agg(set)
    before = before[before["user_id"].isin(truth.index)]
    return (before.groupby("user_id")["row"].agg(set), truth, after.groupby("user_id")["ts"].min(),
            before.groupby("user_id")["basket"].nunique())
