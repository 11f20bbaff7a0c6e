"""The train job in S3 mode: the job definition's ``train --bucket B --key K --version-id V``.

``K`` is ``training/<name>/manifest.json`` (the train rule's pattern). The job reads that
manifest version, trains through the same code path as the local manifest form
(:func:`batch_image.training.train_model`) with the S3 ends of the seam (``s3_fetcher``
relative to the manifest's prefix, ``S3ModelStore``), and writes its run report
``models/<name>/runs/<run-id>/summary.json`` (or ``error.json``), which the notify handler
reads. The manifest's ``name`` must be the ``<name>`` of its key, so the model, its report
and the notification agree. Exit codes as for predict: 0 done, 2 bad manifest or data,
3 model/configuration error, other: retry (``error.json`` only on the last attempt).
"""

from __future__ import annotations

import logging
import posixpath
import time
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import InternalError, InvalidInputError, RasterdropError
from batch_image.settings import Settings

log = logging.getLogger("batch_image.train_job")


def model_name_of(key: str) -> str:
    """``<name>`` of ``<prefix>/<name>/manifest.json``."""
    parts = key.split("/")
    if len(parts) < 3 or not parts[-2]:
        raise InvalidInputError(
            f"{key} is not <training prefix>/<name>/<manifest>", code="bad_manifest_key"
        )
    return parts[-2]


def run(
    bucket: str,
    key: str,
    version_id: str | None,
    settings: Settings,
    *,
    s3: Any = None,
) -> int:
    """Train from the manifest at ``s3://bucket/key`` (version); the process exit code."""
    from batch_image.manifest import parse_manifest_text
    from batch_image.s3_model_store import S3ModelStore, s3_fetcher
    from batch_image.training import train_model

    s3 = s3 or s3io.client()
    version_id = version_id if version_id and version_id.lower() not in ("null", "none") else None
    run_id = s3io.run_id_for(version_id)
    name = model_name_of(key)
    started = time.time()
    try:
        text = s3io.get_bytes(s3, bucket, key, version_id=version_id)
        if text is None:
            raise InvalidInputError(f"s3://{bucket}/{key} does not exist", code="not_found")
        spec = parse_manifest_text(text, source=posixpath.basename(key))
        if spec.name != name:
            raise InvalidInputError(
                f"the manifest names model {spec.name!r} but lives under {name!r}: "
                f"put it at .../{spec.name}/manifest.json",
                code="manifest_name_mismatch",
            )
        scratch = Path(settings.scratch) / f"train-{run_id}"
        base = f"s3://{bucket}/{posixpath.dirname(key)}/"
        fetch = s3_fetcher(base, scratch / "fetched", s3=s3, max_bytes=settings.max_input_bytes)
        store = S3ModelStore(bucket, models_prefix=settings.models_prefix, s3=s3, scratch=scratch)
        result = train_model(spec, fetch, store, promote=None, log=log.info)
    except RasterdropError as exc:
        return _failed(s3, bucket, key, version_id, name, run_id, exc, settings)
    except Exception as exc:  # anything else is internal: retried by the job definition
        log.exception("training failed")
        error = InternalError(f"training failed: {type(exc).__name__}", code="unexpected")
        return _failed(s3, bucket, key, version_id, name, run_id, error, settings)
    summary = {
        **result.summary(),
        "status": "succeeded",
        "manifest": _input(bucket, key, version_id),
    }
    s3io.write_run_report(s3, bucket, name, run_id, summary, models_prefix=settings.models_prefix)
    log.info(
        "trained %s version %s in %.1f s (promoted: %s)",
        name,
        result.version,
        time.time() - started,
        result.promoted,
    )
    print(f"trained {name} {result.version} → {result.location}")
    return 0


def _input(bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
    return {"bucket": bucket, "key": key, "version_id": version_id}


def _failed(
    s3: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    name: str,
    run_id: str,
    exc: RasterdropError,
    settings: Settings,
) -> int:
    log.error("training failed [%s/%s]: %s", exc.category, exc.code, exc.message)
    if exc.exit_code in (2, 3) or settings.is_last_attempt():
        doc = {
            "schema": "rasterdrop.error/1",
            "kind": "train",
            "status": "failed",
            **exc.to_dict(),
            "input": _input(bucket, key, version_id),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        s3io.write_run_report(s3, bucket, name, run_id, doc, models_prefix=settings.models_prefix)
    return exc.exit_code
