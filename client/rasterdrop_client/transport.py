"""HTTP for the client: JSON calls with retries, and a streamed form upload with progress.

Retried with exponential backoff (base 0.5 s, doubling, capped at 20 s, full jitter,
``Retry-After`` honoured): 429 ``throttled`` and every 5xx, and connection errors. Not
retried: 429 ``quota_exceeded`` (→ OverQuota), 401/403 (→ NotAuthorized), other 4xx.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rasterdrop_client.errors import ClientError, InvalidInput, NotAuthorized, OverQuota

CHUNK = 1024 * 1024
USER_AGENT = "rasterdrop-client/0.1"
Sleep = Callable[[float], None]


@dataclass
class Retry:
    attempts: int = 8
    base_s: float = 0.5
    cap_s: float = 20.0
    sleep: Sleep = time.sleep
    jitter: Callable[[float], float] = lambda limit: random.uniform(limit / 2, limit)  # noqa: S311

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.cap_s, float(retry_after))
            except ValueError:
                pass
        return self.jitter(min(self.cap_s, self.base_s * 2**attempt))


class Transport:
    def __init__(self, url: str, token: str, *, retry: Retry | None = None, timeout: float = 60):
        if urlsplit(url).scheme not in ("http", "https"):
            raise ClientError(f"the API URL must be http(s)://..., got {url!r}")
        self.base = url if url.endswith("/") else url + "/"
        self.token = token
        self.retry = retry or Retry()
        self.timeout = timeout
        self.retries: list[tuple[int, float]] = []  # (status, slept s): what backoff did

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retry.attempts):
            request = urllib.request.Request(  # noqa: S310 (http(s) only: checked in __init__)
                self.base + path, data=data, headers=headers, method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                doc = _json(exc.read())
                if not _retryable(exc.code, doc) or attempt == self.retry.attempts - 1:
                    raise _error(exc.code, doc) from None
                self._backoff(attempt, exc.code, exc.headers.get("Retry-After"))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt == self.retry.attempts - 1:
                    raise ClientError(f"cannot reach {self.base}: {exc}") from None
                self._backoff(attempt, 0, None)
        raise ClientError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, status: int, retry_after: str | None) -> None:
        delay = self.retry.delay(attempt, retry_after)
        self.retries.append((status, delay))
        self.retry.sleep(delay)


def _retryable(status: int, doc: dict[str, Any]) -> bool:
    return status >= 500 or (status == 429 and doc.get("code") != "quota_exceeded")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"{}")
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:200]}
    return doc if isinstance(doc, dict) else {"message": str(doc)}


def _error(status: int, doc: dict[str, Any]) -> ClientError:
    code = str(doc.get("code") or "")
    message = str(doc.get("message") or f"HTTP {status}")
    if status in (401, 403):
        return NotAuthorized(f"not authorized ({status}): {message}", status=status, code=code)
    if status == 429 and code == "quota_exceeded":
        return OverQuota(f"over quota: {message}", status=status, code=code)
    if status in (400, 413) or code in ("bad_key", "not_a_tiff", "too_large"):
        return InvalidInput(message, status=status, code=code)
    return ClientError(f"HTTP {status}: {message}", status=status, code=code)


def post_form(
    url: str,
    fields: dict[str, str],
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    timeout: float = 600,
) -> None:
    """S3's browser-based POST: the fields, then the file (last, as S3 requires), streamed."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest("POST", parts.path or "/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.putheader("User-Agent", USER_AGENT)
        conn.endheaders()
        conn.send(head)
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                conn.send(chunk)
                if progress:
                    progress(len(chunk))
        conn.send(tail)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ClientError(f"upload of {path.name} failed: {exc}") from None
    finally:
        conn.close()
    if resp.status >= 300:
        raise _s3_error(resp.status, body, path.name)


def _s3_error(status: int, body: bytes, name: str) -> ClientError:
    text = body.decode("utf-8", "replace")
    code = _tag(text, "Code")
    message = _tag(text, "Message") or text[:200]
    if code in ("EntityTooLarge", "EntityTooSmall"):
        return InvalidInput(f"{name}: refused by the upload policy ({code}): {message}", code=code)
    if status == 403:
        return ClientError(f"{name}: the upload URL was refused ({code}): {message}", code=code)
    return ClientError(f"{name}: upload failed (HTTP {status} {code}): {message}", code=code)


def _tag(text: str, tag: str) -> str:
    start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
    return text[start + len(tag) + 2 : end] if start >= 0 and end > start else ""


def download(url: str, dest: Path, timeout: float = 600) -> Path:
    """GET ``url`` (the link endpoint redirects to S3) into ``dest``, atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ClientError(f"not an http(s) link: {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, partial.open("wb") as f:  # noqa: S310
            while chunk := resp.read(CHUNK):
                f.write(chunk)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise ClientError(f"download of {dest.name} failed: HTTP {exc.code}") from None
    partial.replace(dest)
    return dest
