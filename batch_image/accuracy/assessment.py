"""``assess``: a class map and its labelled sample → accuracy and error-adjusted areas.

The checks come first and each refusal names the file and the points: the sample must
have been drawn from this very map (the fingerprint stored in it, and every point's
map class where it lies), every point must lie on a valid pixel of the map, every
label must be one of the map's classes, and every mapped class must have at least two
labelled points (the variances divide by ``n - 1``). Unlabelled points are left out
and counted (a sample labelled only in part is still a stratified random sample if
the labeller skipped points for reasons unrelated to their class). Then
:func:`batch_image.accuracy.estimators.stratified_estimates` does the statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from batch_image import __version__, clock
from batch_image.accuracy.estimators import Z95, Estimate, Estimates, stratified_estimates
from batch_image.accuracy.maps import MapClass, Strata, open_map, read_strata
from batch_image.accuracy.samplefile import LabelledPoint, SampleFile, read_sample
from batch_image.errors import InvalidInputError
from batch_image.raster.validity import ValidityRule

log = logging.getLogger(__name__)

SCHEMA = "rasterdrop.assessment/1"
MIN_LABELLED = 2
MAX_LISTED = 8


@dataclass(frozen=True)
class Assessment:
    """What ``assess`` found; ``to_dict`` is ``assessment.json``."""

    map_name: str
    sample_name: str
    strata: Strata
    classes: tuple[MapClass, ...]  # matrix order: mapped classes, then reference-only ones
    estimates: Estimates
    labelled: int
    unlabelled: int
    design: dict[str, Any]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        e, s = self.estimates, self.strata
        return {
            "schema": SCHEMA,
            "map": self.map_name,
            "sample": self.sample_name,
            "fingerprint": s.fingerprint,
            "pixel_area": s.pixel_area,
            "area_unit": s.area_unit,
            "total_area": float(e.mapped_areas.sum()),
            "points": {"labelled": self.labelled, "unlabelled": self.unlabelled},
            "allocation": self.design.get("allocation"),
            "confidence": 0.95,
            "z": Z95,
            "overall_accuracy": _est(e.overall),
            "classes": [self._class_row(k, c) for k, c in enumerate(self.classes)],
            "error_matrix": {
                "class_ids": [c.id for c in self.classes],
                "rows": "map class",
                "columns": "reference class",
                "counts": e.counts.tolist(),
                "area_proportions": np.round(e.proportions, 6).tolist(),
            },
            "estimator": "Olofsson et al. 2014 (RSE 148:42-57), stratified by map class",
            "versions": {"rasterdrop": __version__},
            "created_at": self.created_at,
        }

    def _class_row(self, k: int, c: MapClass) -> dict[str, Any]:
        e = self.estimates
        pixels = round(float(e.mapped_areas[k]) / self.strata.pixel_area)
        return {
            "id": c.id,
            "name": c.name,
            "colour": c.colour,
            "mapped_pixels": pixels,
            "mapped_area": float(e.mapped_areas[k]),
            "sample_points": int(e.counts[k].sum()),
            "users_accuracy": _est(e.users[k]),
            "producers_accuracy": _est(e.producers[k]),
            "area_proportion": _est(e.area_proportions[k]),
            "area": _est(e.areas[k], digits=2),
        }


def _est(x: Estimate, digits: int = 6) -> dict[str, Any]:
    if np.isnan(x.value):
        return {"value": None, "se": None, "ci95": None}
    lo, hi = x.interval
    nan = np.isnan(x.se)
    return {
        "value": round(x.value, digits),
        "se": None if nan else round(x.se, digits),
        "ci95": None if nan else [round(lo, digits), round(hi, digits)],
    }


def assess(map_path: Path, sample_path: Path, *, map_name: str | None = None,
           sample_name: str | None = None) -> Assessment:  # fmt: skip
    """Check the sample against the map, then estimate accuracy and areas."""
    map_name = map_name or Path(map_path).name
    sample_name = sample_name or Path(sample_path).name
    sample = read_sample(sample_path, sample_name)
    strata = read_strata(map_path, map_name)
    _same_map(sample, strata, map_name, sample_name)
    on_map = _map_values(map_path, sample, map_name, sample_name)
    classes = _matrix_classes(strata, sample)
    labelled, unlabelled = _labels(sample, classes, sample_name)
    if not labelled:
        raise InvalidInputError(
            f"{sample_name}: none of its {unlabelled} points is labelled yet: open it in "
            "QGIS, toggle editing and choose each point's class in the 'reference' field",
            code="not_labelled",
        )
    used = set(strata.ids) | {ref for _, ref in labelled}
    classes = tuple(c for c in classes if c.id in used)  # no empty reference-only columns
    index = {c.id: k for k, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for p, ref in labelled:
        counts[index[on_map[p.point_id]], index[ref]] += 1
    pixels = dict(zip(strata.ids, strata.counts.tolist(), strict=True))
    mapped = np.array([pixels.get(c.id, 0) for c in classes], float)
    census = counts.sum(axis=1) == mapped  # every pixel of a tiny class was labelled
    _enough_per_stratum(counts, strata, classes, sample_name, census)
    estimates = stratified_estimates(counts, mapped * strata.pixel_area, census)
    return Assessment(
        map_name,
        sample_name,
        strata,
        classes,
        estimates,
        len(labelled),
        unlabelled,
        sample.design,
        clock.iso_stamp(),
    )


def _same_map(sample: SampleFile, strata: Strata, map_name: str, sample_name: str) -> None:
    if sample.design.get("fingerprint") != strata.fingerprint:
        raise InvalidInputError(
            f"{sample_name} was drawn from another map than {map_name} (or from an earlier "
            f"prediction of it: its map fingerprint differs): draw a new sample of "
            f"{map_name} with accuracy-sample",
            code="sample_of_another_map",
            sample_map=sample.design.get("map"),
        )


def _map_values(
    map_path: Path, sample: SampleFile, map_name: str, sample_name: str
) -> dict[int, int]:
    """Map class under every point; refuses points off the map or on nodata."""
    off, nodata, moved, found = [], [], [], {}
    with open_map(map_path, map_name) as src:
        rule = ValidityRule.of(src)
        xs, ys = _in_map_crs(sample, src.crs)
        for p, x, y in zip(sample.points, xs, ys, strict=True):
            if np.isnan(x) or np.isnan(y):
                off.append(p.point_id)
                continue
            row, col = rasterio.transform.rowcol(src.transform, x, y)
            if not (0 <= row < src.height and 0 <= col < src.width):
                off.append(p.point_id)
                continue
            window = Window(col, row, 1, 1)
            data = src.read(window=window)
            if not rule.mask(src, data, window)[0, 0]:
                nodata.append(p.point_id)
                continue
            found[p.point_id] = int(data[0, 0, 0])
            if p.map_class is not None and int(p.map_class) != found[p.point_id]:
                moved.append(p.point_id)
    if off:
        raise InvalidInputError(
            f"{sample_name}: point(s) {_ids(off)} lie outside {map_name}", code="point_off_map"
        )
    if nodata:
        raise InvalidInputError(
            f"{sample_name}: point(s) {_ids(nodata)} lie on nodata pixels of {map_name}",
            code="point_on_nodata",
        )
    if moved:
        raise InvalidInputError(
            f"{sample_name}: point(s) {_ids(moved)} were moved or belong to another map "
            f"(their map_class is not {map_name}'s class there)",
            code="sample_of_another_map",
        )
    return found


def _in_map_crs(sample: SampleFile, crs: Any) -> tuple[list[float], list[float]]:
    """Point coordinates in the map's CRS (a sample saved in QGIS in another CRS is
    reprojected, not refused)."""
    xs, ys = [p.x for p in sample.points], [p.y for p in sample.points]
    if not sample.crs or not xs:
        return xs, ys
    theirs = rasterio.crs.CRS.from_wkt(sample.crs.to_wkt())
    if theirs == crs:
        return xs, ys
    from rasterio.warp import transform

    out_x, out_y = transform(theirs, crs, xs, ys)
    return list(out_x), list(out_y)


def _matrix_classes(strata: Strata, sample: SampleFile) -> tuple[MapClass, ...]:
    """Mapped classes first, then classes the sample offers that the map never shows."""
    mapped = list(strata.classes)
    seen = {c.id for c in mapped}
    for item in sample.design.get("classes") or []:
        cid = int(item["id"])
        if cid not in seen:
            mapped.append(MapClass(cid, str(item.get("name", cid)), str(item.get("colour"))))
            seen.add(cid)
    return tuple(mapped)


def _labels(
    sample: SampleFile, classes: tuple[MapClass, ...], sample_name: str
) -> tuple[list[tuple[LabelledPoint, int]], int]:
    ids = {c.id for c in classes}
    names = {c.name.lower(): c.id for c in classes}
    labelled, unlabelled, bad = [], 0, []
    for p in sample.points:
        ref = p.reference
        if ref is None or (isinstance(ref, str) and not ref.strip()):
            unlabelled += 1
            continue
        cid = _as_class(ref, ids, names)
        if cid is None:
            bad.append(f"{p.point_id}={ref!r}")
        else:
            labelled.append((p, cid))
    if bad:
        known = ", ".join(f"{c.id} {c.name}" for c in classes)
        raise InvalidInputError(
            f"{sample_name}: reference value(s) {', '.join(bad[:MAX_LISTED])}"
            f"{' …' if len(bad) > MAX_LISTED else ''} are not classes of the map ({known})",
            code="bad_reference",
        )
    return labelled, unlabelled


def _as_class(value: Any, ids: set[int], names: dict[str, int]) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in names:
            return names[text.lower()]
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, float) and not value.is_integer():
        return None
    cid = int(value)
    return cid if cid in ids else None


def _enough_per_stratum(
    counts: np.ndarray,
    strata: Strata,
    classes: tuple[MapClass, ...],
    sample_name: str,
    census: np.ndarray,
) -> None:
    mapped = set(strata.ids)
    short = [
        f"{c.name} ({int(counts[k].sum())})"
        for k, c in enumerate(classes)
        if c.id in mapped and counts[k].sum() < MIN_LABELLED and not census[k]
    ]
    if short:
        raise InvalidInputError(
            f"{sample_name}: every map class needs at least {MIN_LABELLED} labelled points; "
            f"too few in: {', '.join(short)}",
            code="stratum_too_small",
        )


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_LISTED])
    return shown + (f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else "")
