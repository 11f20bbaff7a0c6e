"""The train action: manifest → sampled pixels → honest evaluation → model directory.

:func:`train_model` is the one code path for the local CLI, the quick form and
the S3 job; only the fetcher and the model store differ (see ``train_store``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from batch_image import clock
from batch_image.errors import InvalidInputError
from batch_image.model.card import (
    FeatureRecipe,
    ModelCard,
    ModelClass,
    library_versions,
    save_model,
)
from batch_image.model.features import compute_features
from batch_image.model.stores import ModelStore
from batch_image.raster.validity import alpha_bands
from batch_image.train.fetchers import Fetch
from batch_image.train.labels import RasterLabels, VectorLabels
from batch_image.train.manifest import ESTIMATORS, Manifest, default_colour
from batch_image.train.sampling import PixelSample, sample_pixels

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    card: ModelCard
    version: str
    location: str
    report: dict[str, Any]
    promoted: bool
    estimator: Any

    def summary(self) -> dict[str, Any]:
        """The run report (S3: ``models/<name>/runs/<manifest version>/summary.json``)."""
        counts = self.report["class_counts"]
        headline = {}
        for key, scheme in (("blocked_cv", "blocked"), ("random_cv", "random")):
            m = self.report["evaluation"][scheme]
            headline[key] = {
                k: m[k] for k in ("folds", "n", "overall_accuracy", "kappa", "macro_f1") if k in m
            } or {"skipped": m.get("skipped", "")}
        return {
            "schema": "rasterdrop.train-summary/1",
            "kind": "train",
            "status": "succeeded",
            "model": {
                "name": self.card.name,
                "version": self.version,
                "location": self.location,
                "promoted": self.promoted,
            },
            "classes": [
                {
                    "id": c.id,
                    "name": c.name,
                    "colour": c.colour,
                    "found": counts["found"].get(str(c.id), 0),
                    "sampled": counts["sampled"].get(str(c.id), 0),
                }
                for c in self.card.classes
            ],
            "metrics": headline,
            "cv_block_size": self.report["cv_block_size"],
            "timings_s": self.report["timings_s"],
            "created_at": self.card.extra["created_at"],
        }


@dataclass(frozen=True)
class _Image:
    uri: str
    path: Path
    count: int
    dtype: str
    band_names: tuple[str, ...]
    width: int
    height: int
    crs: str | None
    alpha: tuple[int, ...] = ()  # alpha bands (1-based): validity, never features


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_images(manifest: Manifest, fetch: Fetch) -> list[_Image]:
    import rasterio

    out = []
    for spec in manifest.samples:
        path = fetch(spec.image)
        try:
            with rasterio.open(path) as ds:
                names = tuple(d if d else f"b{i}" for i, d in enumerate(ds.descriptions, start=1))
                if len(set(names)) != len(names):
                    names = tuple(f"b{i}" for i in range(1, ds.count + 1))
                out.append(
                    _Image(
                        spec.image,
                        path,
                        ds.count,
                        ds.dtypes[0],
                        names,
                        ds.width,
                        ds.height,
                        ds.crs.to_string() if ds.crs else None,
                        alpha_bands(ds),
                    )
                )
        except rasterio.errors.RasterioIOError as exc:
            raise InvalidInputError(
                f"image {spec.image} is not a readable raster: {str(exc).splitlines()[0]}",
                code="image_unreadable",
            ) from exc
    counts = sorted({i.count for i in out})
    if len(counts) > 1:
        detail = ", ".join(f"{i.uri}: {i.count}" for i in out)
        raise InvalidInputError(
            f"images have differing band counts ({detail}): train on images with the same bands",
            code="band_count_mismatch",
        )
    return out


def _recipe(
    manifest: Manifest, band_names: tuple[str, ...], alpha: tuple[int, ...] = ()
) -> FeatureRecipe:
    count = len(band_names)
    bands: list[int] = []
    for b in manifest.bands or [i for i in range(1, count + 1) if i not in alpha]:
        if isinstance(b, int):
            if not 1 <= b <= count:
                raise InvalidInputError(
                    f"manifest: band {b} is outside 1..{count}", code="manifest_invalid"
                )
            bands.append(b)
        elif b in band_names:
            bands.append(band_names.index(b) + 1)
        else:
            raise InvalidInputError(
                f"manifest: band {b!r} is not one of the image's bands {list(band_names)}",
                code="manifest_invalid",
            )
    named_alpha = [band_names[b - 1] for b in bands if b in alpha]
    if named_alpha:
        raise InvalidInputError(
            f"manifest: band(s) {named_alpha} are alpha bands (transparency), not data: "
            "they mark nodata and are never model features",
            code="manifest_invalid",
        )
    for nd in manifest.derived:
        for n in (nd.a, nd.b):
            if n not in band_names:
                raise InvalidInputError(
                    f"manifest: derived feature {nd.name!r} names band {n!r}, not one of "
                    f"{list(band_names)}",
                    code="manifest_invalid",
                )
    recipe = FeatureRecipe(tuple(bands), tuple(manifest.derived))
    names = recipe.names(band_names)
    if len(set(names)) != len(names):
        raise InvalidInputError(f"manifest: feature names repeat: {names}", code="manifest_invalid")
    return recipe


def make_estimator_factory(
    manifest: Manifest, workers: int | None = None
) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A zero-argument constructor for the manifest's estimator, and its parameters.

    ``n_jobs`` defaults to ``workers`` (all cores when None) unless the manifest sets it.
    """
    import importlib

    spec = manifest.estimator
    module, _, cls_name = ESTIMATORS[spec.type].rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    params = dict(spec.params)
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"manifest: estimator {spec.type} has no parameter(s) {unknown}",
            code="manifest_invalid",
        )
    params.setdefault("random_state", manifest.seed)
    if "n_jobs" in valid:
        params.setdefault("n_jobs", workers or -1)
    if spec.type == "random_forest":
        params.setdefault("n_estimators", 100)
    try:
        probe = cls(**params)
        getattr(probe, "_validate_params", lambda: None)()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"manifest: estimator parameters are invalid: {str(exc).splitlines()[0]}",
            code="manifest_invalid",
        ) from exc
    return (lambda: cls(**params)), params


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


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


def train_model(
    manifest: Manifest,
    fetch: Fetch,
    store: ModelStore,
    *,
    promote: bool | None = None,
    log: Log | None = None,
    now: datetime | None = None,
    workers: int | None = None,
) -> TrainResult:
    """Run the whole train action; raises :class:`RasterdropError` subclasses on bad input.

    ``workers`` caps the cores used (estimator ``n_jobs`` and OpenMP/BLAS threads);
    None uses all of them.
    """
    from threadpoolctl import threadpool_limits

    say = log or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    images = _open_images(manifest, fetch)
    first = images[0]
    band_names = first.band_names
    recipe = _recipe(manifest, band_names, first.alpha)
    make_estimator, params = make_estimator_factory(manifest, workers)

    import rasterio

    sources = []
    data_records = []
    try:
        for spec, image in zip(manifest.samples, images, strict=True):
            with rasterio.open(image.path) as ds:
                if spec.labels is not None:
                    lpath = fetch(spec.labels)
                    sources.append(RasterLabels(lpath, ds))
                    label_key = {"labels": spec.labels, "labels_sha256": sha256_file(lpath)}
                else:
                    assert spec.vector is not None
                    vpath = fetch(spec.vector)
                    sources.append(VectorLabels(vpath, ds, spec.class_field, manifest.classes))
                    label_key = {
                        "vector": spec.vector,
                        "class_field": spec.class_field,
                        "vector_sha256": sha256_file(vpath),
                    }
            data_records.append(
                {
                    "image": spec.image,
                    "image_sha256": sha256_file(image.path),
                    **label_key,
                    "width": image.width,
                    "height": image.height,
                    "crs": image.crs,
                    "dtype": image.dtype,
                }
            )
        timings["open"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        ids = None if manifest.classes_from_labels else {c.id for c in manifest.classes}
        sample = sample_pixels(
            [i.path for i in images], sources, ids, manifest.max_samples_per_class, manifest.seed
        )
        timings["sample"] = time.perf_counter() - t1
        classes = manifest.classes
        if manifest.classes_from_labels:
            tags: dict[int, ModelClass] = {}
            for s in sources:
                if isinstance(s, RasterLabels):
                    tags.update(s.classes_from_tags())
            classes = _classes_for_quick(sample.found, tags)
            manifest = manifest.with_classes(classes)
    finally:
        for s in sources:
            s.close()
    say(
        "class counts (labelled valid pixels found / sampled): "
        + ", ".join(
            f"{c.name} {sample.found.get(c.id, 0)}/{sample.sampled.get(c.id, 0)}" for c in classes
        )
    )
    _check_counts(sample, classes, manifest.min_samples_per_class)

    from batch_image.train.evaluation import cross_validate

    X = compute_features(sample.pixels, recipe, band_names)
    y = sample.labels
    class_ids = [c.id for c in classes]
    t2 = time.perf_counter()
    with threadpool_limits(limits=workers):
        evaluation = cross_validate(
            make_estimator,
            X,
            y,
            sample.groups(manifest.cv_block_size),
            class_ids,
            manifest.cv_folds,
            manifest.seed,
        )
    timings["evaluate"] = time.perf_counter() - t2
    for scheme in ("blocked", "random"):
        m = evaluation[scheme]
        if "overall_accuracy" in m:
            say(f"{scheme} CV: accuracy {m['overall_accuracy']:.3f}, kappa {m['kappa']:.3f}")
        else:
            say(f"{scheme} CV skipped: {m['skipped']}")
    t3 = time.perf_counter()
    estimator = make_estimator()
    with threadpool_limits(limits=workers):
        estimator.fit(X, y)
    timings["fit"] = time.perf_counter() - t3

    created = now or clock.now()
    version = store.reserve(manifest.name, clock.version_stamp(created))
    staged = None
    try:
        report = {
            "schema": "rasterdrop.train-report/1",
            "name": manifest.name,
            "version": version,
            "estimator": {
                "type": manifest.estimator.type,
                "class": type(estimator).__name__,
                "params": _json_safe(params),
            },
            "features": recipe.names(band_names),
            "cv_block_size": manifest.cv_block_size,
            "class_counts": {
                "found": {str(k): v for k, v in sample.found.items()},
                "sampled": {str(k): v for k, v in sample.sampled.items()},
            },
            "evaluation": evaluation,
            "timings_s": {
                **{k: round(v, 3) for k, v in timings.items()},
                "total": round(time.perf_counter() - t0, 3),
            },
        }
        staged = store.staging_dir()
        from batch_image.train.report_files import write_report

        files = write_report(staged, report, list(classes))
        card = ModelCard(
            name=manifest.name,
            version=version,
            classes=tuple(classes),
            band_count=first.count,
            band_names=band_names,
            dtype=first.dtype,
            features=recipe,
            versions=library_versions(),
            extra={
                "estimator": report["estimator"],
                "metrics": {
                    "cv_block_size": manifest.cv_block_size,
                    "blocked_cv": evaluation["blocked"],
                    "random_cv": evaluation["random"],
                },
                "training_data": {
                    "samples": data_records,
                    "class_counts": report["class_counts"],
                    "max_samples_per_class": manifest.max_samples_per_class,
                    "seed": manifest.seed,
                },
                "manifest": _json_safe(manifest.to_dict()),
                "report_files": files,
                "created_at": clock.iso_stamp(created),
            },
        )
        save_model(staged, estimator, card)
        location = store.publish(staged, manifest.name, version)
        staged = None
    except BaseException:
        store.release(manifest.name, version)
        raise
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    do_promote = manifest.promote if promote is None else (promote or manifest.promote)
    if do_promote:
        store.promote(manifest.name, version)
    say(
        f"model {manifest.name} {version} written to {location}"
        + (" (promoted)" if do_promote else "")
    )
    return TrainResult(card, version, location, report, do_promote, estimator)


def predict_pixels(estimator: Any, card: ModelCard, pixels: np.ndarray) -> np.ndarray:
    """Class ids for raw pixels ``(n, bands)`` through the card's feature recipe."""
    return estimator.predict(compute_features(pixels, card.features, card.band_names))
