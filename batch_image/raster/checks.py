"""Checks that run before any heavy work, each failing with one clear line.

Order matters: the cheapest checks first (bytes on disk), then the header,
then compatibility with the model, then the tile index against the file size
(which catches truncated files without reading any pixels).

A GDAL VRT (:mod:`batch_image.raster.vrt`) is checked as what it stands for: its
sources are checked first (relative, beside it, each a sound GeoTIFF), then the
stacked header is checked like a GeoTIFF's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError

from batch_image.errors import InvalidInputError
from batch_image.raster import vrt
from batch_image.raster.validity import alpha_bands

TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
KNOWN_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "a gzip archive",
    b"\x89HDF": "an HDF5 file",
}
DEFAULT_MAX_PIXELS = 2_000_000_000


@dataclass(frozen=True)
class RasterInfo:
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    crs: str | None
    transform: tuple[float, ...]
    block_shape: tuple[int, int]
    size_bytes: int
    descriptions: tuple[str | None, ...] = ()  # band descriptions (names), file order
    alpha: tuple[int, ...] = ()  # alpha bands, 1-based: validity only, never features
    georeferencing: str = "transform"  # transform | gcps | rpcs | none


def check_signature(head: bytes, size: int, name: str) -> None:
    """Refuse empty files and files that are neither TIFF nor GDAL VRT by their first bytes."""
    if size == 0:
        raise InvalidInputError(f"{name} is empty (0 bytes)", code="empty_file")
    if head[:4] in TIFF_SIGNATURES or vrt.looks_like_vrt(head):
        return
    for magic, what in KNOWN_SIGNATURES.items():
        if head.startswith(magic):
            raise InvalidInputError(
                f"{name} is {what}, not a GeoTIFF (renamed file?)", code="not_a_tiff", found=what
            )
    raise InvalidInputError(
        f"{name} is not a TIFF file (bad header bytes): expected a GeoTIFF or a GDAL VRT",
        code="not_a_tiff",
    )


def georeferencing_of(src: rasterio.DatasetReader) -> str:
    """How the raster is located: a geotransform, ground control points, RPCs, or not."""
    if not src.transform.is_identity:
        return "transform"
    if src.gcps[0]:
        return "gcps"
    if src.rpcs:
        return "rpcs"
    return "transform" if src.crs else "none"


def _check_not_palette(src: rasterio.DatasetReader, name: str) -> None:
    if src.colorinterp and src.colorinterp[0] == ColorInterp.palette:
        raise InvalidInputError(
            f"{name} is a palette (indexed-colour) image: its pixel values are entries of a "
            "colour table, not measurements. Expected the original bands; found 1 band with "
            "a colour table. Upload the source bands, or expand it first "
            "(gdal_translate -expand rgb) if the model was trained on such RGB",
            code="palette_raster",
        )


def _check_tile_index(src: rasterio.DatasetReader, size: int, name: str) -> None:
    """Every block the header points at must lie inside the file."""
    end = 0
    for bidx in range(1, src.count + 1) if src.interleaving.name == "BAND" else (1,):
        for (row, col), _ in src.block_windows(bidx):
            off = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=bidx)
            cnt = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=bidx)
            if off and cnt:
                end = max(end, int(off) + int(cnt))
    if end > size:
        raise InvalidInputError(
            f"{name} is truncated: its tiles reach byte {end} but the file has {size}",
            code="truncated",
            expected_bytes=end,
            actual_bytes=size,
        )


def check_dataset(
    src: rasterio.DatasetReader,
    *,
    size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str = "",
    tile_index: bool = True,
) -> RasterInfo:
    """Check an open dataset against the caps; ``tile_index`` also checks it is not
    truncated (needs the tile offsets, so it is skipped for a header-only read)."""
    if src.width * src.height > max_pixels:
        raise InvalidInputError(
            f"{name} has {src.width} × {src.height} = {src.width * src.height:,} pixels, "
            f"over the limit of {max_pixels:,}",
            code="too_many_pixels",
            width=src.width,
            height=src.height,
            max_pixels=max_pixels,
        )
    if src.count < 1:
        raise InvalidInputError(f"{name} has no bands", code="no_bands")
    if len(set(src.dtypes)) != 1:
        raise InvalidInputError(
            f"{name} mixes band types {sorted(set(src.dtypes))}", code="mixed_dtypes"
        )
    if src.driver not in ("GTiff", "VRT"):
        raise InvalidInputError(
            f"{name} is read as {src.driver}, expected a GeoTIFF or a GDAL VRT", code="not_a_tiff"
        )
    _check_not_palette(src, name)
    if tile_index and src.driver == "GTiff":
        _check_tile_index(src, size, name)
    return RasterInfo(
        width=src.width,
        height=src.height,
        count=src.count,
        dtype=src.dtypes[0],
        nodata=src.nodata,
        crs=src.crs.to_string() if src.crs else None,
        transform=tuple(src.transform)[:6],
        block_shape=src.block_shapes[0],
        size_bytes=size,
        descriptions=tuple(src.descriptions),
        alpha=alpha_bands(src),
        georeferencing=georeferencing_of(src),
    )


def check_raster(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "") -> RasterInfo:
    """Open ``path``, check it is a readable raster within the caps, return its header.

    For a VRT, ``size_bytes`` is the VRT's and its band files' bytes together.
    """
    path = Path(path)
    name = name or path.name
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
    check_signature(head, size, name)
    if vrt.looks_like_vrt(head):
        for source in vrt.local_sources(path, name):
            size += _check_vrt_source(source, path, max_pixels, name)
    try:
        with rasterio.Env(**vrt.OPEN_OPTIONS), rasterio.open(path) as src:
            return check_dataset(src, size=size, max_pixels=max_pixels, name=name)
    except InvalidInputError:
        raise
    except RasterioError as exc:
        raise InvalidInputError(
            f"{name} is not a readable GeoTIFF: {str(exc).splitlines()[0][:200]}",
            code="unreadable",
        ) from exc


def _check_vrt_source(source: Path, vrt_path: Path, max_pixels: int, vrt_name: str) -> int:
    """One band file of a VRT is itself a sound GeoTIFF (named as the user wrote it)."""
    relative = source.relative_to(vrt_path.parent).as_posix()
    shown = f"{vrt_name} band file {relative}"
    with source.open("rb") as fh:
        head = fh.read(16)
    if vrt.looks_like_vrt(head):
        raise InvalidInputError(
            f"{shown} is itself a VRT: reference the band GeoTIFFs directly",
            code="vrt_source_refused",
        )
    return check_raster(source, max_pixels=max_pixels, name=shown).size_bytes
