"""Small class maps shaped like rasterdrop's classes.tif (uint8, nodata 255, tags)."""

from __future__ import annotations

import json
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

NAMES = {1: "water", 2: "forest", 3: "cropland"}
COLOURS = {1: "#1f78b4", 2: "#1b7837", 3: "#fdae61"}


def write_map(path: Path, classes: np.ndarray, *, nodata: int = 255, tiled: bool = True) -> Path:
    profile = {
        "driver": "GTiff",
        "width": classes.shape[1],
        "height": classes.shape[0],
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500000, 5000000, 10, 10),
        "nodata": nodata,
    }
    if tiled:
        profile |= {"tiled": True, "blockxsize": 64, "blockysize": 64}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes, 1)
        dst.update_tags(
            1,
            CLASS_NAMES=json.dumps({str(k): v for k, v in NAMES.items()}),
            CLASS_COLOURS=json.dumps({str(k): v for k, v in COLOURS.items()}),
        )
    return path


def class_array(seed: int = 0, shape: tuple[int, int] = (200, 300)) -> np.ndarray:
    """Three classes in blocks (water rare), a nodata corner."""
    rows, cols = np.indices(shape)
    out = np.where(cols < shape[1] // 2, 2, 3).astype(np.uint8)
    out[(rows < 30) & (cols > 200)] = 1
    out[:20, :20] = 255
    return out


@pytest.fixture
def class_map(tmp_path: Path) -> Path:
    return write_map(tmp_path / "classes.tif", class_array())


def label(sample: Path, dest: Path, reference, schema: dict | None = None) -> Path:
    """A copy of ``sample`` as QGIS would save it after labelling: ``reference(props)``
    (``schema``: another field layout, e.g. ``reference`` as text)."""
    with fiona.open(sample) as src:
        crs, tags, feats = src.crs_wkt, src.tags(), list(src)
        schema = schema or src.schema
    with fiona.open(dest, "w", driver="GPKG", schema=schema, crs_wkt=crs, layer="sample") as d:
        for f in feats:
            props = dict(f.properties)
            props["reference"] = reference(props)
            d.write({"geometry": f.geometry, "properties": props})
        d.update_tags(tags)
    return dest
