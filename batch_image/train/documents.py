"""The documents a training writes, each built in one place.

* :func:`train_report`: ``metrics.json`` (``rasterdrop.train-report/1``) and the
  source of ``report.md`` and the confusion plots;
* :func:`model_card`: ``model.json`` (``rasterdrop.model/1``, docs/contracts.md);
* :func:`run_summary`: the run report the notify handler reads
  (``rasterdrop.train-summary/1``).

Their keys are a contract (the notifier, the predict job and people read them):
change them here, in docs/contracts.md and in the tests together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from batch_image import clock
from batch_image.model.card import FeatureRecipe, ModelCard, library_versions
from batch_image.train.images import TrainingImage
from batch_image.train.manifest import Manifest
from batch_image.train.sampling import PixelSample

HEADLINE_METRICS = ("folds", "n", "overall_accuracy", "kappa", "macro_f1")
REGRESSION_HEADLINE = ("folds", "n", "r2", "rmse", "mae", "bias")


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (estimator params may hold numpy scalars, classes)."""
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class TrainingFacts:
    """What a training learnt before anything is written: the inputs of its documents."""

    manifest: Manifest  # classes resolved (the quick form's come from the labels)
    image: TrainingImage  # the first image: bands and dtype of the model
    recipe: FeatureRecipe
    records: list[dict[str, Any]]  # per sample: paths, sha256, grid
    sample: PixelSample
    estimator_class: str
    params: dict[str, Any]
    evaluation: dict[str, Any]
    timings: dict[str, float]
    # regression: out-of-fold predictions per CV scheme (for the observed-vs-predicted plot)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None  # with the current version, same blocks


def _class_counts(sample: PixelSample) -> dict[str, dict[str, int]]:
    return {
        "found": {str(k): v for k, v in sample.found.items()},
        "sampled": {str(k): v for k, v in sample.sampled.items()},
    }


def _value_counts(sample: PixelSample) -> dict[str, Any]:
    """A regression's sample: labelled pixels found and sampled, per value stratum too."""
    y = sample.y
    return {
        "found": int(sum(sample.found.values())),
        "sampled": int(y.size),
        "strata_edges": [round(e, 6) for e in sample.edges],
        "found_per_stratum": {str(k): v for k, v in sample.found.items()},
        "sampled_per_stratum": {str(k): v for k, v in sample.sampled.items()},
        "min": round(float(y.min()), 6) if y.size else None,
        "max": round(float(y.max()), 6) if y.size else None,
        "mean": round(float(y.mean()), 6) if y.size else None,
    }


def _task_entries(manifest: Manifest) -> dict[str, Any]:
    if not manifest.is_regression or manifest.target is None:
        return {}
    return {
        "task": manifest.task,
        "target": {"name": manifest.target.name, "unit": manifest.target.unit},
    }


def _counts(facts: TrainingFacts) -> dict[str, Any]:
    if facts.manifest.is_regression:
        return {"value_counts": _value_counts(facts.sample)}
    return {"class_counts": _class_counts(facts.sample)}


def train_report(facts: TrainingFacts, version: str) -> dict[str, Any]:
    """``metrics.json``: everything the evaluation measured, with the counts behind it."""
    manifest = facts.manifest
    return {
        "schema": "rasterdrop.train-report/1",
        "name": manifest.name,
        "version": version,
        **_task_entries(manifest),
        "estimator": {
            "type": manifest.estimator.type,
            "class": facts.estimator_class,
            "params": json_safe(facts.params),
        },
        "features": facts.recipe.names(facts.image.band_names),
        "cv_block_size": manifest.cv_block_size,
        **_counts(facts),
        "evaluation": facts.evaluation,
        **({"comparison": facts.comparison} if facts.comparison is not None else {}),
        "timings_s": {k: round(v, 3) for k, v in facts.timings.items()},
    }


def model_card(
    facts: TrainingFacts, version: str, report: dict[str, Any], files: list[str], created: datetime
) -> ModelCard:
    """``model.json``: what predict needs (classes, bands, recipe) and the provenance."""
    manifest, image = facts.manifest, facts.image
    return ModelCard(
        name=manifest.name,
        version=version,
        classes=tuple(manifest.classes),
        band_count=image.count,
        band_names=image.band_names,
        dtype=image.dtype,
        features=facts.recipe,
        alpha=image.alpha,
        task=manifest.task,
        target=manifest.target if manifest.is_regression else None,
        class_index=tuple(sorted(int(v) for v in np.unique(facts.sample.y)))
        if manifest.indexes_classes
        else (),
        versions=library_versions(),
        extra={
            "estimator": report["estimator"],
            "metrics": {
                "cv_block_size": manifest.cv_block_size,
                "blocked_cv": facts.evaluation["blocked"],
                "random_cv": facts.evaluation["random"],
            },
            "training_data": {
                "samples": facts.records,
                **{k: report[k] for k in ("class_counts", "value_counts") if k in report},
                "max_samples_per_class": manifest.max_samples_per_class,
                "seed": manifest.seed,
            },
            "manifest": json_safe(manifest.to_dict()),
            "report_files": files,
            "created_at": clock.iso_stamp(created),
        },
    )


def _headline(evaluation: dict[str, Any]) -> dict[str, Any]:
    """Per scheme the few numbers an email shows, or why the scheme was skipped."""
    out = {}
    for key, scheme in (("blocked_cv", "blocked"), ("random_cv", "random")):
        m = evaluation[scheme]
        names = REGRESSION_HEADLINE if "r2" in m else HEADLINE_METRICS
        out[key] = {k: m[k] for k in names if k in m} or {"skipped": m.get("skipped", "")}
    return out


def _class_rows(card: ModelCard, counts: dict[str, dict[str, int]] | None) -> list[dict[str, Any]]:
    if counts is None:
        return []
    return [
        {
            "id": c.id,
            "name": c.name,
            "colour": c.colour,
            "found": counts["found"].get(str(c.id), 0),
            "sampled": counts["sampled"].get(str(c.id), 0),
        }
        for c in card.classes
    ]


def run_summary(
    card: ModelCard,
    version: str,
    location: str,
    report: dict[str, Any],
    promoted: bool,
    promotion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run report (S3: ``models/<name>/runs/<manifest version>/summary.json``):
    ``model.promotion`` is the gate's decision and its reason, ``comparison`` the new
    version against the current one on the same blocks (when there was a current one)."""
    doc = {
        "schema": "rasterdrop.train-summary/1",
        "kind": "train",
        "status": "succeeded",
        "model": {
            "name": card.name,
            "version": version,
            "location": location,
            "promoted": promoted,
        },
        **{k: report[k] for k in ("task", "target") if k in report},
        "classes": _class_rows(card, report.get("class_counts")),
        "metrics": _headline(report["evaluation"]),
        "cv_block_size": report["cv_block_size"],
        "timings_s": report["timings_s"],
        "created_at": card.extra["created_at"],
    }
    if promotion is not None:
        doc["model"]["promotion"] = promotion
    if "comparison" in report:
        doc["comparison"] = _named(report["comparison"], card)
    return doc


def _named(comparison: dict[str, Any], card: ModelCard) -> dict[str, Any]:
    """The comparison with class names beside the ids (the email lists them by name)."""
    if "per_class_f1" not in comparison:
        return comparison
    names = {str(c.id): c.name for c in card.classes}
    most = [m | {"name": names.get(str(m["id"]), str(m["id"]))} for m in comparison["most_changed"]]
    return comparison | {"most_changed": most}
