"""``GET /v1/results?key=…``: where one upload of the caller's tenant stands.

Status, from the objects the job and the stack write (nothing else is asked):

- ``rejected``: the key is one the job refuses, or the object is above the size cap
  (the oversize rule sends it to a rejection notice, no job runs);
- ``succeeded`` / ``failed``: ``output/<path>/summary.json`` / ``error.json`` *of this
  version of the input* (its ``input.version_id``, or ETag when unversioned); a result of
  an older version of the same key does not count;
- ``running``: the job's lease ``partial/<run-id>/lease.json`` exists, with the run id
  computed as the job does (``run_id``, parity-tested with ``batch_image.jobs.request``);
- ``pending``: uploaded, nothing of the above yet.

Another tenant's key and a key with no object are the same 404. Links are fresh tokens
for the link endpoint (``rasterdrop_notify.tokens``), like the email's.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from rasterdrop_api import responses
from rasterdrop_api.settings import ApiSettings
from rasterdrop_notify.keyring import load_keys
from rasterdrop_notify.layout import (
    ERROR_JSON,
    MODELS_PREFIX,
    PARTIAL_PREFIX,
    SUMMARY_JSON,
)
from rasterdrop_notify.links import link_expiry, link_url
from rasterdrop_notify.paths import KeyRefused, check_key, file_name
from rasterdrop_notify.tokens import sign_token

LEASE_NAME = "lease.json"  # the job's partial/<run-id>/lease.json (batch_image.publish.layout)
CURRENT_JSON = "current.json"
_MISSING = ("404", "NoSuchKey", "NotFound")


def run_id(bucket: str, key: str, input_identity: str, model_name: str, model_version: str) -> str:
    """The job's run id (``batch_image.jobs.request.run_id``; a test pins them equal)."""
    h = hashlib.sha256()
    for part in (bucket, key, input_identity, model_name, model_version):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def result(
    key: str, tenant: str, *, s3: Any, secrets: Any, settings: ApiSettings, now: datetime
) -> dict[str, Any]:
    base = settings.base
    if not key.startswith(f"{base.input_prefix}{tenant}/"):
        return responses.not_found()
    head = _head(s3, base.bucket, key)
    if head is None:
        return responses.not_found()
    doc: dict[str, Any] = {
        "key": key,
        "file": file_name(key),
        "submitted_at": _iso(head["LastModified"]),
        "size_bytes": int(head.get("ContentLength") or 0),
    }
    try:
        out_prefix = f"{base.output_prefix}{check_key(key, base.input_prefix)}/"
    except KeyRefused as exc:
        return responses.ok({**doc, "status": "rejected", "error": _err(exc.code, str(exc))})
    if doc["size_bytes"] > base.max_input_bytes:
        limit = base.max_input_bytes
        message = f"{doc['file']} is {doc['size_bytes']:,} bytes; the limit is {limit:,} bytes"
        return responses.ok({**doc, "status": "rejected", "error": _err("too_large", message)})
    version = _version(head)
    identity = version or str(head.get("ETag", "")).strip('"')
    summary = _get_json(s3, base.bucket, out_prefix + SUMMARY_JSON)
    if summary is not None and _same_input(summary, version, identity):
        links, expires = _links(summary, secrets, settings, now)
        return responses.ok(
            {
                **doc,
                "status": "succeeded",
                "summary": summary,
                "links": links,
                "links_expire_at": expires,
            }
        )
    error = _get_json(s3, base.bucket, out_prefix + ERROR_JSON)
    if error is not None and _same_input(error, version, identity):
        keep = {k: error.get(k) for k in ("category", "code", "message", "details")}
        return responses.ok({**doc, "status": "failed", "error": keep})
    status = "running" if _leased(s3, settings, key, identity) else "pending"
    return responses.ok({**doc, "status": status})


def _links(
    summary: dict[str, Any], secrets: Any, settings: ApiSettings, now: datetime
) -> tuple[dict[str, str], str]:
    base = settings.base
    keys = load_keys(secrets, base.link_secret_arn)
    expires = link_expiry(now, base, summary.get("created_at"))
    links = {}
    for name, value in (summary.get("outputs") or {}).items():
        if isinstance(value, str) and value.startswith(base.output_prefix):
            links[name] = link_url(base.link_base_url, sign_token(value, expires, keys))
    return links, datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_input(doc: dict[str, Any], version: str | None, identity: str) -> bool:
    given = doc.get("input") or {}
    if version:
        return given.get("version_id") == version
    return str(given.get("etag") or "").strip('"') == identity


def _leased(s3: Any, settings: ApiSettings, key: str, identity: str) -> bool:
    bucket, name = settings.base.bucket, settings.model_name
    current = _get_json(s3, bucket, f"{MODELS_PREFIX}{name}/{CURRENT_JSON}")
    if not current or not current.get("version"):
        return False
    rid = run_id(bucket, key, identity, name, str(current["version"]))
    return _head(s3, bucket, f"{PARTIAL_PREFIX}{rid}/{LEASE_NAME}") is not None


def _version(head: dict[str, Any]) -> str | None:
    version = head.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise


def _get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(1_000_000)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            return None
        raise
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _err(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
