"""The class map an accuracy sample is drawn from and assessed against.

Any single-band integer raster with a nodata value (or a GDAL mask) is a class map:
rasterdrop's ``classes.tif`` names its classes in the ``CLASS_NAMES``/``CLASS_COLOURS``
tags; a sample label raster in ``RASTERDROP_CLASSES``; anything else gets ``class <id>``
and the colour table's colours. Valid pixels follow the package's one rule
(:mod:`batch_image.raster.validity`).

:func:`read_strata` reads the map once, window by window (memory stays a few windows
whatever its size), and returns the pixel count of every class per window plus the
map's **fingerprint**: sha256 over its size, transform, CRS and every pixel's class
(nodata as 255). A sample stores the fingerprint it was drawn from, so an assessment
can tell that a labelled file belongs to another map, or to this map re-predicted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from batch_image.errors import InvalidInputError
from batch_image.raster.validity import ValidityRule

WINDOW_PIXELS = 1 << 20
UNMAPPED = 255  # how a non-valid pixel enters the fingerprint
DEFAULT_COLOURS = (
    "#1f78b4", "#1b7837", "#a6d96a", "#fdae61", "#d73027", "#bf812d",
    "#762a83", "#35978f", "#e7298a", "#666666",
)  # fmt: skip


@dataclass(frozen=True)
class MapClass:
    id: int
    name: str
    colour: str


@dataclass(frozen=True)
class Strata:
    """What one pass over the map learns: classes, pixels per class per window, identity."""

    classes: tuple[MapClass, ...]  # every class with at least one pixel, by id
    windows: tuple[Window, ...]
    window_counts: np.ndarray  # (windows, classes) pixels of each class in each window
    pixel_area: float
    area_unit: str
    fingerprint: str
    crs: Any
    transform: Any
    width: int
    height: int
    stated: tuple[MapClass, ...] = ()  # every class the file names, mapped or not, by id

    @property
    def counts(self) -> np.ndarray:
        return self.window_counts.sum(axis=0)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.classes)

    def by_id(self) -> dict[int, MapClass]:
        return {c.id: c for c in self.classes}


def open_map(path: Path, name: str | None = None) -> rasterio.io.DatasetReader:
    """Open ``path`` as a class map, or refuse it in one line naming the file."""
    name = name or Path(path).name
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInputError(
            f"{name} cannot be opened as a raster: {str(exc).splitlines()[0][:160]}",
            code="not_a_raster",
        ) from exc
    problem = None
    if src.count != 1:
        problem = f"has {src.count} bands; a class map has one"
    elif not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        problem = f"holds {src.dtypes[0]} values; a class map holds integer class ids"
    elif src.crs is None:
        problem = "has no CRS: areas and sample points need one"
    if problem:
        src.close()
        raise InvalidInputError(f"{name} {problem}", code="not_a_class_map")
    return src


def map_classes(src: rasterio.io.DatasetReader) -> dict[int, MapClass]:
    """Class names and colours the file states (tags, colour table), by id."""
    tags = src.tags(1) | src.tags()
    names: dict[int, str] = {}
    colours: dict[int, str] = {}
    if "CLASS_NAMES" in tags:
        names = {int(k): str(v) for k, v in _json(tags["CLASS_NAMES"], {}).items()}
        colours = {int(k): str(v) for k, v in _json(tags.get("CLASS_COLOURS"), {}).items()}
    elif "RASTERDROP_CLASSES" in tags:
        for item in _json(tags["RASTERDROP_CLASSES"], []):
            names[int(item["id"])] = str(item["name"])
            if item.get("colour"):
                colours[int(item["id"])] = str(item["colour"])
    try:
        table = src.colormap(1)
    except ValueError:
        table = {}
    ids = set(names) or {k for k in table if k != UNMAPPED}  # colour tables list 256 entries
    out = {}
    for cid in ids:
        colour = colours.get(cid)
        if colour is None and cid in table:
            colour = "#{:02x}{:02x}{:02x}".format(*table[cid][:3])
        out[cid] = MapClass(cid, names.get(cid, f"class {cid}"), colour or _default(cid))
    return out if names else {}


def class_colour(src: rasterio.io.DatasetReader, cid: int) -> str:
    try:
        rgba = src.colormap(1).get(cid)
    except ValueError:
        rgba = None
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3]) if rgba else _default(cid)


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _default(cid: int) -> str:
    return DEFAULT_COLOURS[cid % len(DEFAULT_COLOURS)]


def map_windows(src: rasterio.io.DatasetReader) -> list[Window]:
    """Bands of whole rows, top to bottom: the pixels come in row-major order whatever the
    file's block layout, so a COG and a striped copy of one map share a fingerprint."""
    rows = max(1, WINDOW_PIXELS // src.width)
    return [
        Window(0, row, src.width, min(rows, src.height - row)) for row in range(0, src.height, rows)
    ]


def read_windows(
    src: rasterio.io.DatasetReader, windows: list[Window]
) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """``(window, classes, valid)`` for each window, in order."""
    rule = ValidityRule.of(src)
    for window in windows:
        data = src.read(window=window)
        yield window, data[0], rule.mask(src, data, window)


def read_strata(path: Path, name: str | None = None) -> Strata:
    """One pass: pixels of every class in every window, and the fingerprint."""
    name = name or Path(path).name
    with open_map(path, name) as src:
        stated = map_classes(src)
        windows = map_windows(src)
        digest = hashlib.sha256(_identity(src).encode())
        per_window: list[dict[int, int]] = []
        for _window, classes, valid in read_windows(src, windows):
            ids, counts = np.unique(classes[valid], return_counts=True)
            per_window.append(dict(zip(ids.tolist(), counts.tolist(), strict=True)))
            digest.update(np.where(valid, classes, UNMAPPED).astype("<i4").tobytes())
        found = sorted({cid for counts in per_window for cid in counts})
        if not found:
            raise InvalidInputError(f"{name} has no valid pixels", code="empty_map")
        matrix = np.array([[c.get(cid, 0) for cid in found] for c in per_window], dtype=np.int64)
        area, unit = _pixel_area(src)
        classes_found = tuple(
            stated.get(cid) or MapClass(cid, f"class {cid}", class_colour(src, cid))
            for cid in found
        )
        return Strata(
            classes_found,
            tuple(windows),
            matrix,
            area,
            unit,
            digest.hexdigest(),
            src.crs,
            src.transform,
            src.width,
            src.height,
            _all_classes(stated, classes_found),
        )


def map_fingerprint(path: Path, name: str | None = None) -> str:
    """The fingerprint :func:`read_strata` records, from one pass over the map."""
    with open_map(path, name) as src:
        digest = hashlib.sha256(_identity(src).encode())
        for _window, classes, valid in read_windows(src, map_windows(src)):
            digest.update(np.where(valid, classes, UNMAPPED).astype("<i4").tobytes())
        return digest.hexdigest()


def _all_classes(stated: dict[int, MapClass], found: tuple[MapClass, ...]) -> tuple[MapClass, ...]:
    merged = {**stated, **{c.id: c for c in found}}
    return tuple(merged[cid] for cid in sorted(merged))


def _identity(src: rasterio.io.DatasetReader) -> str:
    return json.dumps([src.width, src.height, list(src.transform)[:6], src.crs.to_wkt()])


def _pixel_area(src: rasterio.io.DatasetReader) -> tuple[float, str]:
    t = src.transform
    area = abs(t.a * t.e - t.b * t.d)
    if src.crs.is_geographic:
        return area, "degree^2"
    return area, f"{(src.crs.linear_units or 'unit').lower()}^2"
