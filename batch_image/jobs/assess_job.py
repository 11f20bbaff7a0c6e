"""S3 mode of ``assess``: ``assessments/<path>.gpkg`` → ``output/<path>/assessment/``.

A user labels ``output/<path>/sample.gpkg`` in QGIS and uploads it as
``assessments/<path>.gpkg``; the rule starts this job with the upload's key and version.
It reads the map the sample belongs to (``output/<path>/classes.tif``, through that
prediction's ``summary.json``), runs :func:`batch_image.accuracy.assessment.assess`
(the same code as the local command) and publishes ``assessment.json``,
``assessment.md`` and ``assessment.png`` under ``output/<path>/assessment/`` through
the result protocol, ``summary.json`` (``"kind": "assess"``) last; the notifier reads it
and emails the areas with their intervals.

Why it is safe to rerun: the job only reads the sample version the event names and
the current map, and writes only its own folder, done-marker last; a second run for the
same version writes the same result again (the notifier's marker keeps the email to
one). Failures are recorded like the predict job's (:mod:`batch_image.jobs.failures`):
a refused sample (not labelled, another map, no prediction at ``output/<path>/``) at
once as ``error.json`` in that folder, exit 2. A key that is not a sample key gets no
``error.json`` (no safe place for it); the notifier tells the uploader from the same rule.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_image import __version__, clock, s3io
from batch_image.accuracy.assessment import assess
from batch_image.accuracy.reports import write_reports
from batch_image.errors import InvalidInputError, RasterdropError
from batch_image.jobs.failures import failures_recorded
from batch_image.jobs.request import JobRequest, check_key_under
from batch_image.jobs.settings import Settings
from batch_image.publish.layout import (
    ASSESSMENT_SEGMENT,
    ASSESSMENTS_PREFIX,
    SAMPLE_SUFFIX,
    SUMMARY_JSON,
)
from batch_image.publish.protocol import publish, record_failure
from batch_image.publish.sinks import S3Prefix

log = logging.getLogger(__name__)

SCHEMA = "rasterdrop.assessment_run/1"
MAX_SAMPLE_BYTES = 256 * 1024**2
SUMMARY_CLASS_FIELDS = (
    "id",
    "name",
    "mapped_area",
    "area",
    "users_accuracy",
    "producers_accuracy",
    "sample_points",
)


@dataclass(frozen=True)
class AssessOutcome:
    status: str
    exit_code: int
    message: str
    output_prefix: str | None
    document: dict[str, Any] | None = None


def check_sample_key(key: str, prefix: str = ASSESSMENTS_PREFIX) -> str:
    """``assessments/<path>.gpkg`` → ``<path>``: the input key rule with another prefix and
    suffix (:func:`batch_image.jobs.request.check_key_under`)."""
    return check_key_under(
        key, prefix, (SAMPLE_SUFFIX,), "outside_assessments_prefix", "not_a_geopackage",
        SAMPLE_SUFFIX,
    )  # fmt: skip


def results_prefix(path: str, output_prefix: str) -> str:
    """``output/<path>/assessment/``: the assess job's own folder beside the prediction."""
    return f"{output_prefix}{path}/{ASSESSMENT_SEGMENT}"


def run(req: JobRequest, settings: Settings, *, s3: Any = None) -> AssessOutcome:
    """Assess one uploaded sample version; raises :class:`RasterdropError` after recording."""
    s3 = s3 or s3io.client()
    path = check_sample_key(req.key)
    prediction = f"{settings.output_prefix}{path}/"
    sink = S3Prefix(s3, req.bucket, results_prefix(path, settings.output_prefix))
    sample_ref = {"bucket": req.bucket, "key": req.key, "version_id": req.version_id}

    def record(exc: RasterdropError) -> None:
        record_failure(sink, _failure(exc, sample_ref, prediction))

    settings.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="rasterdrop-assess-", dir=settings.scratch))
    try:
        with failures_recorded(record, settings):
            return _assess(s3, req, prediction, sink, sample_ref, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _assess(
    s3: Any, req: JobRequest, prediction: str, sink: S3Prefix, sample_ref: dict, scratch: Path
) -> AssessOutcome:
    t0 = time.perf_counter()
    classes_key = _map_key(s3, req.bucket, prediction, req.key)
    head = s3io.head(s3, req.bucket, req.key, req.version_id)
    if head is None:
        raise InvalidInputError(f"{req.key} no longer exists (deleted?)", code="input_missing")
    if int(head.get("ContentLength") or 0) > MAX_SAMPLE_BYTES:
        raise InvalidInputError(
            f"{req.key} is over {MAX_SAMPLE_BYTES // 1024**2} MB: not an accuracy sample",
            code="too_large",
        )
    sample = s3io.download(
        s3, req.bucket, req.key, scratch / "sample.gpkg", version_id=req.version_id
    )
    classes = s3io.download(s3, req.bucket, classes_key, scratch / "classes.tif")
    result = assess(classes, sample, map_name=classes_key, sample_name=req.key)
    files = write_reports(result, scratch / "out")
    doc = result.to_dict()
    summary = {
        "schema": SCHEMA,
        "kind": "assess",
        "status": "succeeded",
        "sample": sample_ref,
        "map": {"key": classes_key, "fingerprint": doc["fingerprint"]},
        "area_unit": doc["area_unit"],
        "overall_accuracy": doc["overall_accuracy"],
        "classes": [{k: c[k] for k in SUMMARY_CLASS_FIELDS} for c in doc["classes"]],
        "points": doc["points"],
        "outputs": {name: sink.location(name) for name in files},
        "timings_s": {"total": round(time.perf_counter() - t0, 3)},
        "versions": {"rasterdrop": __version__},
        "created_at": clock.iso_stamp(),
    }
    publish(sink, files, summary)
    log.info("assessed s3://%s/%s → %s", req.bucket, req.key, sink.prefix)
    return AssessOutcome("succeeded", 0, "done", sink.prefix, summary)


def _map_key(s3: Any, bucket: str, prediction: str, sample_key: str) -> str:
    """The class map of ``output/<path>/``, as that prediction's summary names it."""
    found = s3io.get_json(s3, bucket, prediction + SUMMARY_JSON)
    if found is None or not isinstance(found[0], dict):
        raise InvalidInputError(
            f"{sample_key}: there is no finished prediction at {prediction} to assess "
            "(name the labelled sample after its map: assessments/<path>.gpkg for "
            "output/<path>/)",
            code="no_prediction",
        )
    if found[0].get("task") == "regression":
        raise InvalidInputError(
            f"{sample_key}: the prediction at {prediction} is a regression (prediction.tif): "
            "an accuracy assessment needs a class map",
            code="not_a_class_map",
        )
    key = (found[0].get("outputs") or {}).get("classes") or prediction + "classes.tif"
    return key if key.startswith(prediction) else prediction + key


def _failure(exc: RasterdropError, sample_ref: dict, prediction: str) -> dict[str, Any]:
    return {
        "schema": "rasterdrop.error/1",
        "kind": "assess",
        "status": "failed",
        "category": exc.category,
        "code": exc.code,
        "message": exc.message,
        "details": dict(exc.details),
        "input": sample_ref,
        "prediction": prediction,
        "created_at": clock.iso_stamp(),
    }
