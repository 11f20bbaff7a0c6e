"""Exactly one message per (bucket, key, input version, model version), without DynamoDB.

Why a marker written BEFORE publishing
--------------------------------------
EventBridge delivers at least once, Lambda retries asynchronous invocations, and an operator
may run the same input twice: the handler will see duplicates, sometimes concurrently. SNS
cannot deduplicate (standard topics have no dedup id; email subscriptions cannot use FIFO
topics). So the decision "this invocation sends the message" must be made in S3 before the
publish, with one atomic conditional write: ``put_object(..., IfNoneMatch="*")`` on
``notified/<sha256>.json``. Exactly one writer gets 200; every other gets 412
PreconditionFailed and publishes nothing. Publish-then-mark would be at-least-once: two
concurrent deliveries both see "no marker" and both publish, which is the duplicate email
users notice. Mark-then-publish is at-most-once on its own; the lease below restores
delivery after a crash, so the whole is effectively once.

The windows between marker and publish, and how small they are
---------------------------------------------------------------
The marker is written with ``state: "publishing"``, a ``claimed_at`` time and a random
``claim_id``; after a successful publish it is replaced (``IfMatch`` its own ETag) by
``state: "published"`` with the SNS message id. Order: claim → publish → mark.

- The claim's own response is lost (S3 wrote it, the connection dropped, botocore retried
  and got 412): the marker's ``claim_id`` is ours, so the claim is won, not a duplicate
  and not a stall.
- Publish fails *certainly unsent* (SNS answered with an error such as throttling or
  5xx, or the connection was never made): retried a few times in process
  (:func:`publish_once`); if it still fails the handler deletes its own marker and
  re-raises, so Lambda's retry sends. No duplicate is possible here. The SNS client does
  no retries of its own (``runtime``): botocore retrying a timed-out Publish would be an
  invisible duplicate.
- Publish fails *ambiguously* (the request went out, the answer never came: a read
  timeout, a dropped connection): SNS may have sent it. The marker becomes
  ``state: "uncertain"`` with ``ambiguous_publishes`` counted, and the handler re-raises;
  the retry takes the marker over at once and publishes, carrying the count into the
  final ``published`` marker. This is the one duplicate the design cannot close (SNS has
  no idempotency key for standard topics, and email cannot use FIFO): it happens only
  when a Publish response is lost, and every such message is counted in its marker, so
  tests and the fault harness can tell it from a real duplicate. Preferred over a lost
  email.
- The invocation dies between claim and publish (timeout, crash): the marker stays
  ``publishing``. A later delivery that finds a ``publishing`` marker younger than the
  lease raises ``NotificationInProgress`` (so Lambda retries it later, instead of
  dropping it); once the marker is older than the lease (default 90 s, longer than the
  notify function's timeout, shorter than Lambda's second async retry) it takes the
  marker over with ``IfMatch=<stale ETag>``. Only one taker can win that write.
- The invocation dies between SNS's answer and the ``published`` write (milliseconds),
  or that write keeps failing: the marker stays ``publishing`` and a later delivery
  after the lease publishes again. A failed ``published`` write is therefore never
  raised to Lambda (which would retry and publish again); it is logged as an error.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from rasterdrop_notify.errors import NotificationInProgress

log = logging.getLogger("rasterdrop.notify")

PUBLISHING = "publishing"
PUBLISHED = "published"
UNCERTAIN = "uncertain"
AMBIGUOUS = "ambiguous_publishes"  # how many Publish calls may have sent before this one
PUBLISH_TRIES = 3


@dataclass(frozen=True)
class Claim:
    """``won``: this invocation must publish; else the message was already sent."""

    won: bool
    etag: str | None = None
    state: str | None = None
    ambiguous: int = 0  # earlier Publish calls whose answer was lost (see the docstring)


def claim(
    s3: Any,
    bucket: str,
    key: str,
    record: dict[str, Any],
    *,
    now: datetime,
    lease_s: float,
    claim_id: str | None = None,
) -> Claim:
    """Take the right to publish, or learn that someone else has it or already did."""
    claim_id = claim_id or uuid.uuid4().hex
    fields = {**record, "state": PUBLISHING, "claimed_at": now.isoformat(), "claim_id": claim_id}
    try:
        resp = s3.put_object(
            Bucket=bucket, Key=key, Body=_encode(fields), IfNoneMatch="*", **_put_args()
        )
        return Claim(won=True, etag=resp["ETag"])
    except ClientError as exc:
        if not _precondition_failed(exc):
            raise
    existing, etag = _read(s3, bucket, key)
    state = existing.get("state")
    ambiguous = _count(existing.get(AMBIGUOUS))
    if existing.get("claim_id") == claim_id and state == PUBLISHING:
        return Claim(won=True, etag=etag, state=state, ambiguous=ambiguous)  # our lost answer
    if state == PUBLISHED:
        return Claim(won=False, etag=etag, state=PUBLISHED)
    claimed_at = _parse_time(existing.get("claimed_at"))
    fresh = claimed_at is not None and (now - claimed_at).total_seconds() < lease_s
    if state != UNCERTAIN and fresh:
        assert claimed_at is not None
        raise NotificationInProgress(f"{key} is being published since {claimed_at.isoformat()}")
    # stale lease (the previous holder died) or an uncertain publish (its invocation ended):
    # exactly one taker wins this write
    body = _encode({**fields, AMBIGUOUS: ambiguous})
    try:
        resp = s3.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=etag, **_put_args())
    except ClientError as exc:
        if _precondition_failed(exc):
            raise NotificationInProgress(f"{key} was taken over by another invocation") from exc
        raise
    return Claim(won=True, etag=resp["ETag"], state=state, ambiguous=ambiguous)


def certainly_unsent(exc: BaseException) -> bool:
    """Whether a failed Publish certainly sent nothing: SNS answered with an error, or the
    connection was never made. Anything else (a read timeout, a connection dropped after
    the request went out) may have been delivered."""
    return isinstance(exc, ClientError | EndpointConnectionError | ConnectTimeoutError)


def publish_once(
    publish: Callable[[], dict[str, Any]],
    *,
    tries: int = PUBLISH_TRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Call ``publish``, retrying only failures that certainly sent nothing."""
    for attempt in range(1, tries + 1):
        try:
            return publish()
        except Exception as exc:
            if not certainly_unsent(exc) or attempt == tries:
                raise
            log.warning("publish failed (nothing sent): retrying", exc_info=True)
            sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def mark_uncertain(
    s3: Any,
    bucket: str,
    key: str,
    record: dict[str, Any],
    *,
    etag: str | None,
    ambiguous: int,
    now: datetime,
) -> None:
    """After a Publish whose answer was lost: the retry publishes, and the count says a
    duplicate may result (best effort: a failed write leaves ``publishing``, which the
    retry takes over after the lease)."""
    body = _encode(
        {**record, "state": UNCERTAIN, "claimed_at": now.isoformat(), AMBIGUOUS: ambiguous}
    )
    try:
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, **({"IfMatch": etag} if etag else {}), **_put_args()
        )
    except Exception:
        log.warning("could not mark %s uncertain", key, exc_info=True)


def mark_published(
    s3: Any,
    bucket: str,
    key: str,
    record: dict[str, Any],
    *,
    etag: str | None,
    message_id: str,
    now: datetime,
    ambiguous: int = 0,
) -> bool:
    """Record the publish; False if the marker changed under us (logged by the caller)."""
    body = _encode(
        {
            **record,
            "state": PUBLISHED,
            "published_at": now.isoformat(),
            "message_id": message_id,
            AMBIGUOUS: ambiguous,
        }
    )
    extra = {"IfMatch": etag} if etag else {}
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, **extra, **_put_args())
    except ClientError as exc:
        if _precondition_failed(exc):
            return False
        raise
    return True


def release(s3: Any, bucket: str, key: str) -> None:
    """Give the claim back after a failed publish, so the retry can publish."""
    s3.delete_object(Bucket=bucket, Key=key)


def _read(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any], str | None]:
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            # Released between our write and our read: let the retry try again.
            raise NotificationInProgress(f"{key} vanished while being read") from exc
        raise
    try:
        doc = json.loads(resp["Body"].read(65536))
    except ValueError:
        doc = {}
    return (doc if isinstance(doc, dict) else {}), resp.get("ETag")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _put_args() -> dict[str, str]:
    return {"ContentType": "application/json"}


def _precondition_failed(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return err.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict") or status in (
        409,
        412,
    )


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
