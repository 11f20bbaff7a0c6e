"""Fetchers: ``fetch(uri) -> Path``, a local copy of a file a manifest names.

The trainer never knows whether an image or a label file is local or in S3:
:func:`local_fetcher` resolves paths relative to the manifest's directory,
:func:`s3_fetcher` resolves them against ``s3://bucket/training/<name>/`` and
downloads them into scratch, and :func:`same_bucket_fetcher` keeps an S3 run
inside its own bucket.

An S3 object is downloaded to ``<scratch>/<bucket>/<key>``, so files that travel
together keep their places: a shapefile's ``.shx``/``.dbf``/``.prj``/``.cpg``
(:mod:`batch_image.train.vector_files`) and a VRT's band files
(:mod:`batch_image.raster.vrt`) are fetched beside the object that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import InvalidInputError
from batch_image.raster import vrt
from batch_image.train import vector_files

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
    location), with the files each one needs beside it. Missing objects and local paths
    that do not exist are invalid input."""
    s3 = s3 or s3io.client()

    def one(full: str, shown: str) -> Path:
        loc = s3io.parse_s3_uri(full)
        dest = dest_dir / loc.bucket / loc.key
        if dest.is_file():  # fetched already (an image two samples share, a shared band)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        meta = s3io.head(s3, loc.bucket, loc.key, loc.version_id)
        if meta is None:
            raise InvalidInputError(f"{shown} does not exist ({full})", code="not_found")
        size = int(meta.get("ContentLength") or 0)
        if max_bytes is not None and size > max_bytes:
            raise InvalidInputError(
                f"{shown} is {size:,} bytes, over the limit of {max_bytes:,}", code="too_large"
            )
        return s3io.download(s3, loc.bucket, loc.key, dest, version_id=loc.version_id or None)

    def fetch(uri: str) -> Path:
        full = resolve_uri(base, uri)
        if not s3io.is_s3_uri(full):  # a local path (the job refuses those before this)
            if not Path(full).is_file():
                raise InvalidInputError(f"{uri} does not exist ({full})", code="not_found")
            return Path(full)
        path = one(full, uri)
        if vector_files.is_shapefile(path.name):
            _fetch_shapefile_set(full, uri, one)
        elif vrt.is_vrt_name(path.name) or vrt.looks_like_vrt(path.read_bytes()[:64]):
            for source in vrt.vrt_sources(path.read_bytes(), uri):
                one(f"{full.rsplit('/', 1)[0]}/{source}", f"{uri} band file {source}")
        return path

    return fetch


def _fetch_shapefile_set(full: str, uri: str, one: Callable[[str, str], Path]) -> None:
    """The sidecars of ``x.shp``: the required ones or a refusal naming what is missing."""
    folder, shp = full.rsplit("/", 1)
    missing = []
    for ext, sidecar in vector_files.sidecar_names(shp).items():
        try:
            one(f"{folder}/{sidecar}", f"{uri} sidecar {sidecar}")
        except InvalidInputError as exc:
            if exc.code != "not_found":
                raise
            if ext in vector_files.SHAPEFILE_REQUIRED:
                missing.append(sidecar)
    if missing:
        raise vector_files.incomplete_shapefile(uri, missing)


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
