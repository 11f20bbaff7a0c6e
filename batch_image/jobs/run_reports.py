"""Run reports of the train job: ``models/<name>/runs/<run-id>/summary.json`` or ``error.json``.

The notify handler reads them (``rasterdrop_notify.paths.training_run_prefix`` is
the same rule on its side). They are written through the result protocol, so a
failure replaces a stale success of the same run and the other way round. Their
two documents are built here, once each.
"""

from __future__ import annotations

from typing import Any

from batch_image import clock
from batch_image.errors import RasterdropError
from batch_image.jobs.request import optional
from batch_image.publish.layout import RUNS_SEGMENT, SUMMARY_JSON
from batch_image.publish.protocol import publish, record_failure
from batch_image.publish.sinks import S3Prefix

UNVERSIONED_RUN = "null"


def run_id_for(version_id: str | None) -> str:
    """The run id of a manifest: its version id, or ``"null"`` in unversioned buckets
    (docs/contracts.md: such runs share ``runs/null/``)."""
    return optional(version_id) or UNVERSIONED_RUN


def run_prefix(models_prefix: str, name: str, run_id: str) -> str:
    """``<models prefix><name>/runs/<run-id>/``: the one place the job spells it."""
    return f"{models_prefix}{name}/{RUNS_SEGMENT}{run_id}/"


def manifest_ref(bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
    """Which manifest object the run read (its ``version_id`` None when unversioned)."""
    return {"bucket": bucket, "key": key, "version_id": version_id}


def success_report(
    summary: dict[str, Any], manifest: dict[str, Any], model_uri: str
) -> dict[str, Any]:
    """``summary.json``: the training's summary plus the manifest it read and the model's URI."""
    return {**summary, "status": "succeeded", "manifest": manifest, "model_uri": model_uri}


def failure_report(exc: RasterdropError, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """``error.json``: the predict job's ``rasterdrop.error/1`` shape, ``kind: train``."""
    return {
        "schema": "rasterdrop.error/1",
        "kind": "train",
        "status": "failed",
        **exc.to_dict(),
        "model": {"name": name},
        "manifest": manifest,
        "input": manifest,
        "created_at": clock.iso_stamp(),
    }


def write_run_report(
    s3: Any, bucket: str, models_prefix: str, name: str, run_id: str, document: dict[str, Any]
) -> str:
    """``summary.json`` (status succeeded) or ``error.json`` (status failed); returns the key."""
    sink = S3Prefix(s3, bucket, run_prefix(models_prefix, name, run_id))
    if document.get("status") == "failed":
        return record_failure(sink, document)
    return publish(sink, {}, document)[SUMMARY_JSON]
