"""The prediction's two documents: ``summary.json`` (done) and ``error.json`` (failed).

Both are frozen values built here and nowhere else, so local predict and the S3
job cannot drift apart: the job's additions (``run_id``, ``model.uri``,
``timings_s.checks``, ``timings_s.job_total``, outputs as object keys) are fields
of the same value, set with :meth:`Summary.for_job` / :meth:`Summary.finished`,
never keys patched into a dict afterwards. ``to_dict`` writes the schema of
docs/contracts.md key for key, in its order; fields that only the S3 job has are
left out when unset (local runs), except in ``error.json``, where the S3 job
always states ``model`` and ``run_id`` (``null`` while unknown) and local runs
never do.

Rounding is part of the schema (readers compare numbers): shares to 6 places,
mean confidence to 2, seconds to 3, memory to 1 decimal; areas are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, fields, replace
from typing import Any

from batch_image import __version__, clock
from batch_image.errors import RasterdropError
from batch_image.model.card import ModelCard, library_versions
from batch_image.predict.engine import EngineStats
from batch_image.predict.outputs import (
    CLASSES_QML,
    CLASSES_TIF,
    CONFIDENCE_TIF,
    LAYER_FILES,
    PREDICTION_QML,
    PREVIEW_PNG,
)
from batch_image.raster.checks import RasterInfo

SUMMARY_SCHEMA = "rasterdrop.summary/1"
ERROR_SCHEMA = "rasterdrop.error/1"


def _set_fields(value: Any) -> dict[str, Any]:
    """Fields in declaration order, without the optional ones left unset (``None``)."""
    return {
        f.name: getattr(value, f.name) for f in fields(value) if getattr(value, f.name) is not None
    }


@dataclass(frozen=True)
class InputRef:
    """The input as the summary (and the S3 job's error.json) names it."""

    path: str | None = None
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    etag: str | None = None
    size_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class LocalInput:
    """What a failed local run states about its input: the path it was given."""

    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path}


@dataclass(frozen=True)
class ModelRef:
    """The model version used; ``uri`` (the resolved version) only in S3 mode."""

    name: str
    version: str
    uri: str | None = None

    @classmethod
    def of(cls, card: ModelCard, uri: str | None = None) -> ModelRef:
        return cls(card.name, card.version, uri)

    def to_dict(self) -> dict[str, Any]:
        return _set_fields(self)


@dataclass(frozen=True)
class RasterPart:
    width: int
    height: int
    count: int
    dtype: str
    crs: str | None
    transform: tuple[float, ...]
    pixel_area: float
    area_unit: str
    valid_pixels: int
    nodata_pixels: int

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["transform"] = list(self.transform)
        return out


@dataclass(frozen=True)
class ClassPart:
    id: int
    name: str
    colour: str
    pixels: int
    share: float
    area: float
    mean_confidence: float | None  # None: no pixel of this class

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Outputs:
    """Label → where the file is: its name in the output directory, or its S3 key."""

    classes: str | None = CLASSES_TIF  # None: a regression
    confidence: str | None = CONFIDENCE_TIF
    preview: str = PREVIEW_PNG
    qgis_style: str = CLASSES_QML
    polygons: str | None = None  # classes.gpkg, when post-processing wrote it
    accuracy_sample: str | None = None  # sample.gpkg, when the stack asks for one
    probabilities: str | None = None  # probabilities.tif, when asked for
    prediction: str | None = None  # regression: prediction.tif
    uncertainty: str | None = None  # regression with a forest: uncertainty.tif

    @classmethod
    def for_layers(cls, layers: tuple[str, ...]) -> Outputs:
        """The files of the engine's layers (``classes``… or ``prediction``…)."""
        files = {name: LAYER_FILES[name] for name in layers}
        if "prediction" in files:
            return cls(classes=None, confidence=None, qgis_style=PREDICTION_QML, **files)
        return cls(**files)

    review: str | None = None  # review.gpkg: the points to label next

    def names(self) -> tuple[str, ...]:
        """The files in publishing order (the done-marker comes after all of them)."""
        return tuple(name for name in astuple(self) if name is not None)

    def at(self, location: Callable[[str], str]) -> Outputs:
        """The same files where a sink puts them (``S3Prefix.location``: object keys)."""
        return Outputs(*(None if n is None else location(n) for n in astuple(self)))

    def to_dict(self) -> dict[str, Any]:
        return _set_fields(self)


@dataclass(frozen=True)
class Timings:
    """Seconds (rounded to ms) of the engine's phases, plus the S3 job's own two."""

    validate: float
    predict: float
    model: float
    finalize: float
    total: float
    checks: float | None = None  # S3: key, model card, HEAD, header from ranged reads
    job_total: float | None = None  # S3: job start until just before summary.json is written

    @classmethod
    def measured(
        cls, start: float, validated: float, predicted: float, done: float, model_seconds: float
    ) -> Timings:
        """From ``time.perf_counter()`` stamps of the phase boundaries."""
        return cls(
            validate=round(validated - start, 3),
            predict=round(predicted - validated, 3),
            model=round(model_seconds, 3),
            finalize=round(done - predicted, 3),
            total=round(done - start, 3),
        )

    def to_dict(self) -> dict[str, Any]:
        return _set_fields(self)


@dataclass(frozen=True)
class Summary:
    """``summary.json``: what was predicted, with which model, what came out, how fast."""

    input: InputRef
    raster: RasterPart
    model: ModelRef
    classes: tuple[ClassPart, ...]
    outputs: Outputs
    timings: Timings
    workers: int
    parallel: str
    windows: int
    resumed_windows: int
    peak_rss_mb: float
    versions: Mapping[str, str]
    created_at: str
    run_id: str | None = None  # S3 mode
    postprocess: Mapping[str, Any] | None = None  # minimum mapping unit, polygons, sample
    task: str | None = None  # "regression"; absent for a classification
    values: Mapping[str, Any] | None = None  # regression: the predicted values' statistics
    review: Mapping[str, Any] | None = None  # the review points' selection (review.gpkg)
    compute: Mapping[str, Any] | None = None  # S3: vCPU-seconds of the job (and its shards)

    def for_job(self, *, run_id: str, model_uri: str, checks: float, outputs: Outputs) -> Summary:
        """The S3 job's summary: its run, the resolved model version, its checks' time and
        the outputs' object keys."""
        return replace(
            self,
            run_id=run_id,
            model=replace(self.model, uri=model_uri),
            timings=replace(self.timings, checks=round(checks, 3)),
            outputs=outputs,
        )

    def finished(self, job_total: float, compute: Mapping[str, Any] | None = None) -> Summary:
        """Stamped with the job's whole time, measured just before the summary is written,
        and the compute it used (``compute``: see :func:`compute_used`)."""
        timings = replace(self.timings, job_total=round(job_total, 3))
        return replace(self, timings=timings, compute=compute or self.compute)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": SUMMARY_SCHEMA,
            "status": "succeeded",
            "input": self.input.to_dict(),
            "raster": self.raster.to_dict(),
            "model": self.model.to_dict(),
            **({"task": self.task} if self.task else {}),
            "classes": [c.to_dict() for c in self.classes],
            **({"values": dict(self.values)} if self.values is not None else {}),
            "outputs": self.outputs.to_dict(),
            "timings_s": self.timings.to_dict(),
            "workers": self.workers,
            "parallel": self.parallel,
            "windows": self.windows,
            "resumed_windows": self.resumed_windows,
            "peak_rss_mb": self.peak_rss_mb,
            "versions": dict(self.versions),
            "created_at": self.created_at,
        }
        if self.run_id is not None:
            doc["run_id"] = self.run_id
        if self.postprocess:
            doc["postprocess"] = dict(self.postprocess)
        if self.review:
            doc["review"] = dict(self.review)
        if self.compute:
            doc["compute"] = dict(self.compute)
        return doc


def compute_used(
    vcpus: int, wall_s: float, cpu_s: float, shards: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """``summary.json``'s ``compute``: what the run was billed for, in vCPU-seconds (the job
    definition's vCPUs × wall time), and the CPU-seconds it used. A sharded run adds its
    children's (``shards``: their count and summed ``vcpu_s``/``cpu_s``): ``vcpu_s`` is the
    whole run's."""
    own = round(vcpus * wall_s, 1)
    doc: dict[str, Any] = {"vcpus": vcpus, "job_vcpu_s": own, "cpu_s": round(cpu_s, 1)}
    total = own
    if shards:
        doc["shards"] = int(shards["shards"])
        doc["shards_vcpu_s"] = round(float(shards["vcpu_s"]), 1)
        doc["shards_cpu_s"] = round(float(shards["cpu_s"]), 1)
        total += float(shards["vcpu_s"])
    doc["vcpu_s"] = round(total, 1)
    return doc


def area_unit(crs: Any) -> tuple[str, bool]:
    """The unit of a pixel's area, and whether the CRS gives pixels an area at all."""
    if crs is None:
        return "pixel", False
    if crs.is_geographic:
        return "degree^2", True
    unit = (crs.linear_units or "unit").lower()
    return f"{unit}^2", True


def pixel_area(transform: Any, crs: Any) -> tuple[float, str]:
    """Area of one pixel in CRS units (1 ``pixel`` without a CRS), and its unit."""
    unit, has_area = area_unit(crs)
    area = abs(transform.a * transform.e - transform.b * transform.d) if has_area else 1.0
    return area, unit


@dataclass(frozen=True)
class RunFacts:
    """What the engine's run contributes to the summary besides its statistics."""

    workers: int
    parallel: str
    windows: int
    crs: Any  # rasterio CRS of the input
    transform: Any  # affine transform of the input


def class_parts(card: ModelCard, stats: EngineStats, area: float) -> tuple[ClassPart, ...]:
    """Pixels, share of the valid pixels, area and mean confidence per model class."""
    by_id = card.class_by_id()
    valid = stats.valid_pixels
    return tuple(
        ClassPart(
            id=cid,
            name=by_id[cid].name,
            colour=by_id[cid].colour,
            pixels=cnt,
            share=round(cnt / valid if valid else 0.0, 6),
            area=cnt * area,
            mean_confidence=round(stats.conf_sums[cid] / cnt, 2) if cnt else None,
        )
        for cid, cnt in stats.counts.items()
    )


def summarize(
    input_ref: InputRef,
    info: RasterInfo,
    card: ModelCard,
    stats: EngineStats,
    facts: RunFacts,
    timings: Timings,
    peak_rss_mb: float,
    *,
    layers: tuple[str, ...] = ("classes", "confidence"),
    values: Mapping[str, Any] | None = None,
) -> Summary:
    """The summary of a finished run (local file names as outputs, no S3 fields yet).

    ``layers`` are the engine's outputs; a regression's ``values`` (its statistics)
    replace the class rows."""
    area, unit = pixel_area(facts.transform, facts.crs)
    return Summary(
        input=input_ref,
        raster=RasterPart(
            width=info.width,
            height=info.height,
            count=info.count,
            dtype=info.dtype,
            crs=info.crs,
            transform=tuple(info.transform),
            pixel_area=area,
            area_unit=unit,
            valid_pixels=stats.valid_pixels,
            nodata_pixels=stats.nodata_pixels,
        ),
        model=ModelRef.of(card),
        classes=() if card.is_regression else class_parts(card, stats, area),
        outputs=Outputs.for_layers(layers),
        timings=timings,
        workers=facts.workers,
        parallel=facts.parallel,
        windows=facts.windows,
        resumed_windows=stats.restored_windows,
        peak_rss_mb=round(peak_rss_mb, 1),
        versions={"rasterdrop": __version__, **library_versions()},
        created_at=clock.iso_stamp(),
        task=card.task if card.is_regression else None,
        values=values,
    )


@dataclass(frozen=True)
class JobRef:
    """What the S3 job adds to ``error.json``: both keys always, ``null`` while unknown."""

    model: ModelRef | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class ErrorDocument:
    """``error.json``: the failure's category, code, message and details, and the input."""

    category: str
    code: str
    message: str
    details: Mapping[str, Any]
    input: InputRef | LocalInput
    created_at: str
    job: JobRef | None = None  # S3 mode

    @classmethod
    def of(
        cls, exc: RasterdropError, input_ref: InputRef | LocalInput, job: JobRef | None = None
    ) -> ErrorDocument:
        return cls(
            category=exc.category,
            code=exc.code,
            message=exc.message,
            details=dict(exc.details),
            input=input_ref,
            created_at=clock.iso_stamp(),
            job=job,
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": ERROR_SCHEMA,
            "status": "failed",
            "category": self.category,
            "code": self.code,
            "message": self.message,
            "details": dict(self.details),
            "input": self.input.to_dict(),
            "created_at": self.created_at,
        }
        if self.job is not None:
            doc["model"] = self.job.model.to_dict() if self.job.model else None
            doc["run_id"] = self.job.run_id
        return doc
