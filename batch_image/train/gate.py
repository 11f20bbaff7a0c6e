"""The promotion gate and the comparison with the current version on the same blocks.

A retraining (say with the labelled review points) makes a new version as always; the
question is whether predictions should move to it. :func:`compare_on_blocks` answers
with the same spatial blocks for both sides: the new training's blocked
cross-validation folds (old samples plus new ones), and for each fold the current
version's recipe (its manifest's estimator and features) fitted on the training part of
the samples the current version was trained on (told apart by their data hashes), then
scored on the same test blocks as the new one. Before → after: overall accuracy, kappa,
per-class F1, and the classes whose F1 changed most.

:func:`decide` is the gate. ``promote`` in the manifest (or the stack's default for
manifests that do not say, ``RASTERDROP_PROMOTE``): ``true``/``always`` and ``--promote``
force it, ``false``/``never`` keep ``current.json`` where it is, ``if_better`` moves it
only when the new version's blocked-CV kappa is not lower than the current version's by
more than the tolerance. The current version's kappa is the one measured on the same
blocks when the comparison could run, else the one in its model card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ALWAYS = "always"
NEVER = "never"
IF_BETTER = "if_better"
POLICIES = (IF_BETTER, ALWAYS, NEVER)
DEFAULT_TOLERANCE = 0.01
MOST_CHANGED = 3


def policy_of(value: Any) -> str | None:
    """A manifest's or the stack's ``promote`` as a policy (None: not said)."""
    if value is None:
        return None
    if value is True:
        return ALWAYS
    if value is False:
        return NEVER
    text = str(value).strip().lower()
    aliases = {"true": ALWAYS, "false": NEVER, "if-better": IF_BETTER}
    text = aliases.get(text, text)
    if text not in POLICIES:
        raise ValueError(f"promote must be true, false or if_better, got {value!r}")
    return text


@dataclass(frozen=True)
class Decision:
    policy: str
    promote: bool
    reason: str
    new_kappa: float | None = None
    current_kappa: float | None = None
    current_version: str | None = None
    tolerance: float | None = None
    kappa_from: str | None = None  # "same blocks" | "model card"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}

    def refused_by_store(self) -> Decision:
        """The store kept the pointer where it was (S3: a newer version is current)."""
        reason = "not promoted: current.json already names this or a newer version"
        return Decision(**{**vars(self), "promote": False, "reason": reason})


def _kappa(metrics: Any) -> float | None:
    """The blocked-CV score the gate compares: kappa, or R² for a regression (whose
    metrics have ``r2`` and no kappa; the same-blocks comparison is for classes only)."""
    if not isinstance(metrics, dict):
        return None
    value = metrics.get("kappa", metrics.get("r2"))
    return float(value) if isinstance(value, int | float) else None


def _score_name(metrics: Any) -> str:
    regression = isinstance(metrics, dict) and "r2" in metrics and "kappa" not in metrics
    return "R²" if regression else "kappa"


def decide(
    policy: str,
    tolerance: float,
    new_blocked: dict[str, Any],
    current_version: str | None,
    current_card_blocked: dict[str, Any] | None,
    comparison: dict[str, Any] | None,
) -> Decision:
    """Whether ``current.json`` moves to the new version, and the sentence saying why."""
    if policy == ALWAYS:
        return Decision(policy, True, "promoted: asked for (promote: true or --promote)")
    if policy == NEVER:
        return Decision(policy, False, "not promoted: not asked for (promote: false)")
    new, score = _kappa(new_blocked), _score_name(new_blocked)
    if current_version is None:
        return Decision(policy, True, "promoted: there is no current version yet", new)
    if (
        current_card_blocked
        and _score_name(current_card_blocked) != score
        and "skipped" not in (current_card_blocked)
    ):
        reason = (
            f"not promoted: {current_version} is scored by {_score_name(current_card_blocked)} "
            f"and this version by {score} (another task): promote it with promote: true"
        )
        return Decision(policy, False, reason, new, current_version=current_version)
    same = comparison.get("before") if comparison and "before" in comparison else None
    current, source = (_kappa(same), "same blocks") if same else (None, None)
    if current is None:
        current, source = _kappa(current_card_blocked or {}), "model card"
    facts = {"new_kappa": new, "current_version": current_version, "tolerance": tolerance}
    if new is None or current is None:
        missing = "the new version's" if new is None else "the current version's"
        reason = f"not promoted: {missing} blocked-CV {score} is unknown, so it cannot be compared"
        return Decision(policy, False, reason, current_kappa=current, **facts)
    where = "on the same blocks" if source == "same blocks" else "(its model card)"
    if new >= current - tolerance:
        reason = (
            f"promoted: blocked-CV {score} {new:.3f} vs {current:.3f} for {current_version} "
            f"{where}, not lower by more than {tolerance:g}"
        )
        return Decision(policy, True, reason, current_kappa=current, kappa_from=source, **facts)
    reason = (
        f"not promoted: blocked-CV {score} {new:.3f} is {current - new:.3f} below {current:.3f} "
        f"of {current_version} {where} (tolerance {tolerance:g})"
    )
    return Decision(policy, False, reason, current_kappa=current, kappa_from=source, **facts)


def _data_key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record.get("image_sha256"),
        record.get("labels_sha256"),
        record.get("vector_sha256"),
    )


def samples_in_current(
    records: Sequence[dict[str, Any]], current_records: Sequence[dict[str, Any]]
) -> np.ndarray:
    """For each sample of the new training, whether the current version trained on it."""
    known = {_data_key(r) for r in current_records if isinstance(r, dict)}
    return np.array([_data_key(r) in known for r in records], dtype=bool)


def compare_on_blocks(
    make_current: Callable[[], Any],
    X_current: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    in_current: np.ndarray,
    after: np.ndarray,
    class_ids: list[int],
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """Before (the current recipe fitted per fold on its own samples) against ``after``
    (the new training's out-of-fold blocked-CV predictions) on the same folds: the
    splits are :func:`batch_image.train.evaluation.cross_validate`'s (same groups, folds
    and seed). ``{"skipped": why}`` when they cannot be compared."""
    from sklearn.model_selection import GroupKFold

    from batch_image.train.evaluation import metrics

    n_groups = int(np.unique(groups).size)
    k = min(folds, n_groups)
    if k < 2:
        return {"skipped": f"only {n_groups} spatial block(s)"}
    if not in_current.any():
        return {"skipped": "none of the samples are ones the current version was trained on"}
    gkf = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    before = np.zeros_like(y)
    for train, test in gkf.split(X_current, y, groups):
        old = train[in_current[train]]
        if np.unique(y[old]).size < 2:
            return {"skipped": "a fold has fewer than two classes from the current version's data"}
        est = make_current()
        est.fit(X_current[old], y[old])
        before[test] = est.predict(X_current[test])
    return _report(metrics(y, before, class_ids), metrics(y, after, class_ids), in_current, k)


def _report(
    before: dict[str, Any], after: dict[str, Any], in_current: np.ndarray, folds: int
) -> dict[str, Any]:
    f1 = {
        cid: {"before": before["per_class"][cid]["f1"], "after": after["per_class"][cid]["f1"]}
        for cid in after["per_class"]
    }
    changed = sorted(f1, key=lambda c: (-abs(f1[c]["after"] - f1[c]["before"]), c))
    return {
        "folds": folds,
        "n": after["n"],
        "new_pixels": int((~in_current).sum()),
        "before": {k: before[k] for k in ("overall_accuracy", "kappa", "macro_f1")},
        "after": {k: after[k] for k in ("overall_accuracy", "kappa", "macro_f1")},
        "per_class_f1": f1,
        "most_changed": [
            {"id": int(c), "change": round(f1[c]["after"] - f1[c]["before"], 6)}
            for c in changed[:MOST_CHANGED]
        ],
    }
