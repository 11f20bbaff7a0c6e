"""After prediction: the minimum mapping unit, class polygons and the accuracy sample.

Runs on the whole uncompressed scratch class raster, before it becomes a COG:

* **Minimum mapping unit** (``mmu_pixels`` > 1): patches smaller than that many pixels
  (4- or 8-connected) are merged into their largest neighbour by GDAL's sieve filter
  (``rasterio.features.sieve``); nodata is masked out, so it neither grows nor
  swallows patches. The class counts and mean confidences of ``summary.json`` are then
  recounted from the sieved raster (a merged pixel keeps its own confidence, which was
  the confidence of its original class).
* **Class polygons** (``polygons``): ``classes.gpkg`` (layer ``classes``: ``class_id``,
  ``class_name``, ``area`` in the CRS's units, a QGIS style stored in the file),
  vectorized from the final raster. More than ``max_polygons`` polygons: no file, and
  the summary says so (raise the minimum mapping unit).

Memory is bounded by a budget checked **before** anything is read: the whole class
raster (one byte a pixel) plus the sieve's output and the mask, and GDAL's polygon
tables, about :data:`BYTES_PER_PIXEL` bytes a pixel. Above the budget the run is
refused in one line (``postprocess_over_budget``) instead of being killed by the OOM
killer half-way.

Settings (:class:`PostProcess`): the model card's ``postprocess`` entry
(``{"mmu_pixels": 9, "connectivity": 8, "polygons": true}``) wins over the stack's
(``RASTERDROP_MMU_PIXELS`` …), since the model's author knows the map it makes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio import features

from batch_image.errors import InvalidInputError
from batch_image.model.card import NODATA_CLASS, ModelCard
from batch_image.predict.engine import EngineStats

log = logging.getLogger(__name__)

CLASSES_GPKG = "classes.gpkg"
SAMPLE_GPKG = "sample.gpkg"
POLYGON_LAYER = "classes"
BYTES_PER_PIXEL = 5  # classes + sieved copy + mask (3), GDAL's polygon bookkeeping (~2)
DEFAULT_BUDGET_BYTES = 4 * 1024**3
DEFAULT_MAX_POLYGONS = 200_000


@dataclass(frozen=True)
class PostProcess:
    """What to do after prediction; the defaults do nothing."""

    mmu_pixels: int = 0
    connectivity: int = 8
    polygons: bool = False
    max_polygons: int = DEFAULT_MAX_POLYGONS
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    accuracy_sample_n: int = 0
    source: str = "stack"

    @property
    def sieves(self) -> bool:
        return self.mmu_pixels > 1

    @property
    def needed(self) -> bool:
        return self.sieves or self.polygons

    def for_card(self, card: ModelCard) -> PostProcess:
        """The card's ``postprocess`` entry over these (stack) settings."""
        entry = card.extra.get("postprocess") if isinstance(card.extra, Mapping) else None
        if not isinstance(entry, Mapping):
            return self
        known = {"mmu_pixels", "connectivity", "polygons", "max_polygons"}
        changes = {k: entry[k] for k in known if k in entry}
        return replace(self, **changes, source="model card") if changes else self

    def checked(self) -> PostProcess:
        from batch_image.errors import ModelError

        if self.connectivity not in (4, 8):
            raise ModelError(
                f"postprocess connectivity must be 4 or 8, not {self.connectivity!r}",
                code="bad_postprocess",
            )
        if not isinstance(self.mmu_pixels, int) or self.mmu_pixels < 0:
            raise ModelError(
                f"postprocess mmu_pixels must be a whole number ≥ 0, not {self.mmu_pixels!r}",
                code="bad_postprocess",
            )
        return self


@dataclass
class PostResult:
    """What post-processing changed: the recounted statistics and the summary's record."""

    stats: EngineStats
    record: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # output label → file name


def check_budget(width: int, height: int, settings: PostProcess, name: str) -> None:
    need = width * height * BYTES_PER_PIXEL
    if need > settings.budget_bytes:
        raise InvalidInputError(
            f"{name}: the minimum mapping unit / class polygons need the whole class map in "
            f"memory, about {need / 1024**2:,.0f} MB for {width:,} × {height:,} pixels, over "
            f"the budget of {settings.budget_bytes / 1024**2:,.0f} MB: split the raster into "
            "tiles, or predict it without post-processing",
            code="postprocess_over_budget",
            needed_bytes=need,
            budget_bytes=settings.budget_bytes,
        )


def apply(
    classes_tif: Path,
    confidence_tif: Path,
    out_dir: Path,
    card: ModelCard,
    settings: PostProcess,
    stats: EngineStats,
    name: str,
) -> PostResult:
    """Sieve ``classes_tif`` in place and/or write ``out_dir/classes.gpkg``."""
    result = PostResult(stats)
    if not settings.needed:
        return result
    with rasterio.open(classes_tif) as src:
        check_budget(src.width, src.height, settings, name)
    with rasterio.open(classes_tif, "r+") as dst:
        classes = dst.read(1)
        valid = classes != NODATA_CLASS
        if settings.sieves:
            sieved = _sieve(classes, valid, settings)
            changed = int(np.count_nonzero(sieved != classes))
            classes = sieved
            dst.write(classes, 1)
            result.stats = _recount(classes, valid, confidence_tif, stats)
            result.record["mmu_pixels"] = settings.mmu_pixels
            result.record["connectivity"] = settings.connectivity
            result.record["changed_pixels"] = changed
        transform, crs = dst.transform, dst.crs
    result.record["source"] = settings.source
    if settings.polygons:
        result.record["polygons"] = _polygons(
            classes, valid, transform, crs, card, settings, out_dir / CLASSES_GPKG
        )
        if result.record["polygons"]["written"]:
            result.files["polygons"] = CLASSES_GPKG
    return result


def _sieve(classes: np.ndarray, valid: np.ndarray, settings: PostProcess) -> np.ndarray:
    out = features.sieve(
        classes, settings.mmu_pixels, mask=valid, connectivity=settings.connectivity
    )
    out[~valid] = NODATA_CLASS
    return out


def _recount(
    classes: np.ndarray, valid: np.ndarray, confidence_tif: Path, stats: EngineStats
) -> EngineStats:
    """Counts and confidence sums per class from the sieved raster."""
    counts = {c: 0 for c in stats.counts}
    sums = {c: 0.0 for c in stats.counts}
    with rasterio.open(confidence_tif) as conf:
        step = max(1, (1 << 22) // max(1, conf.width))
        for row in range(0, conf.height, step):
            window = rasterio.windows.Window(0, row, conf.width, min(step, conf.height - row))
            c = conf.read(1, window=window).astype(np.int64)
            cls = classes[row : row + int(window.height)]
            ok = valid[row : row + int(window.height)]
            for cid in counts:
                sel = ok & (cls == cid)
                counts[cid] += int(sel.sum())
                sums[cid] += float(c[sel].sum())
    return replace(stats, counts=counts, conf_sums=sums)


def _polygons(
    classes: np.ndarray,
    valid: np.ndarray,
    transform: Any,
    crs: Any,
    card: ModelCard,
    settings: PostProcess,
    dest: Path,
) -> dict[str, Any]:
    """Write ``dest`` unless there are more than ``max_polygons``; the summary's record."""
    import fiona

    record: dict[str, Any] = {"file": CLASSES_GPKG, "max_polygons": settings.max_polygons}
    by_id = card.class_by_id()
    area_px = abs(transform.a * transform.e - transform.b * transform.d)
    shapes = features.shapes(
        classes, mask=valid, connectivity=settings.connectivity, transform=transform
    )
    partial = dest.with_name(f".{dest.stem}.partial{dest.suffix}")  # GDAL wants .gpkg
    partial.unlink(missing_ok=True)
    schema = {
        "geometry": "Polygon",
        "properties": {"class_id": "int", "class_name": "str:80", "area": "float"},
    }
    count = 0
    with fiona.open(
        partial, "w", driver="GPKG", schema=schema, crs_wkt=crs.to_wkt(), layer=POLYGON_LAYER
    ) as out:
        for geom, value in shapes:
            count += 1
            if count > settings.max_polygons:
                break
            cid = int(value)
            out.write(
                {
                    "geometry": geom,
                    "properties": {
                        "class_id": cid,
                        "class_name": by_id[cid].name if cid in by_id else f"class {cid}",
                        "area": _ring_area(geom) if area_px else 0.0,
                    },
                }
            )
    if count > settings.max_polygons:
        partial.unlink(missing_ok=True)
        note = (
            f"not written: the map has more than {settings.max_polygons:,} polygons; set a "
            "minimum mapping unit (mmu_pixels) to merge small patches"
        )
        log.warning("classes.gpkg %s", note)
        return record | {"written": False, "count": None, "note": note}
    _style_polygons(partial, card)
    partial.replace(dest)
    return record | {"written": True, "count": count}


def _ring_area(geom: Mapping[str, Any]) -> float:
    """Area of a GeoJSON polygon (outer ring minus holes), shoelace formula."""

    def ring(coords: Any) -> float:
        xy = np.asarray(coords, dtype=float)
        x, y = xy[:, 0], xy[:, 1]
        return 0.5 * abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])))

    rings = geom["coordinates"]
    return ring(rings[0]) - sum(ring(r) for r in rings[1:])


def _style_polygons(gpkg: Path, card: ModelCard) -> None:
    from batch_image.accuracy.qgis import polygon_style, store_default_style

    classes = [(c.id, c.name, c.colour) for c in card.classes]
    store_default_style(gpkg, POLYGON_LAYER, polygon_style(classes), "class polygons")


def draw_accuracy_sample(out_dir: Path, classes_tif: Path, settings: PostProcess) -> str | None:
    """``sample.gpkg`` from the finished ``classes.tif`` when ``accuracy_sample_n`` is set."""
    if settings.accuracy_sample_n <= 0:
        return None
    from batch_image.accuracy.samplefile import draw_sample

    draw_sample(
        classes_tif,
        out_dir / SAMPLE_GPKG,
        n=settings.accuracy_sample_n,
        seed=0,
        map_name=classes_tif.name,
        sidecar=False,
    )
    return SAMPLE_GPKG


def recorded(summary: Any, done: PostResult, sample: str | None, settings: PostProcess) -> Any:
    """The summary with the post-processing record and the extra files among its outputs."""
    record = dict(done.record)
    if sample:
        record["accuracy_sample"] = {"file": sample, "n": settings.accuracy_sample_n}
    if not record:
        return summary
    outputs = replace(summary.outputs, polygons=done.files.get("polygons"), accuracy_sample=sample)
    return replace(summary, outputs=outputs, postprocess=record)
