"""Labels on an image's pixel grid: from a class raster or from vector features.

* :class:`RasterLabels` reads a class raster (0 = unlabelled, its nodata value too)
  of any numeric type: integers, or floats holding whole numbers (what
  ``gdal_rasterize`` and QGIS write by default); a float label that is not a whole
  number (2.5) is refused naming the values. When its grid differs from the image's
  (CRS, transform or size) it is warped onto the image grid (nearest neighbour).
* :class:`VectorLabels` reads GeoPackage, GeoJSON, FlatGeobuf or Shapefile features
  (:mod:`batch_image.train.vector_files`) with a class attribute (an id, or a class
  name), reprojects them to the image CRS and rasterizes them window by window with
  ``rasterio.features.rasterize``: polygons and multipolygons label the pixels whose
  centre they hold, a point labels the pixel it falls on, or with ``buffer`` N every
  pixel within N pixels of it. A feature whose class is empty (NULL or "") is not
  labelled yet and is skipped: a ``review.gpkg`` (:mod:`batch_image.predict.review`)
  with some points labelled is a point sample as it is (``class_field: label``).

Both refuse labels that do not overlap the image.

For a regression (``continuous=True``; ``value_field`` for vectors) both give float64
target values instead, NaN where unlabelled: a raster's nodata and non-finite values,
pixels outside every feature. Vector values must be numbers; points label only the
pixel they fall on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from batch_image.errors import InvalidInputError
from batch_image.model.card import ModelClass
from batch_image.raster import vrt
from batch_image.train.vector_files import check_vector_name, driver_for

MAX_FEATURES = 200_000
# label rasters may carry their classes as JSON [{"id", "name", "colour"}] in this tag
CLASSES_TAG = "RASTERDROP_CLASSES"


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _no_overlap(labels: str, image: str) -> InvalidInputError:
    return InvalidInputError(
        f"labels {labels} do not overlap image {image}: check both cover the same area and CRS",
        code="labels_no_overlap",
    )


class RasterLabels:
    def __init__(self, path: Path, image: Any, *, continuous: bool = False) -> None:
        import rasterio
        from rasterio.vrt import WarpedVRT
        from rasterio.warp import transform_bounds

        self.description = str(path)
        with path.open("rb") as fh:
            if vrt.looks_like_vrt(fh.read(64)):  # a VRT reads only files beside it
                vrt.local_sources(path, f"labels {path.name}")
        self._ds = rasterio.open(path)
        self._vrt = None
        ds = self._ds
        self._name = path.name
        kind = np.dtype(ds.dtypes[0]).kind if ds.count else ""
        if ds.count < 1 or kind not in "iuf":
            self.close()
            raise InvalidInputError(
                f"labels {path.name} must be a class raster of whole numbers: expected an "
                f"integer or float band, found {ds.dtypes[0] if ds.count else 'no band'}",
                code="labels_not_integer",
            )
        self._float = kind == "f"
        self._continuous = continuous
        # the warp's fill: the labels' nodata, else NaN (floats) or a value read as nodata
        fill = ds.nodata if ds.nodata is not None else 0
        if continuous and ds.nodata is None:
            fill = float("nan") if kind == "f" else np.iinfo(np.dtype(ds.dtypes[0])).max
        self._fill = fill
        if ds.crs is None or image.crs is None:
            aligned = ds.shape == image.shape and ds.transform == image.transform
            if not aligned:
                self.close()
                raise InvalidInputError(
                    f"labels {path.name} have no CRS and are not on the image grid",
                    code="labels_no_crs",
                )
        else:
            bounds = transform_bounds(ds.crs, image.crs, *ds.bounds)
            if not _overlaps(bounds, tuple(image.bounds)):
                self.close()
                raise _no_overlap(path.name, Path(image.name).name)
            aligned = (
                ds.crs == image.crs and ds.transform == image.transform and ds.shape == image.shape
            )
        if not aligned:
            self._vrt = WarpedVRT(
                ds,
                crs=image.crs,
                transform=image.transform,
                width=image.width,
                height=image.height,
                resampling=0,  # nearest
                nodata=self._fill if continuous else 0,
            )
        self.tags = ds.tags()

    def read(self, window: Any) -> np.ndarray:
        src = self._vrt if self._vrt is not None else self._ds
        data = src.read(1, window=window)
        if self._continuous:
            return self._values(data)
        nodata = self._ds.nodata
        if nodata is not None and nodata != 0 and not np.isnan(nodata):
            data = np.where(data == nodata, 0, data)
        return self._whole(data) if self._float else data

    def _values(self, data: np.ndarray) -> np.ndarray:
        """Target values as float64, NaN where unlabelled (nodata, the warp's fill, inf)."""
        out = data.astype(np.float64)
        for unlabelled in {self._ds.nodata, self._fill if self._vrt is not None else None}:
            if unlabelled is not None and not np.isnan(unlabelled):
                out[data == unlabelled] = np.nan
        out[np.isinf(out)] = np.nan
        return out

    def _whole(self, data: np.ndarray) -> np.ndarray:
        """Float labels as int64: NaN/inf (and nodata, above) unlabelled, whole numbers kept,
        anything else refused with the values found."""
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)  # unlabelled
        broken = data != np.round(data)
        if broken.any():
            values = sorted({float(v) for v in np.unique(data[broken])[:5]})
            raise InvalidInputError(
                f"labels {self._name} hold values that are not whole class ids: expected "
                f"whole numbers (1, 2, …), found {values}. Round them to class ids "
                "(gdal_calc.py --calc 'round(A)' --type Byte), or rasterize with -ot Byte",
                code="labels_not_integer",
                values=values,
            )
        if np.abs(data).max(initial=0) > 2**31:
            raise InvalidInputError(
                f"labels {self._name} hold values far outside class ids 1..254: fix the labels",
                code="labels_unknown_class",
            )
        return data.astype(np.int64)

    def classes_from_tags(self) -> dict[int, ModelClass]:
        """Class names and colours the sample (or a user) stored in the raster's tags."""
        raw = self.tags.get(CLASSES_TAG)
        if not raw:
            return {}
        try:
            items = json.loads(raw)
            return {
                int(c["id"]): ModelClass(int(c["id"]), str(c["name"]), str(c["colour"]))
                for c in items
            }
        except (ValueError, KeyError, TypeError):
            return {}

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        self._ds.close()


class VectorLabels:
    def __init__(
        self,
        path: Path,
        image: Any,
        class_field: str,
        classes: tuple[ModelClass, ...],
        *,
        buffer: int = 0,
        value_field: str | None = None,
    ) -> None:
        self.description = str(path)
        check_vector_name(path, path.name)
        self._continuous = value_field is not None
        if value_field is not None:
            shapes, points, unknown = _read_features(path, image, value_field, (), numeric=True)
            if unknown:
                raise InvalidInputError(
                    f"values {sorted(unknown)[:5]} in {path.name} attribute {value_field!r} "
                    "are not numbers: a regression needs a numeric attribute",
                    code="labels_not_numeric",
                    values=sorted(unknown)[:20],
                )
        else:
            shapes, points, unknown = _read_features(path, image, class_field, classes)
        ids = sorted(c.id for c in classes)
        if unknown and not self._continuous:
            raise InvalidInputError(
                f"label values {sorted(unknown)} in {path.name} attribute {class_field!r} are "
                f"not among the manifest's classes (ids {ids} or their names): add them to "
                "classes or fix the labels",
                code="labels_unknown_class",
                values=sorted(unknown),
            )
        self._transform = image.transform
        self._buffer = int(buffer)
        pixel = max(abs(image.transform.a), abs(image.transform.e))
        reach = pixel * (self._buffer + 1)
        self._shapes = [(g, c) for g, c, _ in shapes]
        self._points = [(g, c) for g, c, _ in points]
        self._bounds = np.array([b for _, _, b in shapes], dtype=np.float64).reshape(-1, 4)
        self._point_bounds = np.array(
            [(b[0] - reach, b[1] - reach, b[2] + reach, b[3] + reach) for _, _, b in points],
            dtype=np.float64,
        ).reshape(-1, 4)
        everything = np.concatenate([self._bounds, self._point_bounds])
        if not len(everything) or not any(
            _overlaps(tuple(b), tuple(image.bounds)) for b in everything
        ):
            raise _no_overlap(path.name, Path(image.name).name)
        self.tags: dict[str, str] = {}

    def read(self, window: Any) -> np.ndarray:
        h, w = int(window.height), int(window.width)
        row, col = int(window.row_off), int(window.col_off)
        if self._continuous:  # points never buffered: a value is its own pixel's
            out = _burn(self._shapes, self._bounds, self._transform, row, col, h, w, True)
            dots = _burn(self._points, self._point_bounds, self._transform, row, col, h, w, True)
            return np.where(~np.isnan(dots), dots, out)
        out = _burn(self._shapes, self._bounds, self._transform, row, col, h, w)
        if self._points:
            pad = self._buffer
            burnt = _burn(
                self._points, self._point_bounds, self._transform, row - pad, col - pad,
                h + 2 * pad, w + 2 * pad,
            )  # fmt: skip
            grown = _dilate(burnt, pad)[pad : pad + h, pad : pad + w]
            out = np.where(grown != 0, grown, out)
        return out

    def close(self) -> None:
        return None


POINT_TYPES = ("Point", "MultiPoint")
Feature = tuple[dict[str, Any], float, tuple[float, float, float, float]]


def _read_features(
    path: Path,
    image: Any,
    class_field: str,
    classes: tuple[ModelClass, ...],
    *,
    numeric: bool = False,
) -> tuple[list[Feature], list[Feature], set[str]]:
    """(areas and lines, points, unknown class values): geometries in the image CRS.
    ``numeric``: the attribute's values as floats (unknown: those that are not numbers)."""
    import fiona
    from rasterio.warp import transform_geom

    by_name = {c.name.lower(): c.id for c in classes}
    ids = {c.id for c in classes}
    shapes: list[Feature] = []
    points: list[Feature] = []
    unknown: set[str] = set()
    try:
        with fiona.open(path, driver=driver_for(path)) as src:
            src_crs = _source_crs(src, path.name)
            _check_field(src, path.name, class_field)
            for n, feat in enumerate(src, start=1):
                if n > MAX_FEATURES:
                    raise InvalidInputError(
                        f"vector labels {path.name} hold more than {MAX_FEATURES} features: "
                        "split them or label fewer",
                        code="labels_too_many_features",
                    )
                if feat.geometry is None:
                    continue
                value = feat.properties.get(class_field)
                if _unlabelled(value):
                    continue  # a review point nobody labelled yet; an unmeasured feature
                cid = _number(value) if numeric else _class_id(value, ids, by_name)
                if cid is None:
                    unknown.add(str(value))
                    continue
                geom = transform_geom(src_crs, image.crs, dict(feat.geometry))
                target = points if geom.get("type") in POINT_TYPES else shapes
                target.append((geom, cid, _geom_bounds(geom)))
    except (fiona.errors.FionaError, OSError) as exc:
        raise InvalidInputError(
            f"vector labels {path.name} cannot be read as GeoPackage, GeoJSON, FlatGeobuf or "
            f"Shapefile (GDAL says: {str(exc).splitlines()[0][:200]}): check the file opens "
            "in QGIS, or convert it with ogr2ogr",
            code="labels_unreadable",
        ) from exc
    return shapes, points, unknown


def _source_crs(src: Any, name: str) -> Any:
    if src.crs is None or not src.crs:
        raise InvalidInputError(
            f"vector labels {name} have no CRS: expected one (a .prj beside a shapefile, "
            "a CRS in a GeoPackage), found none; assign it in QGIS or with "
            "ogr2ogr -a_srs EPSG:XXXX",
            code="labels_no_crs",
        )
    return src.crs.to_wkt() if hasattr(src.crs, "to_wkt") else src.crs


def _check_field(src: Any, name: str, class_field: str) -> None:
    if class_field not in src.schema["properties"]:
        raise InvalidInputError(
            f"vector labels {name} have no attribute {class_field!r}: found "
            f"{', '.join(src.schema['properties']) or 'no attributes'}; set the sample's "
            "class_field to the attribute holding class ids or names",
            code="labels_no_class_field",
        )


def _burn(
    shapes: list[tuple[dict[str, Any], float]],
    bounds: np.ndarray,
    transform: Any,
    row: int,
    col: int,
    h: int,
    w: int,
    values: bool = False,
) -> np.ndarray:
    """Class ids of ``shapes`` on the ``h`` × ``w`` pixels from (``row``, ``col``); with
    ``values`` their float values, NaN outside every shape."""
    from affine import Affine
    from rasterio.features import rasterize

    wt = transform @ Affine.translation(col, row)
    xs, ys = zip(*(wt @ (c, r) for c in (0, w) for r in (0, h)), strict=True)
    left, right, bottom, top = min(xs), max(xs), min(ys), max(ys)
    b = bounds
    hit = (b[:, 0] <= right) & (b[:, 2] >= left) & (b[:, 1] <= top) & (b[:, 3] >= bottom)
    if values:
        if not hit.any():
            return np.full((h, w), np.nan)
        chosen = [shapes[i] for i in np.flatnonzero(hit)]
        return rasterize(chosen, out_shape=(h, w), transform=wt, fill=np.nan, dtype="float64")
    if not hit.any():
        return np.zeros((h, w), dtype=np.uint8)
    chosen = [shapes[i] for i in np.flatnonzero(hit)]
    return rasterize(chosen, out_shape=(h, w), transform=wt, fill=0, dtype="uint8")


def _dilate(burnt: np.ndarray, radius: int) -> np.ndarray:
    """Every pixel within ``radius`` pixels (Euclidean) of a labelled one takes its class."""
    if radius <= 0 or not burnt.any():
        return burnt
    out = burnt.copy()
    h, w = burnt.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if (dy or dx) and dy * dy + dx * dx <= radius * radius:
                src = burnt[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
                dst = out[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
                np.copyto(dst, src, where=(dst == 0) & (src != 0))
    return out


def _unlabelled(value: Any) -> bool:
    """An empty class value (NULL, "") marks a feature not labelled yet."""
    return value is None or (isinstance(value, str) and not value.strip())


def _class_id(value: Any, ids: set[int], by_name: dict[str, int]) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and float(value).is_integer() and int(value) in ids:
        return int(value)
    text = str(value).strip()
    if text.isdigit() and int(text) in ids:
        return int(text)
    return by_name.get(text.lower())


def _number(value: Any) -> float | None:
    """A finite number from an attribute (numbers, or text that parses as one)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) or np.isinf(number) else number


def _geom_bounds(geom: dict[str, Any]) -> tuple[float, float, float, float]:
    if geom.get("type") == "GeometryCollection":
        parts = [_geom_bounds(g) for g in geom.get("geometries") or []]
        if not parts:
            return (np.inf, np.inf, -np.inf, -np.inf)
        b = np.array(parts)
        return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    coords = np.array(list(_flatten(geom.get("coordinates") or [])), dtype=np.float64)
    if coords.size == 0:
        return (np.inf, np.inf, -np.inf, -np.inf)
    return (
        float(coords[:, 0].min()),
        float(coords[:, 1].min()),
        float(coords[:, 0].max()),
        float(coords[:, 1].max()),
    )


def _flatten(coords: Any) -> Any:
    if len(coords) and isinstance(coords[0], int | float):
        yield coords[:2]
        return
    for c in coords:
        yield from _flatten(c)
