"""Sharded runs: an input too big for one job is planned, predicted by an array job's
children and published by an assemble job that depends on the whole array.

The job the rule starts (the *planner*) checks the input as any run does; when its pixel
count is over ``shard_pixels`` it submits, on its own queue and job definition and with
the parameters it was given:

* an array job of ``N = ceil(pixels / shard_pixels)`` children (``--part shard --shards
  N``): child ``k`` (``AWS_BATCH_JOB_ARRAY_INDEX``) predicts share ``k`` of the window plan
  (:func:`batch_image.predict.pipeline.share`) into ``partial/<run-id>/chunks/`` in the
  checkpoint format (:mod:`batch_image.jobs.checkpoints`), under its own lease
  ``partial/<run-id>/shards/<k>/lease.json``;
* an assemble job (``--part assemble --shards N``) with ``dependsOn`` the array: the
  ordinary run whose every window is restored from the chunks (it computes only a window
  it does not find), publishing through the result protocol as any run.

Then it records the plan in ``partial/<run-id>/plan.json`` (created with
``If-None-Match: *``, under the run's lease) and ends ``in_progress`` (exit 5, the
notifier's "another job owns the email" row). A duplicate event finds the plan (or the
result) and adds nothing. Each child writes ``partial/<run-id>/shards/<k>/done.json``
with its compute (vCPU-seconds), which the assemble job adds up in ``summary.json``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from batch_image import clock, s3io
from batch_image.jobs.request import PART_ASSEMBLE, PART_SHARD, JobRequest

log = logging.getLogger(__name__)

PLAN_NAME = "plan.json"  # partial/<run-id>/plan.json: the sharded run's submitted jobs
SHARDS_SEGMENT = "shards/"  # partial/<run-id>/shards/<k>/lease.json | done.json
DONE_NAME = "done.json"
#: AWS Batch's array size bounds (SubmitJob arrayProperties.size: 2..10,000)
MIN_SHARDS, MAX_SHARDS = 2, 10_000


def shard_count(pixels: int, shard_pixels: int) -> int:
    """Children for ``pixels``: 0 (not sharded) at or under ``shard_pixels``, else
    ``ceil(pixels / shard_pixels)`` within Batch's array bounds."""
    if shard_pixels <= 0 or pixels <= shard_pixels:
        return 0
    return min(MAX_SHARDS, max(MIN_SHARDS, math.ceil(pixels / shard_pixels)))


def shard_prefix(partial: str, index: int) -> str:
    """``partial/<run-id>/shards/<k>/``."""
    return f"{partial}{SHARDS_SEGMENT}{index:05d}/"


def parameters(req: JobRequest, part: str, shards: int) -> dict[str, str]:
    """The planner's own parameters (what the rule gave it) plus ``part`` and ``shards``."""
    return {
        "bucket": req.bucket,
        "key": req.key,
        "version": req.version_id or "",
        "etag": req.etag or "",
        "size": "" if req.size is None else str(req.size),
        "part": part,
        "shards": str(shards),
    }


@dataclass(frozen=True)
class Submitter:
    """SubmitJob on the job's own queue and job definition (the job role may do no more)."""

    batch: Any
    queue: str
    definition: str

    def array(self, name: str, params: dict[str, str], size: int) -> str:
        resp = self.batch.submit_job(
            jobName=name,
            jobQueue=self.queue,
            jobDefinition=self.definition,
            arrayProperties={"size": size},
            parameters=params,
            propagateTags=True,
        )
        return str(resp["jobId"])

    def after(self, name: str, params: dict[str, str], depends_on: str) -> str:
        resp = self.batch.submit_job(
            jobName=name,
            jobQueue=self.queue,
            jobDefinition=self.definition,
            dependsOn=[{"jobId": depends_on}],
            parameters=params,
            propagateTags=True,
        )
        return str(resp["jobId"])


def job_names(run_id: str) -> tuple[str, str]:
    """Batch job names (up to 128 of ``[A-Za-z0-9_-]``) of the children and the assembly."""
    return f"rasterdrop-shards-{run_id[:16]}", f"rasterdrop-assemble-{run_id[:16]}"


def submit(submitter: Submitter, req: JobRequest, run_id: str, shards: int) -> dict[str, Any]:
    """The array of children, then the assemble job depending on it: ``plan.json``'s body."""
    children, assemble = job_names(run_id)
    array_id = submitter.array(children, parameters(req, PART_SHARD, shards), shards)
    assemble_id = submitter.after(assemble, parameters(req, PART_ASSEMBLE, shards), array_id)
    log.info("planned %d shard(s): array job %s, assemble job %s", shards, array_id, assemble_id)
    return {
        "shards": shards,
        "array_job_id": array_id,
        "assemble_job_id": assemble_id,
        "queue": submitter.queue,
        "job_definition": submitter.definition,
        "planned_at": clock.iso_stamp(),
    }


def read_plan(s3: Any, bucket: str, partial: str) -> dict[str, Any] | None:
    found = s3io.get_json(s3, bucket, partial + PLAN_NAME)
    return found[0] if found and isinstance(found[0], dict) else None


def write_plan(s3: Any, bucket: str, partial: str, plan: dict[str, Any]) -> bool:
    """Create ``plan.json``; False when one exists already (another planner won)."""
    try:
        s3io.put_json(s3, bucket, partial + PLAN_NAME, plan, if_none_match=True)
    except Exception as exc:
        if s3io.is_precondition_failed(exc):
            return False
        raise
    return True


def write_done(s3: Any, bucket: str, partial: str, index: int, doc: dict[str, Any]) -> None:
    s3io.put_json(s3, bucket, shard_prefix(partial, index) + DONE_NAME, doc)


def children_compute(s3: Any, bucket: str, partial: str, shards: int) -> dict[str, float]:
    """The children's recorded compute: ``vcpu_s`` and ``cpu_s`` summed over their
    ``done.json`` (a child that left none counts 0), and their count."""
    vcpu = cpu = 0.0
    for index in range(shards):
        found = s3io.get_json(s3, bucket, shard_prefix(partial, index) + DONE_NAME)
        doc = found[0] if found and isinstance(found[0], dict) else {}
        vcpu += float(doc.get("vcpu_s") or 0)
        cpu += float(doc.get("cpu_s") or 0)
    return {"shards": shards, "vcpu_s": vcpu, "cpu_s": cpu}
