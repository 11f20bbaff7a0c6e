"""Fetchers: ``fetch(uri) -> Path``, a local copy of a file a manifest names.

The trainer never knows whether an image or a label file is local or in S3:
:func:`local_fetcher` resolves paths relative to the manifest's directory,
:func:`s3_fetcher` resolves them against ``s3://bucket/training/<name>/`` and
downloads them into scratch, and :func:`same_bucket_fetcher` keeps an S3 run
inside its own bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import InvalidInputError

Fetch = Callable[[str], Path]


def resolve_uri(base: str, uri: str) -> str:
    """``uri`` as given when absolute (a path or ``scheme://``), else relative to ``base``.

    ``base`` is the manifest's location: a local directory or an ``s3://bucket/prefix/``.
    """
    if "://" in uri or uri.startswith("/"):
        return uri
    if "://" in base:
        import posixpath

        scheme, rest = base.split("://", 1)
        bucket, _, prefix = rest.partition("/")
        key = posixpath.normpath(posixpath.join(prefix, uri))
        if key.startswith("../") or key == "..":
            raise InvalidInputError(
                f"{uri} climbs out of the bucket from {base}", code="manifest_invalid"
            )
        return f"{scheme}://{bucket}/{key}"
    return str(Path(base) / uri)


def local_fetcher(base: Path) -> Fetch:
    """Resolve manifest paths relative to ``base``; refuse URIs a local run cannot read."""

    def fetch(uri: str) -> Path:
        if "://" in uri:
            raise InvalidInputError(
                f"{uri} is not a local path: run the S3 train job for s3:// manifests",
                code="manifest_uri_unsupported",
            )
        path = Path(uri).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise InvalidInputError(f"{uri} does not exist (looked at {path})", code="not_found")
        return path

    return fetch


def s3_fetcher(base: str, dest_dir: Path, *, s3: Any = None, max_bytes: int | None = None) -> Fetch:
    """``fetch(uri) -> Path`` for manifest entries, relative to ``base`` (the manifest's
    location). Missing objects and local paths that do not exist are invalid input."""
    s3 = s3 or s3io.client()

    def fetch(uri: str) -> Path:
        full = resolve_uri(base, uri)
        try:
            path = s3io.fetch(full, dest_dir, s3=s3, max_bytes=max_bytes)
        except FileNotFoundError as exc:
            raise InvalidInputError(f"{uri} does not exist ({full})", code="not_found") from exc
        except ValueError as exc:
            raise InvalidInputError(str(exc), code="too_large") from exc
        if not path.is_file():
            raise InvalidInputError(f"{uri} does not exist ({full})", code="not_found")
        return path

    return fetch


def same_bucket_fetcher(bucket: str, base: str, inner: Callable[[str], Path]) -> Callable:
    """Only objects of the job's own bucket: no local container paths, no other buckets."""

    def fetch(uri: str) -> Path:
        full = resolve_uri(base, uri)
        if not full.startswith(f"s3://{bucket}/"):
            raise InvalidInputError(
                f"{uri}: in S3 mode manifest paths must be keys relative to the manifest or "
                f"s3://{bucket}/ URIs",
                code="manifest_uri_unsupported",
            )
        return inner(uri)

    return fetch
