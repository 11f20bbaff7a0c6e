"""The promotion gate: a better model replaces the current one, a worse one does not, and
the run report (and so the email) says which and why; the comparison uses the same blocks."""

from __future__ import annotations

import json

import pytest

from batch_image.errors import InvalidInputError
from batch_image.model.stores import VersionedStore
from batch_image.synthetic.scene import SAMPLE_CLASSES
from batch_image.train import gate
from batch_image.train.fetchers import local_fetcher
from batch_image.train.manifest import manifest_from_dict
from batch_image.train.trainer import train_model
from tests.batch_image.train.helpers import small_sample

CLASSES = [{"id": i, "name": n, "colour": c} for i, n, c in SAMPLE_CLASSES]
WEAK = {"type": "random_forest", "params": {"n_estimators": 2, "max_depth": 2}}
WEAKEST = {"type": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}}
STRONG = {"type": "random_forest", "params": {"n_estimators": 20}}


def _manifest(estimator, **over):
    data = {
        "name": "landcover",
        "classes": CLASSES,
        "samples": [{"image": "scene.tif", "labels": "labels.tif"}],
        "estimator": estimator,
        "max_samples_per_class": 300,
        "min_samples_per_class": 20,
        "cv": {"block_size": 40, "folds": 3},
    }
    return manifest_from_dict(data | over)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    small_sample(d, width=300, height=200, seed=1)
    return d


def _current(store: VersionedStore) -> str | None:
    return store.current("landcover")


def test_a_better_model_is_promoted_and_a_worse_one_kept_out(scene, tmp_path):
    store = VersionedStore(tmp_path / "models")
    fetch = local_fetcher(scene)
    said: list[str] = []
    weak = train_model(_manifest(WEAK, promote=True), fetch, store)
    assert weak.promoted and _current(store) == weak.version

    strong = train_model(_manifest(STRONG, promote="if_better"), fetch, store, log=said.append)
    assert strong.promoted and _current(store) == strong.version
    doc = strong.summary()
    promotion = doc["model"]["promotion"]
    assert promotion["policy"] == "if_better" and promotion["promoted"] is True
    assert promotion["current_version"] == weak.version and promotion["kappa_from"] == "same blocks"
    assert promotion["new_kappa"] > promotion["current_kappa"]
    assert promotion["reason"].startswith(
        f"promoted: blocked-CV kappa {promotion['new_kappa']:.3f} vs "
        f"{promotion['current_kappa']:.3f} for {weak.version} on the same blocks"
    )
    assert promotion["reason"] in said
    comparison = doc["comparison"]
    assert comparison["after"]["kappa"] == doc["metrics"]["blocked_cv"]["kappa"]  # same folds
    assert comparison["before"]["kappa"] == promotion["current_kappa"]
    assert comparison["new_pixels"] == 0  # the same samples as the current version's
    assert set(comparison["per_class_f1"]) == {str(c["id"]) for c in CLASSES}
    most = comparison["most_changed"]
    assert len(most) == 3 and {"id", "name", "change"} <= set(most[0])
    f1 = comparison["per_class_f1"][str(most[0]["id"])]
    assert most[0]["change"] == pytest.approx(f1["after"] - f1["before"])
    assert abs(most[0]["change"]) >= abs(most[-1]["change"])

    worse = train_model(_manifest(WEAKEST, promote="if_better"), fetch, store)
    assert not worse.promoted and _current(store) == strong.version  # kept out
    promotion = worse.summary()["model"]["promotion"]
    assert promotion["promoted"] is False
    gap = promotion["current_kappa"] - promotion["new_kappa"]
    assert gap > gate.DEFAULT_TOLERANCE
    assert promotion["reason"] == (
        f"not promoted: blocked-CV kappa {promotion['new_kappa']:.3f} is {gap:.3f} below "
        f"{promotion['current_kappa']:.3f} of {strong.version} on the same blocks (tolerance 0.01)"
    )
    metrics = json.loads(
        (tmp_path / "models/landcover" / worse.version / "metrics.json").read_text()
    )
    assert metrics["comparison"]["before"]["kappa"] == promotion["current_kappa"]
    report = (tmp_path / "models/landcover" / worse.version / "report.md").read_text()
    before, after = metrics["comparison"]["before"], metrics["comparison"]["after"]
    assert "## Compared with the current version" in report
    assert f"| kappa | {before['kappa']:.3f} | {after['kappa']:.3f} |" in report
    assert "Changed most: " in report


def test_the_first_version_passes_the_gate_and_forcing_still_works(scene, tmp_path):
    store = VersionedStore(tmp_path / "models")
    fetch = local_fetcher(scene)
    first = train_model(_manifest(WEAK, promote="if_better"), fetch, store)
    assert first.promoted
    assert first.decision.reason == "promoted: there is no current version yet"
    assert "comparison" not in first.summary()
    forced = train_model(_manifest(WEAKEST), fetch, store, promote=True)  # --promote
    assert forced.promoted and _current(store) == forced.version
    assert forced.decision.reason == "promoted: asked for (promote: true or --promote)"


def test_a_manifest_that_does_not_say_follows_the_callers_default(scene, tmp_path):
    store = VersionedStore(tmp_path / "models")
    fetch = local_fetcher(scene)
    local = train_model(_manifest(WEAK), fetch, store)  # local default: never
    assert not local.promoted and _current(store) is None
    assert local.decision.reason == "not promoted: not asked for (promote: false)"
    stack = train_model(_manifest(WEAK), fetch, store, default_promote=gate.IF_BETTER)
    assert stack.promoted and stack.decision.policy == "if_better"


def test_decide_uses_the_tolerance_and_falls_back_to_the_model_card():
    new = {"kappa": 0.80}
    same_blocks = {"before": {"kappa": 0.805}}
    near = gate.decide("if_better", 0.01, new, "v1", {"kappa": 0.99}, same_blocks)
    assert near.promote and near.kappa_from == "same blocks"
    far = gate.decide("if_better", 0.001, new, "v1", None, same_blocks)
    assert not far.promote and "0.005 below 0.805 of v1" in far.reason
    card = gate.decide("if_better", 0.01, new, "v1", {"kappa": 0.9}, {"skipped": "no data"})
    assert not card.promote and card.kappa_from == "model card"
    assert "(its model card)" in card.reason
    unknown = gate.decide("if_better", 0.01, {"skipped": "1 block"}, "v1", {"kappa": 0.5}, None)
    assert not unknown.promote and "new version's blocked-CV kappa is unknown" in unknown.reason


def test_a_regression_is_gated_on_blocked_r2_and_never_against_a_kappa():
    better = gate.decide("if_better", 0.01, {"r2": 0.95}, "v1", {"r2": 0.955}, None)
    assert better.promote and better.kappa_from == "model card"
    assert better.reason.startswith("promoted: blocked-CV R² 0.950 vs 0.955 for v1")
    worse = gate.decide("if_better", 0.01, {"r2": 0.80}, "v1", {"r2": 0.90}, None)
    assert not worse.promote
    assert worse.reason.startswith("not promoted: blocked-CV R² 0.800 is 0.100 below 0.900")
    other_task = gate.decide("if_better", 0.01, {"r2": 0.99}, "v1", {"kappa": 0.5}, None)
    assert not other_task.promote
    assert "v1 is scored by kappa and this version by R² (another task)" in other_task.reason


def test_manifest_promote_values():
    assert _manifest(WEAK).promote is None
    assert _manifest(WEAK, promote="if_better").promote == "if_better"
    assert _manifest(WEAK, promote_tolerance=0.05).promote_tolerance == 0.05
    with pytest.raises(InvalidInputError, match="promote must be true, false or if_better"):
        _manifest(WEAK, promote="maybe")
    with pytest.raises(InvalidInputError, match=r"promote_tolerance must be a number in 0\.\.1"):
        _manifest(WEAK, promote_tolerance=2)
    assert [gate.policy_of(v) for v in (True, False, "if_better", None)] == [
        "always", "never", "if_better", None,
    ]  # fmt: skip
