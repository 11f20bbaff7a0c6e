"""Models trained elsewhere: a fitted estimator (or pipeline) → a model directory with a card.

``import_model`` reads a ``.skops`` file with the same trusted-type check predict uses,
or (only with ``trust_pickle``, on the user's own machine) a pickle/joblib file, and
writes ``model.skops`` + ``model.json`` so the service only ever loads skops. It checks
what can be checked before writing anything: ``predict`` / ``predict_proba`` and
``classes_`` for the task, ``n_features_in_`` against the bands plus derived features,
the estimator's classes against the classes file; and after writing, that the new
``model.skops`` loads under the trusted types (a pipeline holding a custom class is
refused naming it). ``evaluate_model`` scores it on a manifest's labelled pixels without
refitting, with the training's metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from batch_image import clock
from batch_image.errors import InvalidInputError, ModelError
from batch_image.model.card import (
    CLASSIFICATION,
    REGRESSION,
    FeatureRecipe,
    ModelCard,
    ModelClass,
    NormalizedDifference,
    Target,
    check_estimator,
    check_trusted_types,
    library_versions,
    load_estimator,
    save_model,
)
from batch_image.train.manifest import Manifest, default_colour, parse_classes, validate_name

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
SKOPS_SUFFIX = ".skops"


@dataclass(frozen=True)
class ImportSpec:
    """What the user tells about the model: the card's fields a fitted estimator lacks."""

    name: str = "imported"
    task: str | None = None  # None: classification when it has predict_proba, else regression
    classes_file: Path | None = None
    bands: tuple[str, ...] | None = None  # names; default b1..bN from n_features_in_
    dtype: str = "float32"
    derived: tuple[NormalizedDifference, ...] = ()
    target: Target | None = None
    trust_pickle: bool = False


def _refuse(message: str, code: str) -> InvalidInputError:
    return InvalidInputError(message, code=code)


def read_estimator(path: Path, trust_pickle: bool = False) -> Any:
    """The fitted estimator in ``path``: skops (trusted types only), or pickle/joblib when
    the user trusts the file (unpickling runs whatever the file says)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise _refuse(f"{path} does not exist", "missing")
    if suffix == SKOPS_SUFFIX:
        import skops.io as sio

        found = check_trusted_types(path)
        try:
            return sio.load(path, trusted=found)
        except Exception as exc:
            raise ModelError(
                f"{path.name} could not be loaded: {exc}", code="model_corrupt"
            ) from exc
    if suffix not in PICKLE_SUFFIXES:
        raise _refuse(
            f"{path.name} is not a .skops, .pkl, .pickle or .joblib file", "unsupported_model_file"
        )
    if not trust_pickle:
        raise _refuse(
            f"refusing to unpickle {path.name}: loading a pickle runs any code it holds; if you "
            "made it yourself, add --trust-pickle (it is converted to skops here, and the "
            "service never unpickles), or save it with skops.io.dump",
            "pickle_refused",
        )
    import joblib

    try:
        return joblib.load(path)  # the user's own file on the user's machine, asked for
    except Exception as exc:
        raise _refuse(f"{path.name} could not be unpickled: {exc}", "model_unreadable") from exc


def _task(estimator: Any, asked: str | None) -> str:
    if asked is not None:
        return asked
    return CLASSIFICATION if hasattr(estimator, "predict_proba") else REGRESSION


def _classes(estimator: Any, task: str, classes_file: Path | None) -> tuple[ModelClass, ...]:
    if task == REGRESSION:
        if classes_file is not None:
            raise _refuse("--classes is for a classifier; this is a regression", "bad_argument")
        return ()
    if classes_file is not None:
        import yaml

        try:
            raw = yaml.safe_load(classes_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise _refuse(
                f"{classes_file.name} cannot be read: {exc}", "classes_unreadable"
            ) from exc
        return parse_classes(raw.get("classes") if isinstance(raw, dict) else raw)
    ids = [c for c in getattr(estimator, "classes_", [])]
    if not all(isinstance(c, int | np.integer) and 1 <= int(c) <= 254 for c in ids):
        raise _refuse(
            f"the model's classes {list(ids)[:10]} are not class ids 1..254: give --classes "
            "CLASSES.yaml or fit it on class ids",
            "classes_not_ids",
        )
    return tuple(ModelClass(int(c), f"class {int(c)}", default_colour(int(c))) for c in ids)


def _bands(estimator: Any, spec: ImportSpec) -> tuple[str, ...]:
    if spec.bands:
        return spec.bands
    n = getattr(estimator, "n_features_in_", None)
    if n is None:
        raise _refuse(
            "the model does not record how many features it takes: give --bands", "bands_unknown"
        )
    count = int(n) - len(spec.derived)
    if count < 1:
        raise _refuse(f"the model takes {int(n)} features, fewer than --derived", "bad_argument")
    return tuple(f"b{i}" for i in range(1, count + 1))


def _class_index(estimator: Any, classes: tuple[ModelClass, ...]) -> tuple[int, ...]:
    """A classifier fitted on indexes 0..k-1 (XGBoost) with a classes file of k classes:
    index i is the file's i-th class."""
    found = [int(c) for c in getattr(estimator, "classes_", [])]
    if found and found == list(range(len(found))) and len(classes) == len(found):
        return tuple(c.id for c in classes)
    return ()


def card_for(estimator: Any, spec: ImportSpec, created: str) -> ModelCard:
    """The card of an imported estimator, checked against it (one-line refusals)."""
    task = _task(estimator, spec.task)
    names = _bands(estimator, spec)
    classes = _classes(estimator, task, spec.classes_file)
    card = ModelCard(
        name=validate_name(spec.name),
        version=created,
        classes=classes,
        class_index=_class_index(estimator, classes) if task == CLASSIFICATION else (),
        band_count=len(names),
        band_names=names,
        dtype=spec.dtype,
        features=FeatureRecipe(tuple(range(1, len(names) + 1)), spec.derived),
        task=task,
        target=(spec.target or Target("value", "")) if task == REGRESSION else None,
        versions=library_versions(),
        extra={"imported": {"estimator": type(estimator).__name__}},
    )
    card.validate()
    try:
        check_estimator(estimator, card, "the model")
    except ModelError as exc:
        raise _refuse(exc.message, exc.code) from exc
    return card


def import_model(source: Path, out: Path, spec: ImportSpec) -> ModelCard:
    """Write ``out/model.skops`` and ``out/model.json`` from ``source``; the written file
    is loaded back as predict loads it (trusted types, card checks)."""
    estimator = read_estimator(source, spec.trust_pickle)
    created = clock.version_stamp(clock.now())
    card = card_for(estimator, spec, created)
    card = replace(card, extra={**card.extra, "created_at": clock.iso_stamp()})
    save_model(out, estimator, card)
    try:
        load_estimator(out, card)
    except ModelError:
        for name in ("model.skops", "model.json"):
            (out / name).unlink(missing_ok=True)
        raise
    return card


def evaluate_model(
    estimator: Any, card: ModelCard, manifest: Manifest, fetch: Any
) -> dict[str, Any]:
    """Metrics of the model on the manifest's labelled pixels (sampled as a training
    samples them), without refitting: accuracy/kappa/F1 or R²/RMSE/MAE/bias."""
    from batch_image.model.features import compute_features
    from batch_image.train.evaluation import metrics, regression_metrics
    from batch_image.train.trainer import sample_for

    sample = sample_for(manifest, fetch)
    x = compute_features(sample.pixels, card.features, card.band_names)
    pred = estimator.predict(x)
    if card.is_regression:
        return {"imported": regression_metrics(sample.y, np.asarray(pred, dtype=np.float64))}
    return {"imported": metrics(sample.y, np.asarray(pred).astype(np.int64), card.class_ids)}


def write_evaluation(out: Path, card: ModelCard, evaluation: dict[str, Any]) -> list[str]:
    """``metrics.json`` and ``report.md`` of an imported model's evaluation."""
    m = evaluation["imported"]
    (out / "metrics.json").write_text(
        json.dumps({"schema": "rasterdrop.import-report/1", "name": card.name,
                    "version": card.version, "task": card.task, "evaluation": evaluation},
                   indent=2) + "\n"
    )  # fmt: skip
    if card.is_regression:
        head = "| n | R² | RMSE | MAE | bias |\n| ---: | ---: | ---: | ---: | ---: |"
        row = f"| {m['n']} | {m['r2']:.3f} | {m['rmse']:.4g} | {m['mae']:.4g} | {m['bias']:.4g} |"
    else:
        head = "| n | overall accuracy | kappa | macro F1 |\n| ---: | ---: | ---: | ---: |"
        row = f"| {m['n']} | {m['overall_accuracy']:.3f} | {m['kappa']:.3f} | {m['macro_f1']:.3f} |"
    (out / "report.md").write_text(
        f"# Imported model {card.name} {card.version}\n\n"
        "Scored on the manifest's labelled pixels without refitting (no cross-validation: "
        "the model was fitted elsewhere, possibly on these very pixels).\n\n"
        f"{head}\n{row}\n"
    )
    return ["metrics.json", "report.md"]
