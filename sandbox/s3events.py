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
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

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


class BucketWatcher:
    """S3 → EventBridge for buckets with EventBridge notifications on: every object version
    that appears (written by a job, a handler or a user) becomes one "Object Created" event.

    moto's server sends no events, so the watcher lists versions; an upload the sandbox
    made itself is marked `seen` with its event already sent.
    """

    def __init__(self, s3: Any, buckets: list[str], *, region: str, account: str) -> None:
        self.s3 = s3
        self.buckets = buckets
        self.region, self.account = region, account
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def seen(self, bucket: str, key: str, version: str | None) -> None:
        """This version's event is sent already: do not report it again."""
        with self._lock:
            self._seen.add((bucket, key, version or "null"))

    def scan(self) -> list[dict[str, Any]]:
        """Events of the versions not seen before, oldest first."""
        fresh = []
        for bucket in self.buckets:
            for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                for v in page.get("Versions", []):
                    ident = (bucket, v["Key"], v.get("VersionId") or "null")
                    with self._lock:
                        if ident in self._seen:
                            continue
                        self._seen.add(ident)
                    fresh.append((v["LastModified"], bucket, v["Key"], v.get("VersionId")))
        events = []
        for _, bucket, key, version in sorted(fresh, key=lambda f: (f[0], f[2])):
            try:
                head = self.s3.head_object(
                    Bucket=bucket, Key=key, **({"VersionId": version} if version else {})
                )
            except ClientError:  # deleted meanwhile: S3 sent its event anyway; skip it here
                continue
            events.append(
                object_created_event(
                    bucket=bucket, key=key, head=head, region=self.region, account=self.account
                )
            )
        return events
