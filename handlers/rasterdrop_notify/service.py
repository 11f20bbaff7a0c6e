"""The notifier: Batch job state change or oversize upload → one SNS message.

Every function takes its boto3 clients and settings as arguments (no globals, no env reads),
so the thin Lambda handlers, the tests and the sandbox call exactly the same code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rasterdrop_notify import markers
from rasterdrop_notify.absent import optional
from rasterdrop_notify.assessments import assessment_outcome, is_assessment_key
from rasterdrop_notify.clock import Clock, system_clock
from rasterdrop_notify.decisions import (
    EXIT_OUTCOMES,
    SUPERSEDED,
    decide,
    part_outcome,
    succeeded_outcome,
)
from rasterdrop_notify.events import BatchJobDetail, BatchJobStateChangeEvent, S3ObjectCreatedEvent
from rasterdrop_notify.failures import choose_failure, classify_job
from rasterdrop_notify.key_transport import untransportable, untransportable_reason
from rasterdrop_notify.keyring import load_keys
from rasterdrop_notify.layout import ERROR_JSON, SUMMARY_JSON
from rasterdrop_notify.links import link_expiry, link_url
from rasterdrop_notify.outcome import FAILED, REJECTED, SUCCEEDED, TRAIN, Link, Outcome
from rasterdrop_notify.paths import (
    BAND_FILE,
    KeyRefused,
    marker_key,
    output_prefix_for,
    training_name,
    training_run_prefix,
)
from rasterdrop_notify.render import Message, render_message
from rasterdrop_notify.reports import (
    class_shares,
    comparison_lines,
    get_json,
    model_of,
    output_keys,
    promotion_reason,
    same_version,
    total_seconds,
    training_metrics,
    value_stats,
)
from rasterdrop_notify.settings import Settings
from rasterdrop_notify.tokens import sign_token

log = logging.getLogger("rasterdrop.notify")

PUBLISHED = "published"
DUPLICATE = "duplicate"
SKIPPED = "skipped"
REJECTED_MODEL_SLOT = "rejected"  # model-version slot of a rejection's marker: no model ran


@dataclass(frozen=True)
class Clients:
    s3: Any
    sns: Any
    secrets: Any = None


@dataclass(frozen=True)
class Result:
    """What one invocation did: ``published``, ``duplicate`` or ``skipped`` (with why)."""

    action: str
    reason: str = ""
    message: Message | None = None
    message_id: str | None = None
    marker: str | None = None
    outcome: Outcome | None = None

    def response(self) -> dict[str, Any]:
        """What the handler returns (and the sandbox records)."""
        return {"action": self.action, "reason": self.reason, "message_id": self.message_id}


@dataclass(frozen=True)
class Prepared:
    outcome: Outcome
    links: tuple[Link, ...] = ()
    links_expire_at: datetime | None = None


# --- entry points ----------------------------------------------------------------------------


def notify_job(
    event: BatchJobStateChangeEvent,
    clients: Clients,
    settings: Settings,
    *,
    clock: Clock = system_clock,
) -> Result:
    """Publish the one message for a finished predict or train job.

    ``clock`` is read once: the link expiry and the marker's times all use that instant.
    """
    settings.require("topic_arn")
    now = clock()
    detail = event.detail
    if detail.status not in (SUCCEEDED.upper(), FAILED.upper()):
        return Result(SKIPPED, f"status {detail.status} is not final")
    params = detail.parameters
    bucket, key = params.get("bucket", ""), params.get("key", "")
    version = optional(params.get("version"))
    if not bucket or not key:
        return Result(SKIPPED, "job has no bucket/key parameters")
    if untransportable(key):  # one email per upload: the reject handler has told the uploader
        return Result(SKIPPED, "the key cannot be carried by the event; rejected on upload")
    if settings.bucket and bucket != settings.bucket:
        return Result(SKIPPED, f"job names bucket {bucket!r}, not this stack's")
    if is_assessment_key(key):  # the assess kind (rasterdrop_notify.assessments)
        prepared = assessment_outcome(detail, clients, settings, bucket, key, version, now)
        return deliver(prepared, clients, settings, now=now)
    name = training_name(key)
    if name:
        prepared = _training_outcome(detail, clients.s3, bucket, key, version, name)
    else:
        try:
            results = output_prefix_for(key, settings.input_prefix, settings.output_prefix)
        except KeyRefused as exc:
            if detail.status != FAILED.upper() or exc.code == BAND_FILE:  # band: by design
                return Result(SKIPPED, str(exc))
            prepared = _refused_key(detail, bucket, key, version, exc)
            return deliver(prepared, clients, settings, now=now)
        prepared = _predict_outcome(detail, clients, settings, bucket, key, version, results, now)
    if prepared is None:
        return Result(SKIPPED, decide(SUPERSEDED).why)
    decision = decide(prepared.outcome.name)
    if not decision.send:
        log.info("%s: no message (%s)", prepared.outcome.name, decision.why)
        return Result(SKIPPED, f"{prepared.outcome.name}: {decision.why}", outcome=prepared.outcome)
    return deliver(prepared, clients, settings, now=now)


def notify_rejection(
    event: S3ObjectCreatedEvent,
    clients: Clients,
    settings: Settings,
    *,
    clock: Clock = system_clock,
) -> Result:
    """Publish the rejection for an upload no job can run on: a key the event cannot carry
    to the job (``key_transport``), or a size over the limit."""
    settings.require("topic_arn")
    now = clock()
    obj = event.detail.object
    size = int(obj.size or 0)
    if settings.bucket and event.detail.bucket.name != settings.bucket:
        return Result(SKIPPED, "upload to another bucket")
    common = {
        "status": REJECTED,
        "bucket": event.detail.bucket.name,
        "key": obj.key,  # raw, exactly as delivered: never unquote_plus-ed
        "version": optional(obj.version_id),
    }
    unsafe = untransportable(obj.key)
    if unsafe:
        outcome = Outcome(
            category="unsupported_name", reason=untransportable_reason(unsafe), **common
        )
        return deliver(Prepared(outcome), clients, settings, now=now)
    if size <= settings.max_input_bytes:
        return Result(SKIPPED, f"{size} bytes is within the limit: not a rejection")
    outcome = Outcome(
        category="too_large",
        reason="The file is larger than the upload size limit, so no job was started.",
        size_bytes=size,
        max_bytes=settings.max_input_bytes,
        **common,
    )
    return deliver(Prepared(outcome), clients, settings, now=now)


def deliver(prepared: Prepared, clients: Clients, settings: Settings, *, now: datetime) -> Result:
    """Render, claim the marker, publish, mark published (see ``markers`` for why this order)."""
    o = prepared.outcome
    message = render_message(
        o, prepared.links, prepared.links_expire_at, input_prefix=settings.input_prefix
    )
    model_slot = REJECTED_MODEL_SLOT if o.status == REJECTED else o.model_version
    mkey = marker_key(o.bucket, o.key, o.version, model_slot)
    record = {
        "bucket": o.bucket,
        "key": o.key,
        "input_version": o.version,
        "model_version": model_slot,
        "status": o.status,
        "job_id": o.job_id,
        "subject": message.subject,
    }
    got = markers.claim(clients.s3, o.bucket, mkey, record, now=now, lease_s=settings.lease_seconds)
    if not got.won:
        return Result(DUPLICATE, "already published", message, marker=mkey, outcome=o)
    try:
        resp = markers.publish_once(
            lambda: clients.sns.publish(
                TopicArn=settings.topic_arn,
                Subject=message.subject,
                Message=message.body,
                MessageAttributes=message.sns_attributes(),
            )
        )
    except Exception as exc:
        if markers.certainly_unsent(exc):
            markers.release(clients.s3, o.bucket, mkey)
        else:  # the answer was lost: SNS may have sent it; the retry sends (and counts it)
            markers.mark_uncertain(clients.s3, o.bucket, mkey, record, etag=got.etag,
                                   ambiguous=got.ambiguous + 1, now=now)  # fmt: skip
        raise
    message_id = resp["MessageId"]
    _mark_published(clients, o.bucket, mkey, record, got, message_id, now)
    return Result(PUBLISHED, "", message, message_id, mkey, o)


def _mark_published(
    clients: Clients,
    bucket: str,
    mkey: str,
    record: dict[str, Any],
    got: markers.Claim,
    message_id: str,
    now: datetime,
) -> None:
    """Record the publish; never raises: the message is out, and a raise would make Lambda
    retry and publish it again (see ``markers``)."""
    try:
        if not markers.mark_published(clients.s3, bucket, mkey, record, etag=got.etag,
                                      message_id=message_id, now=now,
                                      ambiguous=got.ambiguous):  # fmt: skip
            log.warning("marker %s changed while publishing %s", mkey, message_id)
    except Exception:
        log.error("published %s but could not mark %s", message_id, mkey, exc_info=True)


# --- building outcomes -----------------------------------------------------------------------


def _predict_outcome(
    detail: BatchJobDetail,
    clients: Clients,
    settings: Settings,
    bucket: str,
    key: str,
    version: str | None,
    results: str,
    now: datetime,
) -> Prepared | None:
    common = {"bucket": bucket, "key": key, "version": version, "job_id": detail.jobId}
    silent = part_outcome(detail.parameters, detail.jobId, detail.status)
    if silent:  # a sharded run's array job: the assemble job (or a failed child) reports
        return Prepared(
            Outcome(status=FAILED, decision=silent, attempts=len(detail.attempts), **common)
        )
    if detail.status == "SUCCEEDED":
        summary = get_json(clients.s3, bucket, results + SUMMARY_JSON)
        if summary is not None and not same_version(summary, version):
            return None  # a newer version's result is in place: superseded
        if summary is not None:
            return _success(summary, clients, settings, results, now, common, detail)
        error_doc = get_json(clients.s3, bucket, results + ERROR_JSON)
        if error_doc is not None and not same_version(error_doc, version):
            return None  # a newer version's failure is in place: superseded
        return Prepared(
            Outcome(
                status=FAILED,
                category="internal",
                reason="The job reported success but its summary.json is missing.",
                attempts=len(detail.attempts),
                **common,
            )
        )
    job = classify_job(detail)
    if job.exit_code in EXIT_OUTCOMES:  # superseded / in progress: the job wrote nothing
        return Prepared(
            Outcome(
                status=FAILED,
                decision=EXIT_OUTCOMES[job.exit_code],
                exit_code=job.exit_code,
                attempts=job.attempts,
                **common,
            )
        )
    error_doc = get_json(clients.s3, bucket, results + ERROR_JSON)
    if error_doc is not None and not same_version(error_doc, version):
        error_doc = None
    failure = choose_failure(job, error_doc)
    model_name, model_version = model_of(error_doc)
    return Prepared(
        Outcome(
            status=FAILED,
            category=failure.category,
            reason=failure.reason,
            code=failure.code,
            exit_code=failure.exit_code,
            attempts=failure.attempts,
            model_name=model_name,
            model_version=model_version,
            **common,
        )
    )


def _refused_key(
    detail: BatchJobDetail, bucket: str, key: str, version: str | None, exc: KeyRefused
) -> Prepared:
    """The job refused the key itself and had no safe place for ``error.json``: the
    uploader still learns why (nothing fails silently), from the rule both sides share."""
    return Prepared(
        Outcome(
            status=FAILED,
            bucket=bucket,
            key=key,
            version=version,
            job_id=detail.jobId,
            category="invalid_input",
            reason=f"{exc}: rename the file and upload it again.",
            code=exc.code,
            attempts=len(detail.attempts),
        )
    )


def _success(summary, clients, settings, results, now, common, detail) -> Prepared:
    raster = summary.get("raster") or {}
    timings = summary.get("timings_s") or {}
    compute = summary.get("compute") if isinstance(summary.get("compute"), dict) else {}
    model_name, model_version = model_of(summary)
    reused = summary.get("reused_from") if isinstance(summary.get("reused_from"), dict) else {}
    outcome = Outcome(
        status=SUCCEEDED,
        decision=succeeded_outcome(summary, detail.jobId),
        reused_from_version=optional(reused.get("version_id")),
        model_name=model_name,
        model_version=model_version,
        classes=class_shares(summary, raster.get("area_unit")),
        values=value_stats(summary),
        width=_maybe_int(raster.get("width")),
        height=_maybe_int(raster.get("height")),
        valid_pixels=_maybe_int(raster.get("valid_pixels")),
        processing_s=_maybe_float(timings.get("total")),
        compute_vcpu_s=_maybe_float(compute.get("vcpu_s")),
        shards=_maybe_int(compute.get("shards")),
        attempts=len(detail.attempts),
        results_prefix=results,
        **common,
    )
    pairs = output_keys(summary, results)
    if not pairs:
        return Prepared(outcome)
    if not settings.link_base_url or not settings.link_secret_arn or clients.secrets is None:
        log.warning("link endpoint not configured: the message lists S3 locations only")
        return Prepared(outcome)
    keys = load_keys(clients.secrets, settings.link_secret_arn)
    expires = link_expiry(now, settings, summary.get("created_at"))
    links = tuple(
        Link(label, link_url(settings.link_base_url, sign_token(k, expires, keys)))
        for label, k in pairs
    )
    return Prepared(outcome, links, datetime.fromtimestamp(expires, UTC))


def _training_outcome(
    detail: BatchJobDetail, s3: Any, bucket: str, key: str, version: str | None, name: str
) -> Prepared:
    run = training_run_prefix(name, version)
    common = {
        "bucket": bucket,
        "key": key,
        "version": version,
        "kind": TRAIN,
        "job_id": detail.jobId,
        "attempts": len(detail.attempts),
        "results_prefix": run,
    }
    if detail.status == "SUCCEEDED":
        summary = get_json(s3, bucket, run + SUMMARY_JSON)
        if summary is not None:
            model_name, model_version = model_of(summary)
            model = summary.get("model") if isinstance(summary.get("model"), dict) else {}
            promoted = summary.get("promoted", model.get("promoted"))
            return Prepared(
                Outcome(
                    status=SUCCEEDED,
                    model_name=model_name or name,
                    model_version=model_version,
                    metrics=training_metrics(summary),
                    promoted=promoted if isinstance(promoted, bool) else None,
                    promotion_reason=promotion_reason(model),
                    comparison=comparison_lines(summary),
                    processing_s=total_seconds(summary),
                    **common,
                )
            )
        return Prepared(
            Outcome(
                status=FAILED,
                model_name=name,
                category="internal",
                reason="The training job reported success but its run summary is missing.",
                **common,
            )
        )
    error_doc = get_json(s3, bucket, run + ERROR_JSON)
    failure = choose_failure(classify_job(detail), error_doc)
    _, model_version = model_of(error_doc)
    return Prepared(
        Outcome(
            status=FAILED,
            model_name=name,
            model_version=model_version,
            category=failure.category,
            reason=failure.reason,
            code=failure.code,
            exit_code=failure.exit_code,
            **{**common, "attempts": failure.attempts},
        )
    )


def _maybe_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _maybe_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


__all__ = ["Clients", "Result", "deliver", "notify_job", "notify_rejection"]
