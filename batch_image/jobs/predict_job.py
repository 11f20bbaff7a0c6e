"""S3 mode: one input object version → ``output/<path>/``, exactly once.

The order of work makes a bad input cheap and a retry safe:

1. the key (pure checks), the model card (small), HEAD of the input (size cap,
   version), the raster header from ranged reads: a bad, foreign or oversized
   file fails in seconds, before any download;
2. done already? ``summary.json`` names this run (input version + model
   version) → exit 0 without writing a result, after removing what a killed run
   left under ``partial/<run-id>/`` (:func:`_already_done`);
3. reusable? the result in place was computed from the same bytes (ETag and
   size) with the same model version → its ``summary.json`` is rewritten to name
   this version (``reused_from`` names the computed one): no download, no compute
   (:func:`reusable` states the rule; a new model version always recomputes);
4. the lease ``partial/<run-id>/lease.json`` (see :mod:`batch_image.jobs.lease`):
   a job that does not get it ends at once (:func:`_leased_elsewhere`): a
   duplicate (exit 0) if the holder's ``summary.json`` is there, else
   ``in_progress`` (exit 5, final, no email: the holder's job reports). After
   getting the lease, "done already?" is asked again;
5. model, scratch-space check, parallel download, prediction with every finished
   chunk checkpointed under ``partial/<run-id>/chunks/`` and earlier attempts'
   chunks restored instead of recomputed;
6. publish (unless a newer version of the key arrived meanwhile) through the
   result protocol (:func:`batch_image.publish.protocol.publish`, every write
   guarded by the lease check): the old done-marker is removed first, then the
   result files, then ``summary.json`` last; then the partials and the lease
   are deleted (:func:`_run_ends_with`, which also releases the lease on every
   other way out but SIGKILL).

Sharded runs (:mod:`batch_image.jobs.shards`): at step 5, an input over ``shard_pixels``
is planned instead (an array job of children and an assemble job submitted, ``plan.json``
written under the lease; outcome ``planned``, exit 5: the assemble job owns the email).
A child (``--part shard``) runs steps 1–2 and the header, then predicts its share of the
windows into the chunks under its own lease (``shard_done``, exit 0); the assemble job
(``--part assemble``) is the run above with every window restored from the chunks.

Outcomes and exit codes (DESIGN.md): ``succeeded``, ``duplicate`` and ``reused``
exit 0, so exit 0 always means ``summary.json`` of this input version exists.
``superseded`` (a versioned input whose version is no longer the key's latest:
the newer version's own event handles the path; nothing is written) exits 4 and
``in_progress`` exits 5; the retry strategy treats both as final and the notifier
sends nothing for them. A job whose lease was taken over mid-run (it stalled past
the lease's validity) stops writing and ends ``in_progress``. Invalid input exits 2
and model/configuration errors exit 3, both with ``error.json``; so does a scratch
volume too small for the input (``scratch_full``/``volume_too_small``). Internal
errors exit 1 (Batch retries); they write ``error.json`` only on the last attempt
(``AWS_BATCH_JOB_ATTEMPT`` ≥ ``RASTERDROP_MAX_ATTEMPTS``, or when either is
unknown), so a retry that then succeeds leaves no stale failure behind and a
job that finally fails always leaves one (:mod:`batch_image.jobs.failures`;
any other exception is recorded as ``internal``/``unexpected``, a full disk as
``scratch_full``). A key that fails the key checks gets no ``error.json``: there
is no safe output location for it. The input object is only ever read.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batch_image import clock, s3io
from batch_image.errors import (
    EXIT_IN_PROGRESS,
    EXIT_OK,
    EXIT_SUPERSEDED,
    ConfigError,
    InternalError,
    InvalidInputError,
    RasterdropError,
    ScratchFull,
    ScratchTooSmall,
)
from batch_image.jobs import shards
from batch_image.jobs.checkpoints import CheckpointStore
from batch_image.jobs.failures import failures_recorded
from batch_image.jobs.lease import Lease, LeaseLost
from batch_image.jobs.request import (
    PART_ASSEMBLE,
    PART_SHARD,
    JobRequest,
    check_key,
    output_prefix_for,
    run_id,
)
from batch_image.jobs.settings import Settings
from batch_image.logs import log_fields
from batch_image.model import source as model_source
from batch_image.model.card import ModelCard, load_card, load_estimator
from batch_image.model.compatibility import check_compatible
from batch_image.predict.documents import (
    ErrorDocument,
    InputRef,
    JobRef,
    ModelRef,
    Summary,
    compute_used,
)
from batch_image.predict.engine import predictor_for
from batch_image.predict.pipeline import (
    PredictOptions,
    Resume,
    cpu_count,
    output_bytes,
    predict_share,
    predict_to_dir,
)
from batch_image.predict.postprocess import PostProcess
from batch_image.publish.layout import CHUNKS_SEGMENT, LEASE_NAME
from batch_image.publish.protocol import current, done_by, publish, record_failure, republish
from batch_image.publish.sinks import S3Prefix
from batch_image.raster import vrt
from batch_image.raster.remote import (
    RemoteVrt,
    check_remote_raster,
    check_remote_vrt,
    download_vrt,
    head_remote_vrt,
)

log = logging.getLogger(__name__)

SCRATCH_MARGIN = 256 * 1024**2
MAX_TAKEOVERS = 3


@dataclass
class Outcome:
    status: str
    exit_code: int = 0
    message: str = ""
    output_prefix: str | None = None
    summary: dict[str, Any] | None = None  # summary.json as published (succeeded only)


@dataclass
class _Run:
    """What the job learned about its input so far (goes into summary/error.json)."""

    req: JobRequest
    settings: Settings
    s3: Any
    out_prefix: str
    input: InputRef
    run_id: str | None = None
    model: ModelRef | None = None
    vrt: RemoteVrt | None = None  # an input/<path>.vrt: its text and band files
    submitter: shards.Submitter | None = None  # where a sharded run's jobs go

    @property
    def part(self) -> str | None:
        """``shard`` (an array job's child), ``assemble``, or None (the rule's job)."""
        return self.req.part

    def resolved(self) -> JobRequest:
        """The request with HEAD's version, ETag and size: what the parts are given."""
        i = self.input
        return replace(self.req, version_id=i.version_id, etag=i.etag, size=i.size_bytes)

    @property
    def total_bytes(self) -> int:
        """The input's bytes: the object, plus a VRT's band files."""
        return int(self.input.size_bytes or 0) + (self.vrt.size if self.vrt else 0)

    @property
    def partial(self) -> str:
        """``partial/<run-id>/``: this run's lease and checkpoints."""
        assert self.run_id is not None
        return f"{self.settings.partial_prefix}{self.run_id}/"

    def results(self, guard: Callable[[], None] | None = None) -> S3Prefix:
        """``output/<path>/``; ``guard`` runs before every write (the lease check)."""
        return S3Prefix(self.s3, self.req.bucket, self.out_prefix, guard=guard)

    def outcome(
        self,
        status: str,
        message: str,
        exit_code: int = EXIT_OK,
        summary: dict[str, Any] | None = None,
    ) -> Outcome:
        return Outcome(status, exit_code, message, self.out_prefix, summary)


def run(
    req: JobRequest,
    settings: Settings,
    *,
    s3: Any = None,
    workers: int | None = None,
    submitter: shards.Submitter | None = None,
) -> Outcome:
    """Run one S3 predict job; raises :class:`RasterdropError` after recording it.

    ``submitter`` submits a sharded run's jobs (default: Batch, on the queue and job
    definition of the settings, when ``shard_pixels`` is set)."""
    workers = workers or settings.workers
    s3 = s3 or s3io.client(max_pool=2 * (workers or 8) + 4)
    path = check_key(req.key, settings.input_prefix)  # no safe place for error.json otherwise
    if submitter is None and settings.can_shard and req.part is None:
        assert settings.job_queue and settings.job_definition
        submitter = shards.Submitter(
            s3io.batch_client(), settings.job_queue, settings.job_definition
        )
    state = _Run(
        req,
        settings,
        s3,
        output_prefix_for(path, settings.output_prefix),
        InputRef(
            bucket=req.bucket,
            key=req.key,
            version_id=req.version_id,
            etag=req.etag,
            size_bytes=req.size,
        ),
        submitter=submitter,
    )
    with (
        failures_recorded(lambda exc: _record_failure(state, exc), settings),
        _scratch(settings) as scratch,
    ):
        return _run_until_settled(state, scratch, workers)


@contextmanager
def _scratch(settings: Settings) -> Iterator[Path]:
    """This job's own scratch directory, removed on every exit but SIGKILL."""
    settings.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="rasterdrop-", dir=settings.scratch))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_until_settled(state: _Run, scratch: Path, workers: int | None) -> Outcome:
    """Attempt the run; a lost lease means another job took over: wait for it again."""
    for _ in range(MAX_TAKEOVERS):
        try:
            return _attempt(state, scratch, workers)
        except LeaseLost:
            log.warning("lease lost: another job took over this run")
    raise InternalError("the run's lease kept changing hands", code="lease_contention")


def _record_failure(state: _Run, exc: RasterdropError) -> None:
    """``error.json`` through the result protocol (see :mod:`batch_image.jobs.failures`
    for when); no lease guard: a failure is recorded whether or not we hold the lease."""
    doc = ErrorDocument.of(exc, state.input, JobRef(state.model, state.run_id))
    where = record_failure(state.results(), doc.to_dict())
    log.info("wrote s3://%s/%s", state.req.bucket, where)


def _attempt(state: _Run, scratch: Path, workers: int | None) -> Outcome:
    """Cheap checks, done already?, reusable?, the lease; then compute (or reuse) under it."""
    t0 = time.perf_counter()
    source, card = _model_card(state, scratch / "model")
    _head_input(state)
    if _superseded(state):
        log.info(
            "version %s of %s is no longer the latest: skipped",
            state.input.version_id,
            state.req.key,
        )
        # a child ends 0 so its array completes; the assemble job ends superseded (4)
        code = EXIT_OK if state.part == PART_SHARD else EXIT_SUPERSEDED
        return state.outcome("superseded", "a newer version of the input exists", code)
    identity = state.input.version_id or state.input.etag
    if vrt.is_vrt_name(state.req.key):  # a VRT's content is its band files' content too
        identity = f"{identity}+{_head_vrt(state).identity}"
    state.run_id = run_id(state.req.bucket, state.req.key, identity, card.name, card.version)
    if done_by(state.results(), state.run_id):
        return _already_done(state)
    if state.part == PART_SHARD:
        pixels = _check_header(state, card, scratch)
        return _ShardJob(state, source, card, scratch, workers, t0).run(pixels)
    # a VRT is never reused: its band files can change under the same VRT bytes
    previous = None
    if not state.vrt:
        wanted = optional_outputs(state.settings, card)
        previous = reusable(current(state.results()), state.input, card, wanted)
    pixels = 0 if previous else _check_header(state, card, scratch)
    checks = time.perf_counter() - t0
    lease = Lease(
        state.s3,
        state.req.bucket,
        state.partial + LEASE_NAME,
        ttl=state.settings.lease_seconds,
        job_id=state.settings.job_id,
        attempt=state.settings.attempt,
    )
    if not (lease.acquire() or _waited_for(state, lease)):
        return _leased_elsewhere(state, lease)
    count = 0 if previous or state.part else _shards_for(state, pixels)
    if count:
        return _plan(state, lease, count)
    with _run_ends_with(state, lease):
        if done_by(state.results(), state.run_id):
            return state.outcome("duplicate", "already done")
        if previous:
            return _reuse(state, lease, previous)
        job = _Job(state, lease, source, card, scratch, workers, t0, checks)
        return job.compute_and_publish(pixels)


def _shards_for(state: _Run, pixels: int) -> int:
    """Children of a sharded run for ``pixels`` (0: this job predicts it all itself)."""
    count = shards.shard_count(pixels, state.settings.shard_pixels)
    if count and state.submitter is None:
        log.warning(
            "%d pixels are over shard_pixels, but no job queue/definition is set: one job",
            pixels,
        )
        return 0
    return count


def _plan(state: _Run, lease: Lease, count: int) -> Outcome:
    """Submit the children and the assemble job once, record them in ``plan.json``, end
    ``planned`` (exit 5: the assemble job, or the first final failure, sends the email).

    Under the run's lease; it is released (partials kept: they are the run) on every way
    out. A run planned already (a duplicate event) or done ends without submitting."""
    assert state.submitter is not None and state.run_id is not None
    try:
        if done_by(state.results(), state.run_id):
            return state.outcome("duplicate", "already done")
        bucket = state.req.bucket
        plan = shards.read_plan(state.s3, bucket, state.partial)
        if plan is None:
            if _superseded(state):
                return state.outcome(
                    "superseded", "a newer version of the input exists", EXIT_SUPERSEDED
                )
            lease.check()
            plan = shards.submit(state.submitter, state.resolved(), state.run_id, count)
            if not shards.write_plan(state.s3, bucket, state.partial, plan):
                log.warning("another job planned run %s meanwhile", state.run_id)
        message = (
            f"planned: {plan.get('shards')} shard(s), "
            f"assemble job {plan.get('assemble_job_id')} reports"
        )
        return state.outcome("planned", message, EXIT_IN_PROGRESS)
    finally:
        _release(state, lease)


def _waited_for(state: _Run, lease: Lease) -> bool:
    """The assemble job waits for the run's lease (a duplicate planner holds it for
    seconds; a planner that died, until it expires) instead of ending ``in_progress``:
    it owns the run's email. Any other job does not wait."""
    if state.part != PART_ASSEMBLE:
        return False
    deadline = time.monotonic() + 1.5 * state.settings.lease_seconds + 5
    while time.monotonic() < deadline:
        time.sleep(min(2.0, max(0.05, state.settings.lease_seconds / 10)))
        if done_by(state.results(), state.run_id or ""):
            return False  # _leased_elsewhere finds it: a duplicate
        if lease.acquire():
            return True
    return False


def _already_done(state: _Run) -> Outcome:
    """``summary.json`` names this run: exit 0 as a duplicate, after removing what a run
    killed between its ``summary.json`` and its cleanup left under ``partial/<run-id>/``.

    Safe: the done-marker is written last, so no job still needs this run's checkpoints,
    and a job that holds the lease is past its last write (its release then finds the
    lease gone, which it ignores)."""
    log.info("already done: s3://%s/%s", state.req.bucket, state.out_prefix)
    try:
        removed = s3io.delete_prefix(state.s3, state.req.bucket, state.partial)
    except Exception:
        log.warning("could not remove the leftover partials of run %s", state.run_id,
                    exc_info=True)  # fmt: skip
    else:
        if removed:
            log.info("removed %d leftover partial object(s) of run %s", removed, state.run_id)
    return state.outcome("duplicate", "already done")


def _leased_elsewhere(state: _Run, lease: Lease) -> Outcome:
    """Another live job holds the lease: end at once instead of holding a Batch slot.

    If its ``summary.json`` is there already, this is a plain duplicate (exit 0: the
    result exists). Otherwise exit :data:`EXIT_IN_PROGRESS` (final: the retry strategy
    does not retry it; the notifier sends nothing for it): the holder's own job ends in
    exactly one email, its result or its failure. A holder that died keeps the lease
    until it expires (:mod:`batch_image.jobs.lease`); its own job still reports.
    """
    if done_by(state.results(), state.run_id):
        return _already_done(state)
    holder = lease.took_over or {}
    log.info(
        "job %s (attempt %s) is computing this run: ending without a result of our own",
        holder.get("job_id"),
        holder.get("attempt"),
        extra=log_fields(holder=holder),
    )
    return state.outcome("in_progress", "another job is computing this run", EXIT_IN_PROGRESS)


def optional_outputs(settings: Settings, card: ModelCard) -> frozenset[str]:
    """The optional files (``Outputs`` labels) the stack's settings ask this run for."""
    if card.is_regression:  # a value map has no probabilities, review points or polygons
        return frozenset()
    asked = {
        "probabilities": settings.probabilities,
        "review": settings.review_points > 0,
        "polygons": settings.class_polygons,
        "accuracy_sample": settings.accuracy_sample_n > 0,
    }
    return frozenset(label for label, on in asked.items() if on)


def reusable(
    previous: dict[str, Any] | None,
    current_input: InputRef,
    card: ModelCard,
    wanted: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """The summary in place, if it is the same result: the reuse rule.

    Same bytes, the same model version and every optional file the settings now ask for
    (``wanted``: a result without ``probabilities.tif`` is not reused once the stack asks
    for it; conservative: a file the model card's settings left out recomputes too) are
    the same result. "Same bytes": the
    previous result's input has the same ETag and size as this version (S3's ETag is the
    MD5 of a single-part upload; a multipart upload's ETag depends on its part size, so
    the same bytes uploaded in other parts recompute: conservative, never wrong). "Same
    model": name and version equal. Only a succeeded result of another version of this
    key is reused; a new model version always recomputes.
    """
    if not previous or previous.get("status") != "succeeded":
        return None
    before = previous.get("input") or {}
    model = previous.get("model") or {}
    if not isinstance(before, dict) or not isinstance(model, dict):
        return None
    same_bytes = (
        bool(current_input.etag)
        and before.get("etag") == current_input.etag
        and before.get("size_bytes") == current_input.size_bytes
    )
    same_model = model.get("name") == card.name and model.get("version") == card.version
    other_version = before.get("version_id") != current_input.version_id
    outputs = previous.get("outputs") or {}
    has_files = isinstance(outputs, dict) and all(outputs.get(label) for label in wanted)
    return previous if same_bytes and same_model and other_version and has_files else None


def _reuse(state: _Run, lease: Lease, previous: dict[str, Any]) -> Outcome:
    """Point this input version at the result already in place: no download, no compute.

    The result files stay where they are; only ``summary.json`` is rewritten (one write,
    under the lease, after a last superseded check) to name this version and run, with
    ``reused_from`` naming the version that was computed. ``created_at`` stays the
    original's: it is the files' age, which bounds how long their links can live.
    """
    if _superseded(state):
        return state.outcome("superseded", "a newer version of the input exists", EXIT_SUPERSEDED)
    before = previous.get("input") or {}
    document = {
        **previous,
        "input": state.input.to_dict(),
        "run_id": state.run_id,
        "reused_from": {
            "version_id": before.get("version_id"),
            "run_id": previous.get("run_id"),
            "created_at": previous.get("created_at"),
        },
        "reused_at": clock.iso_stamp(),
        "job": _job_ref(state.settings),
    }
    republish(state.results(guard=lease.check), document)
    log.info(
        "reused: s3://%s/%s (same bytes as version %s, same model)",
        state.req.bucket,
        state.out_prefix,
        before.get("version_id"),
    )
    return state.outcome("reused", "same bytes and model version as the result in place", 0,
                         document)  # fmt: skip


def _model_card(state: _Run, model_dir: Path) -> tuple[model_source.ModelSource, ModelCard]:
    """Resolve ``RASTERDROP_MODEL_URI`` to one version and read its (small) card."""
    source = model_source.resolve(state.settings.model_uri, state.s3)
    card = load_card(model_source.fetch_card_file(source, model_dir, state.s3))
    state.model = ModelRef.of(card, source.uri)
    return source, card


@contextmanager
def _run_ends_with(state: _Run, lease: Lease) -> Iterator[None]:
    """Hold the run's lease for the body; release it on every way out but SIGKILL.

    Over means no attempt will ever need this run's partials again: the result
    is published (success, reuse), somebody else's result or a newer input version
    owns the output (duplicate, superseded), or the error is final (bad input,
    model, configuration). Then the heartbeat stops, the checkpoints are deleted
    and the lease is released last: a job arriving later finds the done-marker (if
    any) already written, so it exits as a duplicate.

    Not over (an internal error, SIGTERM, any other exception): the checkpoints stay
    for the retry, and the lease is released at once, so neither the retry nor a new
    job for this input waits for it to expire; whoever takes it next resumes from the
    checkpoints. A lost lease belongs to its taker and is left alone. Why releasing is
    safe: the delete is conditional on our own ETag (:mod:`batch_image.jobs.lease`), so a
    lease another job took over is never deleted. Only SIGKILL (OOM killer, a host that
    vanished) leaves a lease behind; it expires after its ttl, and the next attempt of
    the same Batch job takes it over at once.
    """
    try:
        yield
    except LeaseLost:
        raise
    except RasterdropError as exc:
        if exc.final:
            _end_run(state, lease)
        else:
            _release(state, lease)
        raise
    except BaseException:  # SIGTERM's Terminated, KeyboardInterrupt, a bug
        _release(state, lease)
        raise
    else:
        _end_run(state, lease)
    finally:
        lease.stop()


def _job_ref(settings: Settings) -> dict[str, Any]:
    """The Batch job that wrote a ``summary.json``: the notifier tells a duplicate's event
    (another job id) from the producer's by it."""
    return {"id": settings.job_id, "attempt": settings.attempt}


def _release(state: _Run, lease: Lease) -> None:
    """Give the lease back, keeping the checkpoints (best effort, never raises)."""
    try:
        lease.release()
    except Exception:
        log.warning("run %s: the lease could not be released; it expires after %.0f s",
                    state.run_id, lease.ttl, exc_info=True)  # fmt: skip
    else:
        log.info("run %s: lease released, checkpoints kept for the retry", state.run_id)


def _end_run(state: _Run, lease: Lease) -> None:
    """Stop renewing, delete the run's partials (all but the lease), release the lease.

    Best effort: the outcome is decided before this runs, and a cleanup that fails
    must not turn a published result into a failure (which on the last attempt would
    replace its ``summary.json`` by ``error.json``). What is left behind is harmless:
    ``partial/`` expires by lifecycle, and a lease left behind expires after its ttl
    (a later job waiting on it finds the done-marker and exits as a duplicate).
    """
    lease.stop()
    try:
        removed = s3io.delete_prefix(state.s3, state.req.bucket, state.partial, keep=(lease.key,))
        lease.release()
    except Exception:
        log.warning("run %s ended, but its partials could not be removed", state.run_id,
                    exc_info=True)  # fmt: skip
        return
    log.info("run %s ended: %d partial object(s) removed", state.run_id, removed)


@dataclass
class _Job:
    """The leased part of one attempt: model file, download, predict, publish."""

    state: _Run
    lease: Lease
    source: model_source.ModelSource
    card: ModelCard
    scratch: Path
    workers: int | None
    t0: float  # perf_counter at the start of the attempt
    checks: float  # seconds the cheap checks took

    def compute_and_publish(self, pixels: int) -> Outcome:
        state = self.state
        estimator = load_estimator(
            model_source.fetch_estimator_file(self.source, self.scratch / "model", state.s3),
            self.card,
        )
        local_input = _download_input(state, self.scratch, self.workers, pixels, self.card)
        summary = self.predict(local_input, estimator, self.scratch / "out")
        if _superseded(state):  # a newer version arrived while we computed: do not publish
            return state.outcome(
                "superseded", "a newer version of the input exists", EXIT_SUPERSEDED
            )
        document = self.publish(summary, self.scratch / "out")
        log.info(
            "done: s3://%s/%s (%d windows resumed)",
            state.req.bucket,
            state.out_prefix,
            summary.resumed_windows,
            extra=log_fields(run_id=state.run_id, timings=document["timings_s"]),
        )
        return state.outcome("succeeded", "done", EXIT_OK, document)

    def predict(self, local_input: Path, estimator: Any, out_dir: Path) -> Summary:
        """The engine over the downloaded input, every finished chunk checkpointed."""
        state, settings = self.state, self.state.settings
        store = CheckpointStore(
            state.s3,
            state.req.bucket,
            state.partial + CHUNKS_SEGMENT,
            batch_pixels=settings.checkpoint_pixels,
            guard=self.lease.check,
        )
        options = _options(settings, self.workers)
        store.layers = output_layers_of(estimator, self.card, settings.probabilities)
        try:
            summary = predict_to_dir(
                local_input,
                estimator,
                self.card,
                out_dir,
                options,
                input_ref=state.input,
                resume=Resume(plan=store.plan, restore=store.restore, checkpoint=store.checkpoint),
            )
        except BaseException:
            store.abort()
            raise
        store.close()
        return summary

    def publish(self, summary: Summary, out_dir: Path) -> dict[str, Any]:
        """Result files, then ``summary.json`` last (the protocol), each write under the lease.

        ``timings_s.job_total`` is measured when the protocol asks for the document,
        that is after the result files are uploaded, just before it is written.
        """
        sink = self.state.results(guard=self.lease.check)
        assert self.state.run_id is not None
        files = {name: out_dir / name for name in summary.outputs.names()}
        summary = summary.for_job(
            run_id=self.state.run_id,
            model_uri=self.source.uri,
            checks=self.checks,
            outputs=summary.outputs.at(sink.location),
        )
        published: dict[str, Any] = {}

        def finished() -> dict[str, Any]:
            wall = time.perf_counter() - self.t0
            compute = compute_used(_vcpus(self.state.settings), wall, time.process_time(),
                                   self._shards_compute())  # fmt: skip
            published.update(summary.finished(wall, compute).to_dict())
            published["job"] = _job_ref(self.state.settings)
            return published

        publish(sink, files, finished)
        return published

    def _shards_compute(self) -> dict[str, float] | None:
        """The children's compute, for a sharded run's assemble job (else None)."""
        state = self.state
        if state.part != PART_ASSEMBLE or not state.req.shards:
            return None
        return shards.children_compute(state.s3, state.req.bucket, state.partial,
                                       state.req.shards)  # fmt: skip


def _vcpus(settings: Settings) -> int:
    """The vCPUs the job is billed for: its definition's, else the cores it may use."""
    return settings.job_vcpus or settings.workers or cpu_count()


@dataclass
class _ShardJob:
    """An array job's child: its share of the windows into the run's chunks, under the
    share's own lease; ends 0 (its array completes) with ``done.json`` holding its compute.

    A live duplicate of the share (a run planned twice) ends 0 at once: the holder writes
    the same chunks, and the assemble job computes any window it does not find."""

    state: _Run
    source: model_source.ModelSource
    card: ModelCard
    scratch: Path
    workers: int | None
    t0: float  # perf_counter at the start of the attempt

    def run(self, pixels: int) -> Outcome:
        state, settings = self.state, self.state.settings
        index, count = settings.array_index, state.req.shards or 0
        if index is None or not 0 <= index < count:
            raise ConfigError(
                f"a shard needs AWS_BATCH_JOB_ARRAY_INDEX in 0..{count - 1}, got {index}"
            )
        lease = Lease(
            state.s3,
            state.req.bucket,
            shards.shard_prefix(state.partial, index) + LEASE_NAME,
            ttl=settings.lease_seconds,
            job_id=settings.job_id,
            attempt=settings.attempt,
        )
        if not lease.acquire():
            return state.outcome("in_progress", f"share {index} is computed by another job")
        try:
            done = self.predict(lease, index, count, pixels)
        finally:
            _release(state, lease)
        return state.outcome(
            "shard_done",
            f"share {index + 1} of {count}: {done['windows']} window(s), "
            f"{done['restored']} restored",
        )

    def predict(self, lease: Lease, index: int, count: int, pixels: int) -> dict[str, Any]:
        state, settings = self.state, self.state.settings
        estimator = load_estimator(
            model_source.fetch_estimator_file(self.source, self.scratch / "model", state.s3),
            self.card,
        )
        local_input = _download_input(state, self.scratch, self.workers, pixels, self.card)
        store = CheckpointStore(
            state.s3,
            state.req.bucket,
            state.partial + CHUNKS_SEGMENT,
            batch_pixels=settings.checkpoint_pixels,
            guard=lease.check,
        )
        store.layers = output_layers_of(estimator, self.card, settings.probabilities)
        try:
            stats = predict_share(
                local_input,
                estimator,
                self.card,
                _options(settings, self.workers),
                index=index,
                count=count,
                resume=Resume(plan=store.plan, restore=store.restore, checkpoint=store.checkpoint),
                name=state.req.key,
            )
        except BaseException:
            store.abort()
            raise
        store.close()
        wall = time.perf_counter() - self.t0  # the whole attempt, checks included
        done = {
            "index": index,
            "shards": count,
            "windows": stats.windows,
            "computed": stats.computed,
            "restored": stats.restored,
            "wall_s": round(wall, 3),
            "cpu_s": round(time.process_time(), 3),
            "vcpu_s": round(_vcpus(settings) * wall, 3),
            "job": _job_ref(settings),
        }
        lease.check()
        shards.write_done(state.s3, state.req.bucket, state.partial, index, done)
        return done


def _options(settings: Settings, workers: int | None) -> PredictOptions:
    """The engine's options from the job's settings (every part of a run uses these)."""
    return PredictOptions(
        workers=workers,
        max_pixels=settings.max_pixels,
        target_pixels=settings.window_pixels,
        postprocess=PostProcess(
            mmu_pixels=settings.mmu_pixels,
            connectivity=settings.mmu_connectivity,
            polygons=settings.class_polygons,
            accuracy_sample_n=settings.accuracy_sample_n,
        ),
        probabilities=settings.probabilities,
        review_points=settings.review_points,
    )


def output_layers_of(estimator: Any, card: ModelCard, probabilities: bool) -> tuple[str, ...]:
    """The layers this run writes: a checkpoint holding other layers is recomputed."""
    return predictor_for(estimator, card, probabilities=probabilities).layer_names()


def _head_input(state: _Run) -> None:
    """HEAD is authoritative for version, ETag and size; the size cap is checked here."""
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
    state.input = replace(state.input, version_id=version, etag=etag, size_bytes=size)
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


def _superseded(state: _Run) -> bool:
    """A versioned input whose version is no longer the key's latest (or was deleted)."""
    version = state.input.version_id
    if not state.req.version_id or not version:
        return False
    latest = s3io.head(state.s3, state.req.bucket, state.req.key)
    latest_version = latest.get("VersionId") if latest else None
    return latest_version != version


def _head_vrt(state: _Run) -> RemoteVrt:
    """The VRT and its band files beside it; together they must fit the size cap."""
    state.vrt = head_remote_vrt(
        state.s3, state.req.bucket, state.req.key, name=state.req.key,
        version_id=state.input.version_id,
    )  # fmt: skip
    limit = state.settings.max_input_bytes
    if state.total_bytes > limit:
        raise InvalidInputError(
            f"{state.req.key} and its {len(state.vrt.sources)} band file(s) are "
            f"{state.total_bytes:,} bytes, over the limit of {limit:,}: split the scene",
            code="too_large",
            size_bytes=state.total_bytes,
            max_bytes=limit,
        )
    return state.vrt


def _check_header(state: _Run, card: ModelCard, scratch: Path) -> int:
    """Header checks from ranged reads; returns the raster's pixel count."""
    req = state.req
    if state.vrt is not None:
        info = check_remote_vrt(
            state.s3, req.bucket, state.vrt, name=req.key,
            max_pixels=state.settings.max_pixels, scratch=scratch,
        )  # fmt: skip
        check_compatible(info, card, req.key)
        log.info("header ok: VRT over %d band file(s)", len(state.vrt.sources))
        return info.width * info.height
    info, source = check_remote_raster(
        state.s3,
        req.bucket,
        req.key,
        size=int(state.input.size_bytes or 0),
        max_pixels=state.settings.max_pixels,
        name=req.key,
        version_id=state.input.version_id,
        etag=None if state.input.version_id else state.input.etag,
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


def _download_input(
    state: _Run, scratch: Path, workers: int | None, pixels: int, card: ModelCard
) -> Path:
    size = state.total_bytes
    free = shutil.disk_usage(scratch).free
    # the input, every output layer's uncompressed scratch raster and its COG, plus a margin
    need = size + SCRATCH_MARGIN + output_bytes(card, pixels, state.settings.probabilities)
    _check_room(state.req.key, shutil.disk_usage(scratch).total, free, need)
    if state.vrt is not None:
        dest = scratch / "input" / state.req.key.rsplit("/", 1)[-1]
        return download_vrt(state.s3, state.req.bucket, state.vrt, dest, workers=workers or 8)
    suffix = ".tiff" if state.req.key.lower().endswith(".tiff") else ".tif"
    dest = scratch / f"input{suffix}"
    t = time.perf_counter()
    s3io.download(
        state.s3,
        state.req.bucket,
        state.req.key,
        dest,
        version_id=state.input.version_id,
        workers=workers or 8,
    )
    got = dest.stat().st_size
    if got != size:
        raise InternalError(f"downloaded {got} bytes, expected {size}", code="short_download")
    if not state.input.version_id:
        # unversioned: the download is pinned to the ETag s3transfer saw, ours must match it
        now = s3io.head(state.s3, state.req.bucket, state.req.key)
        if now is None or s3io.etag_of(now) != state.input.etag:
            raise InternalError(
                f"{state.req.key} was replaced while it was being read; retrying",
                code="input_changed",
            )
    _download_mask_sidecar(state, dest, workers)
    log.info("downloaded %d bytes in %.1fs", size, time.perf_counter() - t)
    return dest


def _download_mask_sidecar(state: _Run, dest: Path, workers: int | None) -> None:
    """GDAL's ``.msk`` sidecar (``input/x.tif.msk``), when uploaded before the raster, goes
    beside the local copy: GDAL reads it as the raster's mask (raster/validity.py)."""
    key = state.req.key + ".msk"
    if s3io.head(state.s3, state.req.bucket, key) is None:
        return
    s3io.download(
        state.s3, state.req.bucket, key, dest.with_name(dest.name + ".msk"), workers=workers or 8
    )
    log.info("fetched the mask sidecar %s", key)


def _check_room(name: str, total: int, free: int, need: int) -> None:
    """Refuse to start a download that cannot fit: final when the whole volume is too small
    (no retry can help: the operators' job size or instance volume must grow), retried
    when other jobs on the instance hold the room (another instance may have it)."""
    gib = 1024**3
    details = {"free_bytes": free, "needed_bytes": need, "volume_bytes": total}
    if total < need:
        raise ScratchTooSmall(
            f"{name} needs about {need / gib:.1f} GiB of scratch space, more than the job's "
            f"whole volume ({total / gib:.1f} GiB)",
            code="volume_too_small",
            **details,
        )
    if free < need:
        raise ScratchFull(
            f"not enough scratch space for {name}: {free / gib:.1f} GiB free, "
            f"{need / gib:.1f} GiB needed",
            code="scratch_full",
            **details,
        )
