"""S3 "Object Created" events in the exact shape EventBridge delivers them.

Built from the real object's HEAD in the sandbox bucket, so size, ETag and version id are
what S3 reports. Shape (S3 user guide, "EventBridge message structure"):
``{"version": "0", "id", "detail-type": "Object Created", "source": "aws.s3", "account",
"time", "region", "resources": ["arn:aws:s3:::BUCKET"], "detail": {"version": "0",
"bucket": {"name"}, "object": {"key", "size", "etag", "version-id", "sequencer"},
"request-id", "requester", "source-ip-address", "reason"}}``. Unlike S3's own event
notifications, the key is not URL-encoded; the ETag carries no quotes.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

PUT_OBJECT = "PutObject"
COMPLETE_MULTIPART_UPLOAD = "CompleteMultipartUpload"
COPY_OBJECT = "CopyObject"
REASONS = (PUT_OBJECT, "POST Object", COPY_OBJECT, COMPLETE_MULTIPART_UPLOAD)

_lock = threading.Lock()
_counter = itertools.count(1)


def next_sequencer() -> str:
    """An increasing hex sequencer, like S3's (ordering events of one key)."""
    with _lock:
        n = next(_counter)
    return f"{time.time_ns() // 1000:014X}{n % 0xFFFF:04X}"


def request_id() -> str:
    """A 16-character upper-case request id, like S3's."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def iso_time(moment: datetime | None = None) -> str:
    """EventBridge's ``time``: UTC, whole seconds, ``Z``."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reason_for_etag(etag: str) -> str:
    """S3 names multipart objects by their ETag (``md5-N``)."""
    return COMPLETE_MULTIPART_UPLOAD if "-" in etag.strip('"') else PUT_OBJECT


def object_created_event(
    *,
    bucket: str,
    key: str,
    head: dict[str, Any],
    region: str,
    account: str,
    reason: str | None = None,
    requester: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The EventBridge event for ``key`` as described by ``head`` (a ``head_object`` answer)."""
    etag = str(head["ETag"]).strip('"')
    reason = reason or reason_for_etag(etag)
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}, got {reason!r}")
    obj: dict[str, Any] = {
        "key": key,
        "size": int(head["ContentLength"]),
        "etag": etag,
    }
    version = head.get("VersionId")
    if version and version != "null":
        obj["version-id"] = version
    obj["sequencer"] = next_sequencer()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": iso_time(head.get("LastModified")),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": request_id(),
            "requester": requester or account,
            "source-ip-address": source_ip,
            "reason": reason,
        },
    }


#: moto's notification event name → the EventBridge event's ``detail.reason``
MOTO_REASONS = {
    "s3:ObjectCreated:Put": PUT_OBJECT,
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": COPY_OBJECT,
    "s3:ObjectCreated:CompleteMultipartUpload": COMPLETE_MULTIPART_UPLOAD,
}


class S3EventTap:
    """S3 → EventBridge for buckets with EventBridge notifications on, from S3's own write
    path: every object version created (by a job, a handler or a user) becomes one
    "Object Created" event, handed to ``deliver`` as the write happens.

    moto's server runs in this process and calls ``moto.s3.notifications.send_event`` for
    every object it creates (PutObject, POST, CopyObject, CompleteMultipartUpload), before
    it answers the request; the tap wraps that function. So the event exists before the
    writer sees its answer (a job's writes are all delivered before its process exits),
    nothing is listed or polled, and moto never deep-copies its store for us: the sandbox's
    memory stays what the objects themselves take, whatever the number of uploads.
    """

    def __init__(
        self,
        buckets: list[str],
        *,
        region: str,
        account: str,
        deliver: Callable[[dict[str, Any]], None],
        remember: int = 4096,
    ) -> None:
        self.buckets = set(buckets)
        self.region, self.account = region, account
        self.deliver = deliver
        self._recent: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._remember = remember
        self._lock = threading.Lock()
        self._original: Callable[..., None] | None = None

    def install(self) -> S3EventTap:
        from moto.s3 import notifications

        if self._original is not None:
            return self
        original = notifications.send_event

        def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
            original(account_id, event_name, bucket, key)
            self._on_event(str(getattr(event_name, "value", event_name)), bucket, key)

        self._original = original
        notifications.send_event = send_event
        return self

    def uninstall(self) -> None:
        from moto.s3 import notifications

        if self._original is not None:
            notifications.send_event = self._original
            self._original = None

    def event_for(self, bucket: str, key: str, version: str | None) -> dict[str, Any] | None:
        """The event sent for that object version (recent ones only)."""
        with self._lock:
            return self._recent.get((bucket, key, version or "null"))

    def _on_event(self, event_name: str, bucket: Any, key: Any) -> None:
        reason = MOTO_REASONS.get(event_name)
        name = getattr(bucket, "name", None)
        if reason is None or name not in self.buckets or key is None:
            return
        if reason == PUT_OBJECT and getattr(key, "multipart", None) is not None:
            return  # moto's CompleteMultipartUpload stores via put_object; its own event follows
        version = getattr(key, "version_id", None)
        head = {
            "ETag": key.etag,
            "ContentLength": key.size,
            "LastModified": key.last_modified,
            "VersionId": None if version in (None, "null") else version,
        }
        event = object_created_event(
            bucket=name,
            key=key.name,
            head=head,
            region=self.region,
            account=self.account,
            reason=reason,
        )
        with self._lock:
            self._recent[(name, key.name, version or "null")] = event
            while len(self._recent) > self._remember:
                self._recent.pop(next(iter(self._recent)))
        self.deliver(event)
