"""The train action in S3 mode: ``train --bucket B --key training/<name>/manifest.json``.

The same :func:`batch_image.train.trainer.train_model` as the local CLI, with the S3
ends of the seam (:mod:`batch_image.model.s3_store`): manifest paths resolve
against ``s3://B/training/<name>/`` and are downloaded to scratch; the model goes
to ``models/<name>/<version>/``; ``current.json`` moves as the promotion gate decides
(:mod:`batch_image.train.gate`: the manifest's ``promote``, else the stack's
``RASTERDROP_PROMOTE``, default ``if_better``; forward only: the run report's
``promoted`` says whether it did, ``model.promotion.reason`` why).
The run report the notify handler reads is
``models/<name>/runs/<manifest version>/summary.json``, or ``error.json`` with
the failure category when training is refused or fails for good.

Failures are recorded as the predict job records them (:mod:`batch_image.jobs.predict_job`):
invalid input and model/configuration errors at once; internal errors, and any
exception nobody categorized (as ``internal``/``unexpected``), only on the last
attempt, so a retry that then succeeds leaves no stale ``error.json`` behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import EXIT_OK, InvalidInputError
from batch_image.jobs.failures import failures_recorded
from batch_image.jobs.request import optional
from batch_image.jobs.run_reports import (
    failure_report,
    manifest_ref,
    run_id_for,
    success_report,
    write_run_report,
)
from batch_image.jobs.settings import Settings
from batch_image.model.s3_store import S3ModelStore
from batch_image.publish.layout import TRAINING_PREFIX
from batch_image.train import trainer
from batch_image.train.fetchers import Fetch, s3_fetcher, same_bucket_fetcher
from batch_image.train.manifest import Manifest, parse_manifest_text


@dataclass(frozen=True)
class TrainJobOutcome:
    status: str  # succeeded | failed
    exit_code: int
    report_key: str | None
    document: dict[str, Any]


@dataclass(frozen=True)
class _TrainRun:
    """One manifest version's run: what it reads and where its report goes."""

    s3: Any
    bucket: str
    key: str
    version_id: str | None
    name: str
    settings: Settings

    @property
    def manifest(self) -> dict[str, Any]:
        return manifest_ref(self.bucket, self.key, self.version_id)

    @property
    def base(self) -> str:
        """``s3://B/training/<name>/``: what manifest paths are relative to."""
        return f"s3://{self.bucket}/{self.settings.training_prefix}{self.name}/"

    def report(self, document: dict[str, Any]) -> str:
        run_id = run_id_for(self.version_id)
        return write_run_report(
            self.s3, self.bucket, self.settings.models_prefix, self.name, run_id, document
        )


def model_name_of(key: str, training_prefix: str = TRAINING_PREFIX) -> str:
    """``<name>`` of ``training/<name>/manifest.json``; anything else is refused."""
    pattern = rf"^{re.escape(training_prefix)}(?P<name>[^/]+)/manifest\.(json|ya?ml)$"
    match = re.match(pattern, key)
    if not match:
        raise InvalidInputError(
            f"{key} is not a training manifest key: use training/<name>/manifest.json",
            code="bad_training_key",
        )
    return match.group("name")


def run_s3_training(
    bucket: str,
    key: str,
    version_id: str | None,
    settings: Settings,
    *,
    s3: Any = None,
    say: Callable[[str], None] | None = None,
) -> TrainJobOutcome:
    """Train from the manifest object, publish the model, write the run report.

    Raises :class:`RasterdropError` after recording it (any other exception becomes
    an :class:`~batch_image.errors.InternalError` first, as in the predict job). A key
    that is not a training manifest's gets no report: it names no run.
    """
    name = model_name_of(key, settings.training_prefix)
    # "", "null", an unresolved "Ref::version": the latest version, reported under runs/null/
    run = _TrainRun(s3 or s3io.client(), bucket, key, optional(version_id), name, settings)
    settings.scratch.mkdir(parents=True, exist_ok=True)  # as the predict job does
    scratch = Path(tempfile.mkdtemp(prefix="rasterdrop-train-", dir=settings.scratch))
    try:
        with failures_recorded(lambda exc: run.report(failure_report(exc, name, run.manifest)),
                               settings):  # fmt: skip
            return _train(run, scratch, say)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(run: _TrainRun, scratch: Path, say: Callable[[str], None] | None) -> TrainJobOutcome:
    spec = _read_manifest(run)
    store = S3ModelStore(
        run.bucket, models_prefix=run.settings.models_prefix, s3=run.s3, scratch=scratch
    )
    result = trainer.train_model(
        spec,
        _fetcher(run, scratch),
        store,
        log=say,
        workers=run.settings.workers,
        default_promote=run.settings.promote,
        tolerance=run.settings.promote_tolerance,
    )
    document = success_report(result.summary(), run.manifest, result.location)
    return TrainJobOutcome("succeeded", EXIT_OK, run.report(document), document)


def _read_manifest(run: _TrainRun) -> Manifest:
    """The manifest version the event names; its ``name`` must be its folder's."""
    try:
        text = s3io.get_bytes(run.s3, run.bucket, run.key, version_id=run.version_id)
    except ValueError as exc:
        raise InvalidInputError(str(exc), code="manifest_too_large") from exc
    if text is None:
        raise InvalidInputError(
            f"s3://{run.bucket}/{run.key} (version {run.version_id or 'latest'}) does not exist",
            code="not_found",
        )
    spec = parse_manifest_text(text, source=run.key)
    if spec.name != run.name:
        raise InvalidInputError(
            f"manifest name {spec.name!r} differs from its folder "
            f"{run.settings.training_prefix}{run.name}/: make them equal",
            code="manifest_name_mismatch",
        )
    return spec


def _fetcher(run: _TrainRun, scratch: Path) -> Fetch:
    """Manifest paths as objects of the job's own bucket, downloaded into scratch."""
    fetched = scratch / "fetched"
    fetched.mkdir()
    inner = s3_fetcher(run.base, fetched, s3=run.s3, max_bytes=run.settings.max_input_bytes)
    return same_bucket_fetcher(run.bucket, run.base, inner)
