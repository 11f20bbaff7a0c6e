"""Check a raster's header in S3 from a few ranged reads, before any download.

The first block (64 KiB by default) carries the TIFF signature and, for COGs and
most GeoTIFFs, the whole header. rasterio opens the object through a file object
over ranged GETs (:class:`~batch_image.s3io.RangeReader`), so when a writer put
the IFD at the end of the file GDAL simply seeks there and one more small range
is fetched: a bad, mismatched or oversized raster costs a few requests, not a
download. What needs the pixel layout on disk (the truncation check against the
tile index) runs again on the local copy.
"""

from __future__ import annotations

import uuid
from typing import Any

import rasterio
from rasterio.errors import RasterioError

from batch_image import s3io
from batch_image.errors import InvalidInputError
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
