"""Real models on tiny simulated data: training output, ONNX parity, serving with a real embedded Redis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from tastebud.artifacts import USER_TOWER, USER_TOWER_INT8, LocalArtifactStore, Manifest
from tastebud.composition.local import build_runtime, load_stages
from tastebud.domain import RequestContext
from tastebud.errors import ArtifactMismatchError
from tastebud.features.ranker_features import ranker_features
from tastebud.features.ranker_prior import RankerPrior, TreesOverPrior
from tastebud.features.schema import FEATURE_NAMES
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs, Settings

from factories import version_config

pytestmark = pytest.mark.slow
# One evaluation version for the evaluation tests (trained by the first, reused by the others): three ranker seeds,
# and no two-tower refit (it only freshens the towers on the ranker's label window; these tests check the reports'
# contents, not their numbers).
EVALUATION_CONFIG = version_config(max_ranker_groups=800, ranker_seeds=3)
SEED_MODELS = {"tastebud[seed 8]", "tastebud[seed 9]"}


def test_manifest_describes_the_version(tiny_artifacts: Path) -> None:
    store = LocalArtifactStore(tiny_artifacts)
    manifest = Manifest.read(store.current_dir())
    assert manifest.retrieval["kind"] == "two_tower" and manifest.retrieval["dimension"] == 128
    assert manifest.ranker["features"] == list(FEATURE_NAMES)
    assert manifest.ranker["onnx_parity_max_abs"] <= 1e-4
    skew = manifest.ranker["retrieval_skew"]  # the refit two-tower moves raw scores; ranks and z-scores move less
    assert skew["requests"] > 0 and skew["rank_abs_change"] <= 1.0
    assert set(manifest.files) >= {"catalog.npz", "users.npz", "ranker.onnx", "index", "index_vectors.npy",
                                   "text_vectors.npy", "user_tower.onnx"}


def test_the_int8_user_tower_is_served_when_it_retrieves_what_float32_does(tiny_artifacts: Path) -> None:
    manifest = Manifest.read(LocalArtifactStore(tiny_artifacts).current_dir())
    int8 = manifest.retrieval["user_tower_int8"]
    assert int8["queries"] > 0 and 0.0 <= int8["neighbour_agreement_min"] <= int8["neighbour_agreement_mean"] <= 1.0
    assert int8["published"] == (int8["neighbour_agreement_mean"] >= int8["threshold"])
    served = USER_TOWER_INT8 if int8["published"] else USER_TOWER
    assert manifest.retrieval["user_tower"] == served
    assert (USER_TOWER_INT8 in manifest.files) == int8["published"]  # a rejected int8 file is not left behind
    stages = load_stages(tiny_artifacts, ServingKnobs())
    assert stages.retriever.encoder.model_path.name == served  # type: ignore[attr-defined]


def test_onnx_ranker_matches_xgboost_on_real_candidates(tiny_artifacts: Path, active_user: str) -> None:
    """Parity on features from the real pipeline (not random numbers): same scores, same order."""
    stages = load_stages(tiny_artifacts, ServingKnobs())
    user = stages.users.user(active_user)
    context = RequestContext(now=stages.catalog.as_of)
    candidates = stages.retriever.run(RequestState(user, context))
    features = ranker_features(stages.catalog, user, candidates, context)
    served = stages.reranker._ranker
    booster = xgb.Booster()
    booster.load_model(stages.directory / "ranker.xgb.json")
    manifest = stages.manifest
    trees = dict(iteration_range=(0, manifest.ranker["best_iteration"] + 1), output_margin=True)
    xgb_scores = booster.predict(xgb.DMatrix(features, missing=np.nan), **trees)
    # The trees were fitted on top of the "buy again" prior (XGBoost base_margin); serving adds it to the ONNX trees.
    prior = RankerPrior.from_manifest(manifest.ranker)
    assert isinstance(served, TreesOverPrior) == (prior is not None)
    onnx_trees = served._trees.score(features) if isinstance(served, TreesOverPrior) else served.score(features)
    np.testing.assert_allclose(onnx_trees, xgb_scores, atol=1e-5)
    margin = prior.scores(features) if prior is not None else np.zeros(len(features), np.float32)
    np.testing.assert_allclose(served.score(features), onnx_trees + margin, atol=1e-5)
    with_margin = booster.predict(xgb.DMatrix(features, missing=np.nan, base_margin=margin), **trees)
    served_order = np.argsort(-served.score(features), kind="stable")
    assert np.array_equal(served_order, np.argsort(-with_margin, kind="stable"))


def test_recommendations_are_k_unique_in_stock_items(service, active_user: str) -> None:  # type: ignore[no-untyped-def]
    result = service.recommend(active_user, k=10)
    ids = [item.item_id for item in result.items]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert not service.stock.out_of_stock(ids).any()
    assert result.degraded == []
    assert all(ms >= 0 for ms in result.stage_ms.values())


def test_out_of_stock_item_disappears_from_the_next_answer(service, active_user: str) -> None:  # type: ignore[no-untyped-def]
    first = service.recommend(active_user, k=10)
    top = first.items[0].item_id
    service.set_stock(top, in_stock=False, quantity=None)
    second = service.recommend(active_user, k=10)
    assert top not in {item.item_id for item in second.items}
    assert len(second.items) == 10  # over-fetch keeps the page full
    service.set_stock(top, in_stock=True, quantity=5)
    assert top in {item.item_id for item in service.recommend(active_user, k=10).items}


def test_stock_snapshot_from_the_data_is_applied(service, tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    out = tiny_dataset.stock.loc[~tiny_dataset.stock["in_stock"], "item_id"].tolist()
    assert out and service.stock.out_of_stock(out).all()


def test_cold_and_unknown_users_get_a_full_page(service) -> None:  # type: ignore[no-untyped-def]
    result = service.recommend("somebody-new", k=20)
    assert len(result.items) == 20 and result.degraded == []


def test_domain_filter_on_real_data(service, active_user: str) -> None:  # type: ignore[no-untyped-def]
    for domain in ("restaurant", "grocery"):
        items = service.recommend(active_user, k=10, domain=domain).items
        assert items and {item.domain for item in items} == {domain}


def test_serving_refuses_artifacts_with_other_features(tiny_artifacts: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, copy, ignore=shutil.ignore_patterns("evaluation", "cache", "*.rdb"))
    directory = LocalArtifactStore(copy).current_dir()
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["feature_version"] = "ranker-features-v0"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactMismatchError, match="retrain"):
        build_runtime(Settings(artifacts=copy, redis_db_path=tmp_path / "s.rdb"))


def test_failed_training_publishes_nothing(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tastebud_training.data import Dataset
    from tastebud_training.train import TrainConfig, train

    impressions_only = tiny_dataset.interactions[tiny_dataset.interactions["event_type"] == "impression"]
    broken = Dataset(tiny_dataset.merchants, tiny_dataset.items, tiny_dataset.users, impressions_only, None,
                     tiny_dataset.source)
    with pytest.raises(ValueError, match="no positive interactions"):
        train(broken, tmp_path, TrainConfig(progress=False))
    assert not (tmp_path / "CURRENT").exists()
    assert not [p for p in (tmp_path / "versions").iterdir()]  # no staging directory left behind


def test_evaluate_reports_every_model_on_one_split(tiny_dataset, tiny_artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    from tastebud_training.evaluate import evaluate

    report = evaluate(tiny_dataset, tiny_artifacts, config=EVALUATION_CONFIG)
    assert report["split"]["test_users"] > 0 and report["split"]["cutoff_quantile"] == 0.9
    assert set(report["models"]) - SEED_MODELS == {"tastebud", "tastebud_no_fairness", "tastebud_exposure_floor",
                                     "content_retrieval", "two_tower_retrieval", "popularity", "personal_history",
                                     "ials", "ease", "decayed_history", "tifu_knn"}
    for scores in report["models"].values():
        assert set(scores) - {"cold_recall@50", "cold_recall@100", "cold_recall@200"} == {
            f"{m}@{k}" for m in ("recall", "ndcg") for k in (10, 20, 50, 100, 200)} | {"exposure@20"}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    audit = report["fairness"]  # the default audit floor, enforced in its own run of the pipeline
    assert audit["floor"] == 0.2 and audit["enforced_by"] == "tastebud_exposure_floor"
    assert audit["shares"]["tastebud_exposure_floor"] >= audit["shares"]["tastebud_no_fairness"]
    # Evaluation models never see the test period: trained with interactions strictly before the cutoff.
    evaluation_dirs = list((tiny_artifacts / "evaluation").iterdir())
    manifest = Manifest.read(LocalArtifactStore(evaluation_dirs[0]).current_dir())
    assert manifest.data["as_of"] <= pd_timestamp(report["split"]["cutoff"])
    # Every model against the stronger "buy again" baseline, with a paired-bootstrap interval around its gap.
    intervals = report["intervals"]
    assert intervals["reference"] in ("personal_history", "decayed_history")
    assert set(intervals["models"]) == set(report["models"]) - {intervals["reference"]}
    for versus in intervals["models"].values():
        for gap in versus.values():
            assert gap["low"] <= gap["relative"] <= gap["high"] and gap["users"] == report["split"]["test_users"]
    assert report["split"]["decayed_half_life_days"] in (7, 14, 30, 60, 120, 240, 480)
    assert sum(bucket["users"] for bucket in report["history_buckets"].values()) == report["split"]["test_users"]
    assert {"repeat_ndcg@10", "explore_recall@20"} <= set(report["breakdown"]["tastebud"])


def test_evaluate_next_basket_scores_the_first_basket_after_the_cutoff(tiny_dataset, tiny_artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    from tastebud_training.evaluate import evaluate
    from tastebud_training.evaluation_report import render_markdown

    window = evaluate(tiny_dataset, tiny_artifacts, config=EVALUATION_CONFIG)
    basket = evaluate(tiny_dataset, tiny_artifacts, config=EVALUATION_CONFIG,
                      protocol="next-basket")  # the same models (cached): only the truth and request times change
    assert basket["split"]["protocol"] == "next-basket" and basket["split"]["cutoff"] == window["split"]["cutoff"]
    assert basket["split"]["test_users"] == window["split"]["test_users"]
    assert basket["split"]["test_positives"] < window["split"]["test_positives"]
    page = render_markdown(basket, "tastebud evaluate --protocol next-basket")
    assert "protocol next-basket" in page and "95% intervals" in page


def test_evaluate_reports_the_mean_of_three_ranker_seeds(tiny_dataset, tiny_artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    from tastebud_training.evaluate import evaluate
    from tastebud_training.evaluation_report import render_markdown

    report = evaluate(tiny_dataset, tiny_artifacts, config=EVALUATION_CONFIG, protocol="next-basket")
    seeds = report["ranker_seeds"]
    assert seeds["models"] == ["tastebud", "tastebud[seed 8]", "tastebud[seed 9]"]
    assert {"tastebud[seed 8]", "tastebud[seed 9]"} <= set(report["models"])
    for metric in ("ndcg@10", "recall@20"):
        entry = seeds[metric]
        assert entry["per_seed"] == [report["models"][name][metric] for name in seeds["models"]]
        assert entry["mean"] == pytest.approx(sum(entry["per_seed"]) / 3) and entry["sd"] >= 0
        versus = entry["vs_reference"]
        assert versus["low"] <= versus["relative"] <= versus["high"]
    assert seeds["reference"] == report["intervals"]["reference"]
    assert "over 3 ranker seeds" in render_markdown(report, "tastebud evaluate --ranker-seeds 3")
    # The served version of a default training carries one ranker.
    assert Manifest.read(LocalArtifactStore(tiny_artifacts).current_dir()).ranker["other_seeds"] == []


def pd_timestamp(iso: str) -> float:
    import pandas as pd

    return pd.Timestamp(iso).timestamp()
