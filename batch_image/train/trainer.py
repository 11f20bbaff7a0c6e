"""The train action: manifest → sampled pixels → honest evaluation → model directory.

:func:`train_model` is the one code path for the local CLI, the quick form and
the S3 job; only the fetcher and the model store differ (see ``train_store``).
It reads as its phases: open the images and check the recipe, open the labels
(with each sample's provenance), sample and resolve the classes, evaluate,
fit, write report and card, publish and promote.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from batch_image import clock
from batch_image.errors import InvalidInputError
from batch_image.model.card import ModelCard, ModelClass, save_model
from batch_image.model.features import compute_features
from batch_image.model.stores import ModelStore
from batch_image.train import gate
from batch_image.train.documents import TrainingFacts, model_card, run_summary, train_report
from batch_image.train.estimators import make_estimator_factory
from batch_image.train.fetchers import Fetch
from batch_image.train.images import TrainingImage, feature_recipe, open_images, sha256_file
from batch_image.train.labels import RasterLabels, VectorLabels
from batch_image.train.manifest import Manifest, SampleSpec, default_colour, manifest_from_dict
from batch_image.train.sampling import LabelSource, PixelSample, sample_pixels, sample_values

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    card: ModelCard
    version: str
    location: str
    report: dict[str, Any]
    promoted: bool  # whether this training moved current.json (not merely asked to)
    estimator: Any
    decision: gate.Decision | None = None  # the promotion gate's answer and its reason

    def summary(self) -> dict[str, Any]:
        """The run report (S3: ``models/<name>/runs/<manifest version>/summary.json``)."""
        promotion = self.decision.to_dict() | {"promoted": self.promoted} if self.decision else None
        return run_summary(
            self.card, self.version, self.location, self.report, self.promoted, promotion
        )


class _Timings(dict[str, float]):
    """Seconds per phase, and the total since the training started."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self[name] = time.perf_counter() - t

    def close(self) -> None:
        self["total"] = time.perf_counter() - self.start


# --- labels and data records ---------------------------------------------------------


def _label_source(
    spec: SampleSpec, image: TrainingImage, manifest: Manifest, fetch: Fetch
) -> tuple[LabelSource, dict[str, Any]]:
    """The sample's labels on the image's grid, and which file they came from (hashed)."""
    import rasterio

    with rasterio.open(image.path) as ds:
        if spec.labels is not None:
            path = fetch(spec.labels)
            return RasterLabels(path, ds, continuous=manifest.is_regression), {
                "labels": spec.labels,
                "labels_sha256": sha256_file(path),
            }
        assert spec.vector is not None
        path = fetch(spec.vector)
        source = VectorLabels(
            path, ds, spec.class_field, manifest.classes, buffer=spec.buffer,
            value_field=spec.value_field if manifest.is_regression else None,
        )  # fmt: skip
        field_entry = (
            {"value_field": spec.value_field}
            if manifest.is_regression
            else {"class_field": spec.class_field, "buffer": spec.buffer}
        )
        return source, {
            "vector": spec.vector,
            **field_entry,
            "vector_sha256": sha256_file(path),
        }


def _data_record(spec: SampleSpec, image: TrainingImage, labels: dict[str, Any]) -> dict[str, Any]:
    """One entry of the card's ``training_data.samples``: enough to tell the data again."""
    return {
        "image": spec.image,
        "image_sha256": sha256_file(image.path),
        **labels,
        "width": image.width,
        "height": image.height,
        "crs": image.crs,
        "dtype": image.dtype,
    }


def _open_labels(
    manifest: Manifest, images: list[TrainingImage], fetch: Fetch, stack: ExitStack
) -> tuple[list[LabelSource], list[dict[str, Any]]]:
    """Every sample's label source (closed by ``stack``) and its data record."""
    sources, records = [], []
    for spec, image in zip(manifest.samples, images, strict=True):
        source, labels = _label_source(spec, image, manifest, fetch)
        stack.callback(source.close)
        sources.append(source)
        records.append(_data_record(spec, image, labels))
    return sources, records


# --- sampling and classes ------------------------------------------------------------


def _sample(
    manifest: Manifest, images: list[TrainingImage], sources: list[LabelSource]
) -> PixelSample:
    """Capped, stratified labelled valid pixels; None as class ids keeps every label value
    (the quick form learns its classes from the labels)."""
    if manifest.is_regression:
        return sample_values(
            [i.path for i in images],
            sources,
            manifest.max_samples_per_class,
            manifest.seed,
            bindings=[i.binding for i in images],
        )
    ids = None if manifest.classes_from_labels else {c.id for c in manifest.classes}
    return sample_pixels(
        [i.path for i in images],
        sources,
        ids,
        manifest.max_samples_per_class,
        manifest.seed,
        bindings=[i.binding for i in images],
    )


def _classes_for_quick(
    found: dict[int, int], tags: dict[int, ModelClass]
) -> tuple[ModelClass, ...]:
    bad = [v for v in found if not 1 <= v <= 254]
    if bad:
        raise InvalidInputError(
            f"label values {bad} are outside 1..254 (0 is unlabelled): fix the labels",
            code="labels_unknown_class",
        )
    return tuple(
        tags.get(v) or ModelClass(v, f"class {v}", default_colour(v)) for v in sorted(found)
    )


def _resolve_classes(
    manifest: Manifest, sample: PixelSample, sources: list[LabelSource]
) -> Manifest:
    """The manifest with its classes fixed: as given, or (quick form) the label values
    found, named and coloured from the label rasters' tags."""
    if not manifest.classes_from_labels or manifest.is_regression:
        return manifest
    tags: dict[int, ModelClass] = {}
    for s in sources:
        if isinstance(s, RasterLabels):
            tags.update(s.classes_from_tags())
    return manifest.with_classes(_classes_for_quick(sample.found, tags))


def _check_counts(sample: PixelSample, classes: tuple[ModelClass, ...], minimum: int) -> None:
    if sample.labels.size == 0:
        raise InvalidInputError(
            "no labelled valid pixels in any sample: labels fall only on nodata or are empty",
            code="no_training_pixels",
        )
    # Labelled valid pixels found (before the per-class cap) are what the user drew.
    few = [(c, sample.found.get(c.id, 0)) for c in classes if sample.found.get(c.id, 0) < minimum]
    if few:
        text = ", ".join(f"{c.name!r} (id {c.id}) has {n}" for c, n in few)
        raise InvalidInputError(
            f"class {text} labelled pixels, fewer than min_samples_per_class {minimum}: "
            "label more or lower the minimum",
            code="class_too_few_samples",
            classes={str(c.id): n for c, n in few},
        )
    if len(classes) < 2:
        raise InvalidInputError(
            "need at least two classes with labels to train a classifier", code="too_few_classes"
        )


def _check_values(sample: PixelSample, minimum: int) -> None:
    """A regression needs enough labelled valid pixels, and values that vary."""
    found = sum(sample.found.values())
    if sample.y.size == 0:
        raise InvalidInputError(
            "no labelled valid pixels in any sample: values fall only on nodata or are empty",
            code="no_training_pixels",
        )
    if found < minimum:
        raise InvalidInputError(
            f"{found} labelled pixels, fewer than min_samples_per_class {minimum}: "
            "label more or lower the minimum",
            code="too_few_samples",
        )
    if np.unique(sample.y).size < 2:
        raise InvalidInputError(
            f"every labelled pixel has the value {float(sample.y[0])}: a regression needs "
            "values that vary",
            code="constant_target",
        )


def _say_counts(sample: PixelSample, classes: tuple[ModelClass, ...], say: Log) -> None:
    if sample.targets is not None:
        say(
            f"labelled valid pixels found / sampled: {sum(sample.found.values())}"
            f"/{sample.targets.size} in {len(sample.sampled)} value strata"
        )
        return
    say(
        "class counts (labelled valid pixels found / sampled): "
        + ", ".join(
            f"{c.name} {sample.found.get(c.id, 0)}/{sample.sampled.get(c.id, 0)}" for c in classes
        )
    )


# --- evaluation and fit --------------------------------------------------------------


def _evaluate(
    make_estimator: Callable[[], Any],
    X: np.ndarray,
    sample: PixelSample,
    manifest: Manifest,
    workers: int | None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Blocked and random cross-validation: the blocked score is the honest one (nearby
    pixels are alike), the random one shows how much it flatters. A regression also
    returns its out-of-fold predictions per scheme."""
    from threadpoolctl import threadpool_limits

    from batch_image.train.evaluation import cross_validate, cross_validate_regression

    groups = sample.groups(manifest.cv_block_size)
    predictions: dict[str, np.ndarray] = {}  # classification: the blocked out-of-fold classes
    with threadpool_limits(limits=workers):
        if manifest.is_regression:
            return cross_validate_regression(
                make_estimator, X, sample.y, groups, manifest.cv_folds, manifest.seed
            )
        return cross_validate(
            make_estimator,
            X,
            sample.labels,
            sample.groups(manifest.cv_block_size),
            [c.id for c in manifest.classes],
            manifest.cv_folds,
            manifest.seed,
            indexed=manifest.indexes_classes,
            predictions=predictions,
        ), predictions


def _compare(
    current: ModelCard | None,
    manifest: Manifest,
    band_names: tuple[str, ...],
    sample: PixelSample,
    records: list[dict[str, Any]],
    after: np.ndarray | None,
    workers: int | None,
) -> dict[str, Any] | None:
    """The new version against the current one on the same blocks (:mod:`gate`); a
    regression is gated on the cards' blocked R² instead (no same-blocks comparison)."""
    if current is None or manifest.is_regression:
        return None
    if after is None:
        return {"skipped": "blocked cross-validation was skipped"}
    if tuple(current.band_names) != tuple(band_names):
        return {"skipped": "the current version reads other bands"}
    try:
        make_current, _ = make_estimator_factory(
            manifest_from_dict(dict(current.extra["manifest"])), workers
        )
    except (KeyError, TypeError, InvalidInputError):
        return {"skipped": "the current version's card does not hold its manifest"}
    data = current.extra.get("training_data") or {}
    in_current = gate.samples_in_current(records, data.get("samples") or [])[sample.images]
    X_current = compute_features(sample.pixels, current.features, band_names)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=workers):
        return gate.compare_on_blocks(
            make_current,
            X_current,
            sample.labels,
            sample.groups(manifest.cv_block_size),
            in_current,
            after,
            [c.id for c in manifest.classes],
            manifest.cv_folds,
            manifest.seed,
        )


def _say_comparison(comparison: dict[str, Any] | None, current: ModelCard | None, say: Log) -> None:
    if comparison is None or current is None:
        return
    if "skipped" in comparison:
        say(f"comparison with {current.version} skipped: {comparison['skipped']}")
        return
    b, a = comparison["before"], comparison["after"]
    say(
        f"same blocks, {current.version} → new: accuracy {b['overall_accuracy']:.3f} → "
        f"{a['overall_accuracy']:.3f}, kappa {b['kappa']:.3f} → {a['kappa']:.3f}"
    )


def _say_evaluation(evaluation: dict[str, Any], say: Log) -> None:
    for scheme in ("blocked", "random"):
        m = evaluation[scheme]
        if "r2" in m:
            say(f"{scheme} CV: R2 {m['r2']:.3f}, RMSE {m['rmse']:.4g}, MAE {m['mae']:.4g}")
        elif "overall_accuracy" in m:
            say(f"{scheme} CV: accuracy {m['overall_accuracy']:.3f}, kappa {m['kappa']:.3f}")
        else:
            say(f"{scheme} CV skipped: {m['skipped']}")
    say(
        "(CV scores the training labels, not the map: for map accuracy and areas, "
        "`accuracy-sample` the predicted classes.tif, label it, then `assess`)"
    )


def _fit(
    make_estimator: Callable[[], Any], X: np.ndarray, y: np.ndarray, workers: int | None
) -> Any:
    """The model on every sampled pixel (cross-validation only measured it)."""
    from threadpoolctl import threadpool_limits

    estimator = make_estimator()
    with threadpool_limits(limits=workers):
        estimator.fit(X, y)
    return estimator


# --- write, publish, promote ---------------------------------------------------------


def _write_model_dir(
    staged: Path, facts: TrainingFacts, estimator: Any, version: str, created: datetime
) -> tuple[ModelCard, dict[str, Any]]:
    """Report files, ``model.skops`` and ``model.json`` into the staging directory."""
    from batch_image.train.report_files import write_report

    report = train_report(facts, version)
    files = write_report(staged, report, list(facts.manifest.classes), facts.predictions)
    card = model_card(facts, version, report, files, created)
    save_model(staged, estimator, card)
    return card, report


def _publish(
    store: ModelStore, facts: TrainingFacts, estimator: Any, created: datetime
) -> tuple[str, str, ModelCard, dict[str, Any]]:
    """Reserve a version, stage the model directory, publish it; returns version, location,
    card, report. A failure gives the version back and leaves no staged files behind."""
    name = facts.manifest.name
    version = store.reserve(name, clock.version_stamp(created))
    facts.timings.close()
    staged = None
    try:
        staged = store.staging_dir()
        card, report = _write_model_dir(staged, facts, estimator, version, created)
        location = store.publish(staged, name, version)
        staged = None
    except BaseException:
        store.release(name, version)
        raise
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    return version, location, card, report


def _policy(manifest: Manifest, promote: bool | None, default: str) -> str:
    """``promote=True`` (``--promote``) forces it; else the manifest's ``promote``; else
    ``default`` (the stack's ``RASTERDROP_PROMOTE`` in S3, ``never`` locally)."""
    if promote:
        return gate.ALWAYS
    return gate.policy_of(manifest.promote) or default


def _promote(
    store: ModelStore,
    facts: TrainingFacts,
    version: str,
    current: ModelCard | None,
    current_version: str | None,
    policy: str,
    tolerance: float,
) -> tuple[bool, gate.Decision]:
    """The gate's decision, then the store's move (S3 moves forward only)."""
    manifest = facts.manifest
    if manifest.promote_tolerance is not None:
        tolerance = manifest.promote_tolerance
    card_metrics = (current.extra.get("metrics") or {}).get("blocked_cv") if current else None
    decision = gate.decide(
        policy,
        tolerance,
        facts.evaluation.get("blocked") or {},
        current_version,
        card_metrics,
        facts.comparison,
    )
    if not decision.promote:
        return False, decision
    promoted = bool(store.promote(manifest.name, version))
    return promoted, decision if promoted else decision.refused_by_store()


def _say_published(
    name: str, version: str, location: str, decision: gate.Decision, promoted: bool, say: Log
) -> None:
    say(f"model {name} {version} written to {location}")
    say(decision.reason)


# --- the action ----------------------------------------------------------------------


def _learn(
    manifest: Manifest, fetch: Fetch, workers: int | None, say: Log, current: ModelCard | None
) -> tuple[TrainingFacts, Any]:
    """Everything up to the fitted estimator; nothing is written yet."""
    timings = _Timings()
    with ExitStack() as stack:
        with timings.phase("open"):
            images = open_images(manifest, fetch)
            first = images[0]
            recipe = feature_recipe(manifest, first.band_names, first.alpha)
            make_estimator, params = make_estimator_factory(manifest, workers)
            sources, records = _open_labels(manifest, images, fetch, stack)
        with timings.phase("sample"):
            sample = _sample(manifest, images, sources)
        manifest = _resolve_classes(manifest, sample, sources)
    _say_counts(sample, manifest.classes, say)
    if manifest.is_regression:
        _check_values(sample, manifest.min_samples_per_class)
    else:
        _check_counts(sample, manifest.classes, manifest.min_samples_per_class)
    X = compute_features(sample.pixels, recipe, first.band_names)
    with timings.phase("evaluate"):
        evaluation, predictions = _evaluate(make_estimator, X, sample, manifest, workers)
    _say_evaluation(evaluation, say)
    with timings.phase("compare"):
        comparison = _compare(
            current, manifest, first.band_names, sample, records, predictions.get("blocked"),
            workers,
        )  # fmt: skip
    _say_comparison(comparison, current, say)
    with timings.phase("fit"):
        y = sample.y
        if manifest.indexes_classes:  # class ids → 0..k-1; the card's class_index maps back
            y = np.searchsorted(np.unique(sample.y), sample.y)
        estimator = _fit(make_estimator, X, y, workers)
    facts = TrainingFacts(
        manifest=manifest,
        image=first,
        recipe=recipe,
        records=records,
        sample=sample,
        estimator_class=type(estimator).__name__,
        params=params,
        evaluation=evaluation,
        timings=timings,
        predictions=predictions,
        comparison=comparison,
    )
    return facts, estimator


def sample_for(manifest: Manifest, fetch: Fetch) -> PixelSample:
    """The manifest's sampled labelled pixels, as a training samples them (no fit)."""
    with ExitStack() as stack:
        images = open_images(manifest, fetch)
        sources, _ = _open_labels(manifest, images, fetch, stack)
        return _sample(manifest, images, sources)


def train_model(
    manifest: Manifest,
    fetch: Fetch,
    store: ModelStore,
    *,
    promote: bool | None = None,
    log: Log | None = None,
    now: datetime | None = None,
    workers: int | None = None,
    default_promote: str = gate.NEVER,
    tolerance: float = gate.DEFAULT_TOLERANCE,
) -> TrainResult:
    """Run the whole train action; raises :class:`RasterdropError` subclasses on bad input.

    ``workers`` caps the cores used (estimator ``n_jobs`` and OpenMP/BLAS threads);
    None uses all of them. ``promote`` (True) promotes even when the manifest does not
    ask; otherwise the manifest's ``promote``, else ``default_promote``, is the policy
    of the gate (:mod:`batch_image.train.gate`). :attr:`TrainResult.promoted` says
    whether the pointer really moved, :attr:`TrainResult.decision` why.
    """
    say = log or (lambda _msg: None)
    current_version = store.current(manifest.name)
    current = store.current_card(manifest.name)
    facts, estimator = _learn(manifest, fetch, workers, say, current)
    created = now or clock.now()
    version, location, card, report = _publish(store, facts, estimator, created)
    # the store decides: S3's pointer only moves forward, so a late, older training that
    # asked for promotion reports promoted: false rather than a move that did not happen
    policy = _policy(facts.manifest, promote, default_promote)
    promoted, decision = _promote(
        store, facts, version, current, current_version, policy, tolerance
    )
    _say_published(facts.manifest.name, version, location, decision, promoted, say)
    return TrainResult(card, version, location, report, promoted, estimator, decision)
