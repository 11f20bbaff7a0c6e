"""Check a raster's header in S3 from a few ranged reads, before any download.

The first block (64 KiB by default) carries the TIFF signature and, for COGs and
most GeoTIFFs, the whole header. rasterio opens the object through a file object
over ranged GETs (:class:`~batch_image.s3io.RangeReader`), so when a writer put
the IFD at the end of the file GDAL simply seeks there and one more small range
is fetched: a bad, mismatched or oversized raster costs a few requests, not a
download. What needs the pixel layout on disk (the truncation check against the
tile index) runs again on the local copy.

A VRT (:mod:`batch_image.raster.vrt`) is read whole (it is a few KiB of XML), its
band files are found beside its key and each gets the ranged-read header check;
they are downloaded with it, to the same relative paths.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioError

from batch_image import s3io
from batch_image.errors import InternalError, InvalidInputError
from batch_image.raster import vrt
from batch_image.raster.checks import RasterInfo, check_dataset, check_signature

HEADER_BLOCK = 64 * 1024
HEADER_MAX_BYTES = 16 * 1024**2


def check_remote_raster(
    s3: Any,
    bucket: str,
    key: str,
    *,
    size: int,
    max_pixels: int,
    name: str,
    version_id: str | None = None,
    etag: str | None = None,
    block: int = HEADER_BLOCK,
    max_bytes: int = HEADER_MAX_BYTES,
) -> tuple[RasterInfo, s3io.RangeSource]:
    """Signature, header and caps of ``s3://bucket/key``; returns the header and the
    range source (whose ``requests``/``bytes_read`` say what the check cost)."""
    source = s3io.RangeSource(
        s3,
        bucket,
        key,
        size,
        version_id=version_id,
        etag=etag,
        block=block,
        max_bytes=max_bytes,
    )
    head = source.get(0)[:16] if size else b""
    check_signature(head, size, name)
    path = f"rasterdrop-header-{uuid.uuid4().hex}.tif"

    def opener(fp: str, mode: str = "rb") -> s3io.RangeReader:
        if fp != path:
            raise FileNotFoundError(fp)  # no sidecar files (.aux.xml, .ovr) in S3 mode
        return source.open()

    try:
        with (
            rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
            rasterio.open(path, opener=opener) as src,
        ):
            info = check_dataset(src, size=size, max_pixels=max_pixels, name=name, tile_index=False)
    except (RasterioError, OSError, InvalidInputError) as exc:
        _raise_read_error(source, name, max_bytes)
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(
            f"{name} is not a readable GeoTIFF: {str(exc).splitlines()[0][:200]}",
            code="unreadable",
        ) from exc
    _raise_read_error(source, name, max_bytes)  # GDAL may shrug off a short read
    return info, source


def _raise_read_error(source: s3io.RangeSource, name: str, max_bytes: int) -> None:
    """A failed ranged read decides the outcome, whatever GDAL made of the short read."""
    if isinstance(source.error, s3io.ReadLimitExceeded):
        raise InvalidInputError(
            f"{name}: its header is spread over more than {max_bytes:,} bytes",
            code="header_too_large",
        ) from source.error
    if source.error is not None:  # S3 failed under GDAL: not the file's fault, retry
        raise source.error


@dataclass(frozen=True)
class VrtSource:
    """One band file of a VRT in S3: its path relative to the VRT, key, size and ETag."""

    relative: str
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class RemoteVrt:
    text: bytes
    sources: tuple[VrtSource, ...]

    @property
    def identity(self) -> str:
        """What names this VRT's content beyond its own version: its band files' ETags."""
        h = hashlib.sha256()
        for s in self.sources:
            h.update(f"{s.key}\0{s.etag}\0".encode("utf-8", "surrogatepass"))
        return h.hexdigest()[:16]

    @property
    def size(self) -> int:
        return sum(s.size for s in self.sources)


def head_remote_vrt(
    s3: Any, bucket: str, key: str, *, name: str, version_id: str | None = None
) -> RemoteVrt:
    """The VRT's text and its band files (checked: relative, beside it, all present)."""
    try:
        text = s3io.get_bytes(s3, bucket, key, version_id=version_id, max_bytes=vrt.MAX_VRT_BYTES)
    except ValueError as exc:
        raise InvalidInputError(
            f"{name} is over {vrt.MAX_VRT_BYTES:,} bytes, more than a band-stacking VRT needs",
            code="vrt_too_large",
        ) from exc
    if text is None:
        raise InvalidInputError(f"{name} does not exist (deleted?)", code="input_missing")
    relatives = vrt.vrt_sources(text, name)
    sources, missing = [], []
    for relative, source_key in zip(relatives, vrt.source_keys(key, relatives), strict=True):
        meta = s3io.head(s3, bucket, source_key)
        if meta is None:
            missing.append(relative)
            continue
        sources.append(
            VrtSource(relative, source_key, int(meta.get("ContentLength") or 0), s3io.etag_of(meta))
        )
    if missing:
        raise InvalidInputError(
            f"{name} references {', '.join(missing)}, not found beside it: upload the band "
            "files first, then the VRT (its upload starts the job)",
            code="vrt_source_missing",
            missing=missing,
        )
    return RemoteVrt(text, tuple(sources))


def check_remote_vrt(
    s3: Any,
    bucket: str,
    remote: RemoteVrt,
    *,
    name: str,
    max_pixels: int,
    scratch: Path,
) -> RasterInfo:
    """Every band file's header from ranged reads, then the stacked header itself (the
    VRT opened in ``scratch`` without its band files: GDAL opens them only to read)."""
    for source in remote.sources:
        check_remote_raster(
            s3,
            bucket,
            source.key,
            size=source.size,
            max_pixels=max_pixels,
            name=f"{name} band file {source.relative}",
            etag=source.etag,
        )
    folder = Path(tempfile.mkdtemp(prefix="vrt-header-", dir=scratch))
    path = folder / "header.vrt"
    path.write_bytes(remote.text)
    try:
        with (
            rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", **vrt.OPEN_OPTIONS),
            rasterio.open(path) as src,
        ):
            size = len(remote.text) + remote.size
            return check_dataset(src, size=size, max_pixels=max_pixels, name=name, tile_index=False)
    except RasterioError as exc:
        raise InvalidInputError(
            f"{name} is not a readable VRT: {str(exc).splitlines()[0][:200]}; rebuild it with "
            "gdalbuildvrt -separate over the band files",
            code="vrt_unreadable",
        ) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download_vrt(s3: Any, bucket: str, remote: RemoteVrt, dest: Path, *, workers: int = 8) -> Path:
    """The VRT at ``dest`` with its band files at their relative paths beside it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(remote.text)
    for source in remote.sources:
        s3io.download(s3, bucket, source.key, dest.parent / source.relative, workers=workers)
        got = (dest.parent / source.relative).stat().st_size
        if got != source.size:
            raise InternalError(
                f"band file {source.relative}: downloaded {got} bytes, expected {source.size}",
                code="short_download",
            )
    return dest
