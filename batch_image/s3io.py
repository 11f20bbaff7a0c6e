"""S3 I/O for the job and for training: small, reusable, honest about failures.

Everything takes an explicit boto3 client (``client()`` builds one; boto3 honours
``AWS_ENDPOINT_URL``, so the same code talks to moto's server in tests). Keys are
used exactly as given, never URL-decoded.

* Reads: :func:`head`, :func:`get_json`, :func:`read_range`, :class:`RangeSource` /
  :class:`RangeReader` (a file object over ranged GETs, so rasterio can read a
  header without a download), :func:`download` (parallel ranged GETs, pinned to
  one version or ETag).
* Writes: :func:`put_json` (optionally conditional: ``if_none_match`` /
  ``if_match``), :func:`upload` (multipart above a threshold), :func:`delete_prefix`.
* :func:`fetch`: an ``s3://`` URI or a local path → a local file (the seam
  training's fetchers stand on).
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from batch_image.errors import InternalError

log = logging.getLogger(__name__)

MB = 1024**2
MULTIPART_THRESHOLD = 64 * MB
MULTIPART_CHUNK = 64 * MB
JSON_MAX_BYTES = 1 * MB
CONTENT_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".png": "image/png",
    ".json": "application/json",
    ".qml": "application/xml",
}


def client(max_pool: int = 16) -> Any:
    """An S3 client with standard retries and enough connections for parallel transfers."""
    import boto3
    from botocore.config import Config

    cfg = Config(
        retries={"max_attempts": 8, "mode": "standard"},
        max_pool_connections=max(10, max_pool),
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.client("s3", config=cfg)


def transfer_config(workers: int = 8) -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNK,
        max_concurrency=max(4, min(32, workers * 2)),
        use_threads=True,
    )


# --- errors ------------------------------------------------------------------------------


def error_code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    return str(resp.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    resp = getattr(exc, "response", None) or {}
    return int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchVersion") or (
        http_status(exc) == 404 and error_code(exc) != "NoSuchBucket"
    )


def is_precondition_failed(exc: BaseException) -> bool:
    """412 (the condition did not hold) or 409 (a concurrent conditional write won)."""
    return error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or (
        http_status(exc) in (409, 412)
    )


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    return ClientError


# --- URIs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str
    version_id: str | None = None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, name: str) -> S3Uri:
        base = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Uri(self.bucket, base + name)


def is_s3_uri(uri: str | os.PathLike) -> bool:
    return isinstance(uri, str) and uri.startswith("s3://")


def parse_s3_uri(uri: str) -> S3Uri:
    """``s3://bucket/key[?versionId=V]``; the key is taken literally (no URL-decoding)."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    rest = uri[len("s3://") :]
    version = None
    if "?versionId=" in rest:
        rest, query = rest.split("?", 1)
        version = parse_qs(query).get("versionId", [None])[0]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return S3Uri(bucket, key, version)


# --- reads ---------------------------------------------------------------------------------


def _version_args(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


def head(s3: Any, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """HeadObject, or ``None`` when the object (or that version) does not exist."""
    try:
        return s3.head_object(Bucket=bucket, Key=key, **_version_args(version_id))
    except _client_error() as exc:
        if is_not_found(exc) or error_code(exc) in ("400", "InvalidArgument"):
            # a malformed/unknown version id is answered with 400 by real S3
            return None
        raise


def etag_of(response: dict[str, Any]) -> str:
    return str(response.get("ETag", "")).strip('"')


def get_json(
    s3: Any, bucket: str, key: str, *, max_bytes: int = JSON_MAX_BYTES
) -> tuple[Any, dict[str, Any]] | None:
    """``(parsed JSON, GetObject response)`` or ``None`` when absent."""
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
    except _client_error() as exc:
        if is_not_found(exc):
            return None
        raise
    if int(resp.get("ContentLength") or 0) > max_bytes:
        raise InternalError(
            f"s3://{bucket}/{key} is larger than {max_bytes} bytes", code="json_too_large"
        )
    body = resp["Body"].read()
    try:
        return json.loads(body), resp
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InternalError(f"s3://{bucket}/{key} is not valid JSON", code="bad_json") from exc


def get_bytes(
    s3: Any, bucket: str, key: str, *, version_id: str | None = None, max_bytes: int = 16 * MB
) -> bytes | None:
    """A whole (small) object, e.g. a manifest; ``None`` when absent; refuses big ones."""
    try:
        resp = s3.get_object(Bucket=bucket, Key=key, **_version_args(version_id))
    except _client_error() as exc:
        if is_not_found(exc) or error_code(exc) in ("400", "InvalidArgument"):
            return None
        raise
    if int(resp.get("ContentLength") or 0) > max_bytes:
        resp["Body"].close()
        raise ValueError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
    return resp["Body"].read()


def read_range(
    s3: Any,
    bucket: str,
    key: str,
    start: int,
    end: int,
    *,
    version_id: str | None = None,
    etag: str | None = None,
) -> bytes:
    """Bytes ``start..end-1`` of one object version (pinned by version id or ETag)."""
    extra: dict[str, str] = dict(_version_args(version_id))
    if etag and not version_id:
        extra["IfMatch"] = f'"{etag}"'
    resp = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra)
    return resp["Body"].read()


class ReadLimitExceeded(OSError):
    """A ranged reader was asked for more bytes than its cap."""


class RangeSource:
    """One object version read in aligned blocks of ``block`` bytes by ranged GETs.

    Blocks are fetched on demand and kept (a header read touches a handful), and
    at most ``max_bytes`` are ever fetched, so a hostile header cannot make the
    job download the whole object through this path.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        size: int,
        *,
        version_id: str | None = None,
        etag: str | None = None,
        block: int = 64 * 1024,
        max_bytes: int = 64 * MB,
    ) -> None:
        self.s3, self.bucket, self.key, self.size = s3, bucket, key, size
        self.version_id, self.etag = version_id, etag
        self.block, self.max_bytes = block, max_bytes
        self.blocks: dict[int, bytes] = {}
        self.requests = 0
        self.bytes_read = 0
        self.error: BaseException | None = None  # what a failed fetch raised (GDAL hides it)
        self._lock = threading.Lock()

    def get(self, index: int) -> bytes:
        with self._lock:
            if index not in self.blocks:
                start = index * self.block
                end = min(self.size, start + self.block)
                if self.bytes_read + (end - start) > self.max_bytes:
                    self.error = ReadLimitExceeded(
                        f"reading the header needs more than {self.max_bytes} bytes"
                    )
                    raise self.error
                try:
                    self.blocks[index] = read_range(
                        self.s3,
                        self.bucket,
                        self.key,
                        start,
                        end,
                        version_id=self.version_id,
                        etag=self.etag,
                    )
                except Exception as exc:
                    self.error = exc
                    raise
                self.requests += 1
                self.bytes_read += end - start
            return self.blocks[index]

    def open(self) -> RangeReader:
        return RangeReader(self)


class RangeReader(io.RawIOBase):
    """A read-only, seekable file object over a :class:`RangeSource`."""

    def __init__(self, source: RangeSource) -> None:
        super().__init__()
        self.source = source
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.source.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), max(0, self.source.size - self.pos))
        done = 0
        while done < want:
            index, offset = divmod(self.pos, self.source.block)
            try:
                data = self.source.get(index)[offset:]
            except Exception:
                # an exception must not cross GDAL's C callback: a short read makes GDAL
                # fail cleanly, and the caller finds the cause in ``source.error``
                break
            n = min(len(data), want - done)
            if n <= 0:
                break
            view[done : done + n] = data[:n]
            done += n
            self.pos += n
        return done


def download(
    s3: Any,
    bucket: str,
    key: str,
    dest: Path,
    *,
    version_id: str | None = None,
    workers: int = 8,
) -> Path:
    """Download one object version to ``dest`` with parallel ranged GETs.

    Without a version id s3transfer pins the parts to the ETag it saw first
    (``IfMatch``), so an object overwritten mid-download fails instead of mixing.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(
        bucket,
        key,
        str(dest),
        ExtraArgs=_version_args(version_id) or None,
        Config=transfer_config(workers),
    )
    return dest


# --- writes --------------------------------------------------------------------------------


def put_json(
    s3: Any,
    bucket: str,
    key: str,
    data: Any,
    *,
    if_none_match: bool = False,
    if_match: str | None = None,
) -> str:
    """PutObject a JSON document; returns the new ETag.

    ``if_none_match=True`` creates only if absent; ``if_match=ETAG`` replaces only
    that exact object. A failed condition raises the botocore ``ClientError``
    (check with :func:`is_precondition_failed`).
    """
    extra: dict[str, str] = {}
    if if_none_match:
        extra["IfNoneMatch"] = "*"
    if if_match:
        extra["IfMatch"] = f'"{if_match.strip(chr(34))}"'
    body = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", **extra)
    return etag_of(resp)


def upload(s3: Any, path: Path, bucket: str, key: str, *, workers: int = 8) -> None:
    """Upload a local file (multipart above :data:`MULTIPART_THRESHOLD`)."""
    content_type = CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
    s3.upload_file(
        str(path),
        bucket,
        key,
        ExtraArgs={"ContentType": content_type},
        Config=transfer_config(workers),
    )


def list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for i in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[i : i + 1000]]
        if batch:
            resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if resp.get("Errors"):
                raise InternalError(
                    f"could not delete {len(resp['Errors'])} objects under s3://{bucket}",
                    code="delete_failed",
                    errors=resp["Errors"][:5],
                )


def delete_prefix(s3: Any, bucket: str, prefix: str, *, keep: tuple[str, ...] = ()) -> int:
    """Delete every object under ``prefix`` except the keys in ``keep``; returns the count."""
    keys = [o["Key"] for o in list_keys(s3, bucket, prefix) if o["Key"] not in keep]
    delete_keys(s3, bucket, keys)
    return len(keys)


# --- for train (and the model side of predict) ----------------------------------------------


def fetch(
    uri: str | os.PathLike,
    dest_dir: Path | None = None,
    *,
    s3: Any = None,
    max_bytes: int | None = None,
) -> Path:
    """A local path for ``uri``: ``s3://bucket/key[?versionId=V]`` is downloaded into
    ``dest_dir`` (a new temp dir if None; the caller removes it), anything else is
    returned as a local path unchanged. Raises ``FileNotFoundError`` when absent and
    ``ValueError`` when over ``max_bytes``.
    """
    if not is_s3_uri(uri):
        return Path(uri)
    loc = parse_s3_uri(str(uri))
    s3 = s3 or client()
    meta = head(s3, loc.bucket, loc.key, loc.version_id)
    if meta is None:
        raise FileNotFoundError(str(uri))
    size = int(meta.get("ContentLength") or 0)
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{uri} is {size} bytes, over the limit of {max_bytes}")
    dest_dir = Path(dest_dir) if dest_dir else Path(tempfile.mkdtemp(prefix="rasterdrop-fetch-"))
    name = Path(loc.key).name or "object"
    dest = dest_dir / name
    n = 1
    while dest.exists():  # two URIs with one file name must not overwrite each other
        dest = dest_dir / f"{n}-{name}"
        n += 1
    return download(s3, loc.bucket, loc.key, dest, version_id=loc.version_id or None)


def batch_client() -> Any:
    """An AWS Batch client (a sharded run's planner submits its jobs with it)."""
    import boto3
    from botocore.config import Config

    return boto3.client("batch", config=Config(retries={"max_attempts": 8, "mode": "standard"}))
