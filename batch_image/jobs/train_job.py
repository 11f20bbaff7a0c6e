"""The train action in S3 mode: ``train --bucket B --key training/<name>/manifest.json``.

The same :func:`batch_image.train.trainer.train_model` as the local CLI, with the S3
ends of the seam (:mod:`batch_image.model.s3_store`): manifest paths resolve
against ``s3://B/training/<name>/`` and are downloaded to scratch; the model goes
to ``models/<name>/<version>/``; ``current.json`` moves when the manifest says
``promote: true``. The run report the notify handler reads is
``models/<name>/runs/<manifest version>/summary.json``, or ``error.json`` with
the failure category when training is refused or fails for good.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_image import clock
from batch_image.errors import EXIT_OK, InvalidInputError, RasterdropError
from batch_image.jobs.settings import Settings
from batch_image.publish.layout import TRAINING_PREFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJobOutcome:
    status: str  # succeeded | failed
    exit_code: int
    report_key: str | None
    document: dict[str, Any]


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

    Raises :class:`RasterdropError` after writing ``error.json`` (for internal errors
    only on the last attempt, so a retry can still succeed without a stale report).
    """
    from batch_image import s3io
    from batch_image.jobs.request import optional
    from batch_image.jobs.run_reports import run_id_for, write_run_report
    from batch_image.model.s3_store import S3ModelStore
    from batch_image.train.fetchers import s3_fetcher, same_bucket_fetcher
    from batch_image.train.manifest import parse_manifest_text
    from batch_image.train.trainer import train_model

    name = model_name_of(key, settings.training_prefix)
    version_id = optional(version_id)  # "", "null", an unresolved "Ref::version": latest
    s3 = s3 or s3io.client()
    run = run_id_for(version_id)
    manifest_ref = {"bucket": bucket, "key": key, "version_id": version_id}
    scratch = Path(tempfile.mkdtemp(prefix="rasterdrop-train-", dir=settings.scratch_dir))
    try:
        try:
            text = s3io.get_bytes(s3, bucket, key, version_id=version_id)
        except ValueError as exc:
            raise InvalidInputError(str(exc), code="manifest_too_large") from exc
        if text is None:
            raise InvalidInputError(
                f"s3://{bucket}/{key} (version {version_id or 'latest'}) does not exist",
                code="not_found",
            )
        spec = parse_manifest_text(text, source=key)
        if spec.name != name:
            raise InvalidInputError(
                f"manifest name {spec.name!r} differs from its folder "
                f"{settings.training_prefix}{name}/: make them equal",
                code="manifest_name_mismatch",
            )
        base = f"s3://{bucket}/{settings.training_prefix}{name}/"
        fetch = same_bucket_fetcher(
            bucket,
            base,
            s3_fetcher(base, scratch / "fetched", s3=s3, max_bytes=settings.max_input_bytes),
        )
        (scratch / "fetched").mkdir()
        store = S3ModelStore(bucket, models_prefix=settings.models_prefix, s3=s3, scratch=scratch)
        result = train_model(spec, fetch, store, log=say, workers=settings.workers)
        document = {
            **result.summary(),
            "status": "succeeded",
            "manifest": manifest_ref,
            "model_uri": result.location,
        }
        report = write_run_report(s3, bucket, settings.models_prefix, name, run, document)
        return TrainJobOutcome("succeeded", EXIT_OK, report, document)
    except RasterdropError as exc:
        if exc.category != "internal" or settings.is_last_attempt():
            _write_failure(s3, bucket, name, run, manifest_ref, exc, settings)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_failure(
    s3: Any,
    bucket: str,
    name: str,
    run: str,
    manifest_ref: dict[str, Any],
    exc: RasterdropError,
    settings: Settings,
) -> None:
    from batch_image.jobs.run_reports import write_run_report

    document = {
        "schema": "rasterdrop.error/1",
        "kind": "train",
        "status": "failed",
        **exc.to_dict(),
        "model": {"name": name},
        "manifest": manifest_ref,
        "input": manifest_ref,
        "created_at": clock.iso_stamp(),
    }
    try:
        write_run_report(s3, bucket, settings.models_prefix, name, run, document)
    except Exception:  # the exit code still tells Batch; the report is best effort
        log.exception("could not write the training error report")
