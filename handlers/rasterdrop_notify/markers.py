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

The crash window between marker and publish
-------------------------------------------
The marker is written with ``state: "publishing"`` and a ``claimed_at`` time; after a
successful publish it is replaced (``IfMatch`` its own ETag) by ``state: "published"`` with
the SNS message id.

- Publish raises (SNS throttled, permissions): the handler deletes its own marker and
  re-raises; Lambda's retry starts from scratch.
- The invocation dies between claim and publish (timeout, crash): the marker stays
  ``publishing``. A later delivery that finds a ``publishing`` marker younger than the lease
  raises ``NotificationInProgress`` (so Lambda retries it later, instead of dropping it);
  once the marker is older than the lease (default 90 s, longer than the notify function's
  timeout, shorter than Lambda's second async retry) it takes the marker over with
  ``IfMatch=<stale ETag>``. Only one taker can win that conditional write, then it publishes.
- The one remaining duplicate: an invocation that published but died before writing
  ``published`` AND outlived the lease. With a function timeout below the lease this cannot
  happen while the invocation is alive, so a duplicate needs a crash in the few
  milliseconds between SNS's answer and the S3 write: we accept that over losing messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rasterdrop_notify.errors import NotificationInProgress

PUBLISHING = "publishing"
PUBLISHED = "published"


@dataclass(frozen=True)
class Claim:
    """``won``: this invocation must publish; else the message was already sent."""

    won: bool
    etag: str | None = None
    state: str | None = None


def claim(
    s3: Any, bucket: str, key: str, record: dict[str, Any], *, now: datetime, lease_s: float
) -> Claim:
    """Take the right to publish, or learn that someone else has it or already did."""
    body = _encode({**record, "state": PUBLISHING, "claimed_at": now.isoformat()})
    try:
        resp = s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", **_put_args())
        return Claim(won=True, etag=resp["ETag"])
    except ClientError as exc:
        if not _precondition_failed(exc):
            raise
    existing, etag = _read(s3, bucket, key)
    state = existing.get("state")
    if state == PUBLISHED:
        return Claim(won=False, etag=etag, state=PUBLISHED)
    claimed_at = _parse_time(existing.get("claimed_at"))
    if claimed_at is not None and (now - claimed_at).total_seconds() < lease_s:
        raise NotificationInProgress(f"{key} is being published since {claimed_at.isoformat()}")
    try:  # stale lease: the previous holder died; exactly one taker wins this write
        resp = s3.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=etag, **_put_args())
    except ClientError as exc:
        if _precondition_failed(exc):
            raise NotificationInProgress(f"{key} was taken over by another invocation") from exc
        raise
    return Claim(won=True, etag=resp["ETag"], state=state)


def mark_published(
    s3: Any,
    bucket: str,
    key: str,
    record: dict[str, Any],
    *,
    etag: str | None,
    message_id: str,
    now: datetime,
) -> bool:
    """Record the publish; False if the marker changed under us (logged by the caller)."""
    body = _encode(
        {**record, "state": PUBLISHED, "published_at": now.isoformat(), "message_id": message_id}
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
