"""The ``explain`` block of a recommendation response (``"explain": true``): how each stage changed the page."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExplainedItem(BaseModel):
    item_id: str
    title: str


class RerankEntry(ExplainedItem):
    retrieval_rank: int
    rerank_rank: int


class FairnessMove(ExplainedItem):
    from_rank: int = Field(description="rank after re-ranking")
    to_rank: int = Field(description="rank after fairness and diversity")
    why: list[str]


class StockRemoval(ExplainedItem):
    rank_before: int = Field(description="its rank after fairness, before the stock filter")


class ExplainUser(BaseModel):
    known: bool
    history_items: int
    cold_start: bool = Field(description="no history: popularity and content features carry the page")
    location: dict[str, float] | None


class ExplainCandidates(BaseModel):
    by_source: dict[str, int] = Field(
        description="ann, history, popular, fresh, bought_together, same_shoppers (a candidate may have several)")
    retrieved: int
    reranked: int
    after_fairness: int
    stock_checked: int
    returned: int


class ExplainRerank(BaseModel):
    reordered: int = Field(description="candidates whose rank the ranker changed")
    entered_top_k: list[RerankEntry] = Field(description="items the ranker brought into the top k (first 20)")
    entered_top_k_count: int


class ExplainFairness(BaseModel):
    moved: int
    moves: list[FairnessMove] = Field(description="largest moves first (first 20)")
    new_merchant_boosts: int
    merchant_capped: int


class ExplainStock(BaseModel):
    removed_count: int
    removed: list[StockRemoval] = Field(description="out-of-stock items skipped before the page filled (first 20)")


class Explain(BaseModel):
    user: ExplainUser | None = None
    stage_ms: dict[str, float] = Field(description="retrieve, user_tower, knn, rerank, fairness, stock, total")
    degraded: list[str]
    candidates: ExplainCandidates | None = None
    rerank: ExplainRerank | None = None
    fairness: ExplainFairness | None = None
    stock: ExplainStock | None = None
