"""S3 mode: one input object version → ``output/<path>/``, exactly once.

The order of work makes a bad input cheap and a retry safe:

1. the key (pure checks), the model card (small), HEAD of the input (size cap,
   version), the raster header from ranged reads: a bad, foreign or oversized
   file fails in seconds, before any download;
2. done already? ``summary.json`` names this run (input version + model
   version) → exit 0 without writing anything;
3. the lease ``partial/<run-id>/lease.json`` (see :mod:`batch_image.jobs.lease`):
   a job that does not get it waits, polling, until the holder's ``summary.json``
   appears (then it exits 0 as a duplicate, having written nothing) or the lease
   expires (then it takes over and resumes from the holder's checkpoints). So a
   job exits 0 only once the result exists: the notification of either job finds
   it. After getting the lease, "done already?" is asked again;
4. model, scratch-space check, parallel download, prediction with every finished
   chunk checkpointed under ``partial/<run-id>/chunks/`` and earlier attempts'
   chunks restored instead of recomputed;
5. publish (unless a newer version of the key arrived meanwhile): the old
   done-marker is removed first, then the result files, then ``summary.json``
   last; then the partials and the lease are deleted.

Outcomes and exit codes (DESIGN.md): ``succeeded``, ``duplicate`` and
``superseded`` (a versioned input whose version is no longer the key's latest:
the newer version's own event handles the path; nothing is written) exit 0. A
job whose lease was taken over mid-run (it stalled past the lease's validity)
stops writing and goes back to waiting as above. Invalid input exits 2 and
model/configuration errors exit 3, both with ``error.json``. Internal errors
exit 1 (Batch retries); they write ``error.json`` only on the last attempt
(``AWS_BATCH_JOB_ATTEMPT`` ≥ ``RASTERDROP_MAX_ATTEMPTS``, or when either is
unknown), so a retry that then succeeds leaves no stale failure behind and a
job that finally fails always leaves one. A key that fails the key checks gets
no ``error.json``: there is no safe output location for it. The input object
is only ever read.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import InternalError, InvalidInputError, RasterdropError
from batch_image.jobs.checkpoints import CheckpointStore
from batch_image.jobs.lease import Lease, LeaseLost
from batch_image.jobs.request import JobRequest, check_key, output_prefix_for, run_id
from batch_image.jobs.settings import Settings
from batch_image.logs import log_fields
from batch_image.model import source as model_source
from batch_image.model.card import ModelCard, load_card, load_estimator
from batch_image.model.compatibility import check_compatible
from batch_image.predict.outputs import (
    CLASSES_QML,
    CLASSES_TIF,
    CONFIDENCE_TIF,
    ERROR_JSON,
    PREVIEW_PNG,
    SUMMARY_JSON,
)
from batch_image.predict.pipeline import PredictOptions, Resume, error_document, predict_to_dir
from batch_image.raster.remote import check_remote_raster

log = logging.getLogger(__name__)

RESULT_FILES = (CLASSES_TIF, CONFIDENCE_TIF, PREVIEW_PNG, CLASSES_QML)
SCRATCH_MARGIN = 256 * 1024**2
MAX_TAKEOVERS = 3


@dataclass
class Outcome:
    status: str
    exit_code: int = 0
    message: str = ""
    output_prefix: str | None = None
    summary: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Run:
    """What the job learned about its input so far (goes into summary/error.json)."""

    req: JobRequest
    settings: Settings
    s3: Any
    out_prefix: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    model: dict[str, Any] | None = None

    def key(self, name: str) -> str:
        assert self.out_prefix is not None
        return self.out_prefix + name


def run(
    req: JobRequest, settings: Settings, *, s3: Any = None, workers: int | None = None
) -> Outcome:
    """Run one S3 predict job; raises :class:`RasterdropError` after recording it."""
    workers = workers or settings.workers
    s3 = s3 or s3io.client(max_pool=2 * (workers or 8) + 4)
    state = _Run(req, settings, s3)
    state.meta = {
        "path": None,
        "bucket": req.bucket,
        "key": req.key,
        "version_id": req.version_id,
        "etag": req.etag,
        "size_bytes": req.size,
    }
    path = check_key(req.key, settings.input_prefix)  # no safe place for error.json otherwise
    state.out_prefix = output_prefix_for(path, settings.output_prefix)
    scratch: Path | None = None
    try:
        settings.scratch.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="rasterdrop-", dir=settings.scratch))
        for _ in range(MAX_TAKEOVERS):
            try:
                return _run(state, scratch, workers)
            except LeaseLost:
                log.warning("lease lost: another job took over this run; waiting for it")
        raise InternalError("the run's lease kept changing hands", code="lease_contention")
    except RasterdropError as exc:
        _record_failure(state, exc)
        raise
    except Exception as exc:
        log.exception("internal error")
        first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
        err = InternalError(f"{type(exc).__name__}: {first_line}", code="unexpected")
        _record_failure(state, err)
        raise err from exc
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _record_failure(state: _Run, exc: RasterdropError) -> None:
    """error.json for non-retryable errors, and for internal ones on the last attempt."""
    retry_follows = isinstance(exc, InternalError) and not state.settings.is_last_attempt()
    if state.out_prefix is None or retry_follows:
        if retry_follows:
            log.warning("internal error on attempt %s: a retry follows", state.settings.attempt)
        return
    doc = error_document(exc, state.meta)
    doc["model"] = state.model
    doc["run_id"] = state.run_id
    try:
        s3 = state.s3
        bucket = state.req.bucket
        found = s3io.get_json(s3, bucket, state.key(SUMMARY_JSON))
        if found is not None:  # a result of an earlier version must not look current
            s3.delete_object(Bucket=bucket, Key=state.key(SUMMARY_JSON))
        s3io.put_json(s3, bucket, state.key(ERROR_JSON), doc)
        log.info("wrote s3://%s/%s", bucket, state.key(ERROR_JSON))
    except Exception:
        log.exception("could not write error.json")


def _done(state: _Run) -> bool:
    found = s3io.get_json(state.s3, state.req.bucket, state.key(SUMMARY_JSON))
    return bool(found and isinstance(found[0], dict) and found[0].get("run_id") == state.run_id)


def _head_input(state: _Run) -> dict[str, Any]:
    req, s3 = state.req, state.s3
    obj = s3io.head(s3, req.bucket, req.key, req.version_id)
    if obj is None:
        what = f"version {req.version_id} of " if req.version_id else ""
        raise InvalidInputError(
            f"{what}s3://{req.bucket}/{req.key} does not exist (deleted?)", code="input_missing"
        )
    version = obj.get("VersionId")
    version = None if version in (None, "", "null") else str(version)
    etag = s3io.etag_of(obj)
    size = int(obj.get("ContentLength") or 0)
    state.meta.update(version_id=version, etag=etag, size_bytes=size)
    if req.etag and req.etag != etag and not req.version_id:
        log.warning(
            "the object changed since the event (ETag %s → %s): using its content now",
            req.etag,
            etag,
        )
    if size > state.settings.max_input_bytes:
        raise InvalidInputError(
            f"{req.key} is {size:,} bytes, over the limit of {state.settings.max_input_bytes:,}",
            code="too_large",
            size_bytes=size,
            max_bytes=state.settings.max_input_bytes,
        )
    return obj


def _superseded(state: _Run) -> bool:
    """A versioned input whose version is no longer the key's latest (or was deleted)."""
    version = state.meta.get("version_id")
    if not state.req.version_id or not version:
        return False
    latest = s3io.head(state.s3, state.req.bucket, state.req.key)
    latest_version = latest.get("VersionId") if latest else None
    return latest_version != version


def _run(state: _Run, scratch: Path, workers: int | None) -> Outcome:
    t0 = time.perf_counter()
    req, settings, s3 = state.req, state.settings, state.s3
    source = model_source.resolve(settings.model_uri, s3)
    model_dir = scratch / "model"
    card_dir = model_source.fetch_card_file(source, model_dir, s3)
    card = load_card(card_dir)
    state.model = {"name": card.name, "version": card.version, "uri": source.uri}

    _head_input(state)
    if _superseded(state):
        log.info(
            "version %s of %s is no longer the latest: skipped", state.meta["version_id"], req.key
        )
        return Outcome("superseded", 0, "a newer version of the input exists", state.out_prefix)
    identity = state.meta["version_id"] or state.meta["etag"]
    state.run_id = run_id(req.bucket, req.key, identity, card.name, card.version)
    if _done(state):
        log.info("already done: s3://%s/%s", req.bucket, state.key(SUMMARY_JSON))
        return Outcome("duplicate", 0, "already done", state.out_prefix)

    pixels = _check_header(state, card)
    t_checked = time.perf_counter()

    partial = f"{settings.partial_prefix}{state.run_id}/"
    lease = Lease(
        s3,
        req.bucket,
        partial + "lease.json",
        ttl=settings.lease_seconds,
        job_id=settings.job_id,
        attempt=settings.attempt,
    )
    if not _await_lease(state, lease):
        return Outcome("duplicate", 0, "done by another job", state.out_prefix)
    try:
        if _done(state):
            s3io.delete_prefix(s3, req.bucket, partial, keep=(lease.key,))
            lease.release()
            return Outcome("duplicate", 0, "already done", state.out_prefix)
        estimator = load_estimator(model_source.fetch_estimator_file(source, model_dir, s3), card)
        local_input = _download_input(state, scratch, workers, pixels)
        store = CheckpointStore(
            s3,
            req.bucket,
            partial + "chunks/",
            batch_pixels=settings.checkpoint_pixels,
            guard=lease.check,
        )
        options = PredictOptions(
            workers=workers, max_pixels=settings.max_pixels, target_pixels=settings.window_pixels
        )
        meta = {k: v for k, v in state.meta.items() if k != "path"}
        try:
            summary = predict_to_dir(
                local_input,
                estimator,
                card,
                scratch / "out",
                options,
                input_meta=meta,
                resume=Resume(plan=store.plan, restore=store.restore, checkpoint=store.checkpoint),
            )
        except BaseException:
            store.abort()
            raise
        store.close()
        if _superseded(state):  # a newer version arrived while we computed: do not publish
            lease.stop()
            s3io.delete_prefix(s3, req.bucket, partial, keep=(lease.key,))
            lease.release()
            return Outcome("superseded", 0, "a newer version of the input exists", state.out_prefix)
        summary["timings_s"]["checks"] = round(t_checked - t0, 3)
        summary["run_id"] = state.run_id
        summary["model"]["uri"] = source.uri
        _publish(state, scratch / "out", summary, lease)
        lease.stop()
        removed = s3io.delete_prefix(s3, req.bucket, partial, keep=(lease.key,))
        lease.release()
        summary["timings_s"]["job_total"] = round(time.perf_counter() - t0, 3)
        log.info(
            "done: s3://%s/%s (%d windows resumed, %d partial objects removed)",
            req.bucket,
            state.key(SUMMARY_JSON),
            summary.get("resumed_windows", 0),
            removed,
            extra=log_fields(run_id=state.run_id, timings=summary["timings_s"]),
        )
        return Outcome("succeeded", 0, "done", state.out_prefix, summary)
    except RasterdropError as exc:
        if not exc.final:
            raise
        # final for this run: nobody should wait on the lease or keep its checkpoints
        lease.stop()
        s3io.delete_prefix(s3, req.bucket, partial, keep=(lease.key,))
        lease.release()
        raise
    finally:
        lease.stop()


def _await_lease(state: _Run, lease: Lease) -> bool:
    """Get the lease (True), or wait until the holder's result exists (False).

    Polls every tenth of the lease's lifetime (1–30 s); the holder either finishes
    (its ``summary.json`` appears) or stops renewing (the lease expires and
    :meth:`Lease.acquire` takes it over).
    """
    poll = min(30.0, max(1.0, state.settings.lease_seconds / 10))
    waited = False
    while not lease.acquire():
        if _done(state):
            return False
        if not waited:
            holder = lease.took_over or {}
            log.info(
                "waiting: job %s (attempt %s) is computing this run",
                holder.get("job_id"),
                holder.get("attempt"),
                extra=log_fields(holder=holder),
            )
            waited = True
        time.sleep(poll)
    return True


def _check_header(state: _Run, card: ModelCard) -> int:
    """Header checks from ranged reads; returns the raster's pixel count."""
    req = state.req
    info, source = check_remote_raster(
        state.s3,
        req.bucket,
        req.key,
        size=int(state.meta["size_bytes"]),
        max_pixels=state.settings.max_pixels,
        name=req.key,
        version_id=state.meta.get("version_id"),
        etag=None if state.meta.get("version_id") else state.meta.get("etag"),
    )
    check_compatible(info, card, req.key)
    log.info(
        "header ok: %d × %d × %d %s (%d ranged read(s), %d bytes)",
        info.width,
        info.height,
        info.count,
        info.dtype,
        source.requests,
        source.bytes_read,
        extra=log_fields(header_requests=source.requests, header_bytes=source.bytes_read),
    )
    return info.width * info.height


def _download_input(state: _Run, scratch: Path, workers: int | None, pixels: int) -> Path:
    size = int(state.meta["size_bytes"])
    free = shutil.disk_usage(scratch).free
    # the input, two uncompressed uint8 scratch rasters and their COGs, plus a margin
    need = size + SCRATCH_MARGIN + 4 * pixels
    if free < need:
        raise InternalError(
            f"not enough scratch space: {free:,} bytes free, {need:,} needed",
            code="scratch_full",
            free_bytes=free,
            needed_bytes=need,
        )
    suffix = ".tiff" if state.req.key.lower().endswith(".tiff") else ".tif"
    dest = scratch / f"input{suffix}"
    t = time.perf_counter()
    s3io.download(
        state.s3,
        state.req.bucket,
        state.req.key,
        dest,
        version_id=state.meta.get("version_id"),
        workers=workers or 8,
    )
    got = dest.stat().st_size
    if got != size:
        raise InternalError(f"downloaded {got} bytes, expected {size}", code="short_download")
    if not state.meta.get("version_id"):
        # unversioned: the download is pinned to the ETag s3transfer saw, ours must match it
        now = s3io.head(state.s3, state.req.bucket, state.req.key)
        if now is None or s3io.etag_of(now) != state.meta["etag"]:
            raise InternalError(
                f"{state.req.key} was replaced while it was being read; retrying",
                code="input_changed",
            )
    log.info("downloaded %d bytes in %.1fs", size, time.perf_counter() - t)
    return dest


def _publish(state: _Run, out_dir: Path, summary: dict[str, Any], lease: Lease) -> None:
    """Result files first, ``summary.json`` last; the previous done-marker goes first."""
    s3, bucket = state.s3, state.req.bucket
    lease.check()
    s3.delete_object(Bucket=bucket, Key=state.key(SUMMARY_JSON))
    outputs = {}
    for label, name in summary["outputs"].items():
        lease.check()
        s3io.upload(s3, out_dir / name, bucket, state.key(name))
        outputs[label] = state.key(name)
    summary["outputs"] = outputs
    s3.delete_object(Bucket=bucket, Key=state.key(ERROR_JSON))
    lease.check()
    s3io.put_json(s3, bucket, state.key(SUMMARY_JSON), summary)
