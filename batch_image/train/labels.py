"""Labels on an image's pixel grid: from a class raster or from polygons.

* :class:`RasterLabels` reads a uint8/int class raster (0 = unlabelled). When
  its grid differs from the image's (CRS, transform or size) it is warped onto
  the image grid with nearest-neighbour resampling.
* :class:`VectorLabels` reads GeoJSON or GeoPackage polygons with a class
  attribute (an id, or a class name), reprojects them to the image CRS and
  rasterizes them window by window with ``rasterio.features.rasterize``.

Both refuse labels that do not overlap the image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from batch_image.errors import InvalidInputError
from batch_image.model.card import ModelClass

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
    def __init__(self, path: Path, image: Any) -> None:
        import rasterio
        from rasterio.vrt import WarpedVRT
        from rasterio.warp import transform_bounds

        self.description = str(path)
        self._ds = rasterio.open(path)
        self._vrt = None
        ds = self._ds
        if ds.count < 1 or not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
            self.close()
            raise InvalidInputError(
                f"labels {path.name} must be an integer class raster (dtype {ds.dtypes[0]})",
                code="labels_not_integer",
            )
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
                nodata=0,
            )
        self.tags = ds.tags()

    def read(self, window: Any) -> np.ndarray:
        src = self._vrt if self._vrt is not None else self._ds
        data = src.read(1, window=window)
        nodata = self._ds.nodata
        if nodata is not None and nodata != 0 and not np.isnan(nodata):
            data = np.where(data == nodata, 0, data)
        return data

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
        self, path: Path, image: Any, class_field: str, classes: tuple[ModelClass, ...]
    ) -> None:
        import fiona
        from rasterio.warp import transform_geom

        self.description = str(path)
        by_name = {c.name.lower(): c.id for c in classes}
        ids = {c.id for c in classes}
        shapes: list[tuple[dict[str, Any], int]] = []
        bounds: list[tuple[float, float, float, float]] = []
        unknown: set[str] = set()
        try:
            with fiona.open(path) as src:
                if src.crs is None or not src.crs:
                    raise InvalidInputError(
                        f"vector labels {path.name} have no CRS", code="labels_no_crs"
                    )
                if class_field not in src.schema["properties"]:
                    raise InvalidInputError(
                        f"vector labels {path.name} have no attribute {class_field!r} "
                        f"(found {', '.join(src.schema['properties']) or 'none'})",
                        code="labels_no_class_field",
                    )
                src_crs = src.crs.to_wkt() if hasattr(src.crs, "to_wkt") else src.crs
                for n, feat in enumerate(src, start=1):
                    if n > MAX_FEATURES:
                        raise InvalidInputError(
                            f"vector labels {path.name} hold more than {MAX_FEATURES} features",
                            code="labels_too_many_features",
                        )
                    if feat.geometry is None:
                        continue
                    value = feat.properties.get(class_field)
                    cid = _class_id(value, ids, by_name)
                    if cid is None:
                        unknown.add(str(value))
                        continue
                    geom = transform_geom(src_crs, image.crs, dict(feat.geometry))
                    shapes.append((geom, cid))
                    bounds.append(_geom_bounds(geom))
        except (fiona.errors.FionaError, OSError) as exc:
            raise InvalidInputError(
                f"vector labels {path.name} cannot be read: {exc}", code="labels_unreadable"
            ) from exc
        if unknown:
            raise InvalidInputError(
                f"label values {sorted(unknown)} in {path.name} attribute {class_field!r} are "
                f"not among the manifest's classes {sorted(ids)}: add them to classes or fix "
                "the labels",
                code="labels_unknown_class",
                values=sorted(unknown),
            )
        if not shapes or not any(_overlaps(b, tuple(image.bounds)) for b in bounds):
            raise _no_overlap(path.name, Path(image.name).name)
        self._shapes = shapes
        self._bounds = np.array(bounds, dtype=np.float64)
        self._image_transform = image.transform
        self.tags: dict[str, str] = {}

    def read(self, window: Any) -> np.ndarray:
        from affine import Affine
        from rasterio.features import rasterize

        h, w = int(window.height), int(window.width)
        wt = self._image_transform @ Affine.translation(int(window.col_off), int(window.row_off))
        xs, ys = zip(*(wt @ (c, r) for c in (0, w) for r in (0, h)), strict=True)
        left, right, bottom, top = min(xs), max(xs), min(ys), max(ys)
        b = self._bounds
        hit = (b[:, 0] < right) & (b[:, 2] > left) & (b[:, 1] < top) & (b[:, 3] > bottom)
        if not hit.any():
            return np.zeros((h, w), dtype=np.uint8)
        shapes = [self._shapes[i] for i in np.flatnonzero(hit)]
        return rasterize(
            shapes,
            out_shape=(h, w),
            transform=wt,
            fill=0,
            dtype="uint8",
        )

    def close(self) -> None:
        return None


def _class_id(value: Any, ids: set[int], by_name: dict[str, int]) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and float(value).is_integer() and int(value) in ids:
        return int(value)
    text = str(value).strip()
    if text.isdigit() and int(text) in ids:
        return int(text)
    return by_name.get(text.lower())


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
