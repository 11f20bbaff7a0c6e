"""The accuracy sample as a GeoPackage: written to be labelled in QGIS, read back to assess.

Layer ``sample``, one point per sampled pixel (at its centre), fields ``point_id``,
``map_class`` (the map's class id there), ``row``/``col`` (the pixel), ``reference``
(empty: the class a person sees there, chosen from a drop-down of class names) and
``note``. The layer's metadata (GDAL layer tags, ``gpkg_metadata``) records the design:
the map's fingerprint and size, the allocation and how it was decided, the seed, the
class names, so the assessment can check it is reading a sample of *this* map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiona

from batch_image.accuracy.design import Allocation, SamplePoint
from batch_image.accuracy.maps import Strata
from batch_image.accuracy.qgis import sample_style, store_default_style
from batch_image.errors import InvalidInputError

LAYER = "sample"
SCHEMA = "rasterdrop.accuracy_sample/1"
SCHEMA_TAG = "ACCURACY_SAMPLE_SCHEMA"
DESIGN_TAG = "ACCURACY_SAMPLE"
SCHEMA_FIELDS = {
    "point_id": "int",
    "map_class": "int",
    "row": "int",
    "col": "int",
    "reference": "int",
    "note": "str:254",
}


@dataclass(frozen=True)
class LabelledPoint:
    point_id: int
    x: float
    y: float
    row: int | None
    col: int | None
    map_class: int | None
    reference: Any  # as read: None when not labelled yet


@dataclass(frozen=True)
class SampleFile:
    design: dict[str, Any]
    points: tuple[LabelledPoint, ...]
    crs: Any


def write_sample(
    out: Path,
    strata: Strata,
    allocation: Allocation,
    points: list[SamplePoint],
    *,
    seed: int,
    map_name: str,
    sidecar: bool = True,
) -> dict[str, Any]:
    """Write ``out`` (GeoPackage, replaced atomically; its QGIS style inside) and, with
    ``sidecar``, the style as ``.qml`` beside it; returns the design record stored."""
    design = {
        "schema": SCHEMA,
        "map": map_name,
        "fingerprint": strata.fingerprint,
        "width": strata.width,
        "height": strata.height,
        "pixel_area": strata.pixel_area,
        "area_unit": strata.area_unit,
        "seed": seed,
        "allocation": allocation.to_dict(),
        "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in strata.stated],
        "n": len(points),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")  # GDAL wants .gpkg
    partial.unlink(missing_ok=True)
    schema = {"geometry": "Point", "properties": dict(SCHEMA_FIELDS)}
    with fiona.open(
        partial, "w", driver="GPKG", schema=schema, crs_wkt=strata.crs.to_wkt(), layer=LAYER
    ) as dst:
        dst.writerecords(
            {
                "geometry": {"type": "Point", "coordinates": (p.x, p.y)},
                "properties": {
                    "point_id": p.point_id,
                    "map_class": p.map_class,
                    "row": p.row,
                    "col": p.col,
                    "reference": None,
                    "note": None,
                },
            }
            for p in points
        )
        dst.update_tags({SCHEMA_TAG: SCHEMA, DESIGN_TAG: json.dumps(design)})
    classes = [(c.id, c.name, c.colour) for c in strata.stated]
    qml = sample_style(classes, hidden=("map_class", "row", "col", "point_id"))
    store_default_style(partial, LAYER, qml, "accuracy sample")
    partial.replace(out)
    if sidecar:
        out.with_suffix(".qml").write_text(qml)
    return design


def read_sample(path: Path, name: str | None = None) -> SampleFile:
    """The labelled points and the design record; refuses files that are not our samples."""
    name = name or Path(path).name
    try:
        layers = fiona.listlayers(path)
    except Exception as exc:  # fiona raises DriverError and friends
        raise InvalidInputError(
            f"{name} cannot be opened as a GeoPackage: {str(exc).splitlines()[0][:160]}",
            code="not_a_sample",
        ) from exc
    layer = LAYER if LAYER in layers else (layers[0] if len(layers) == 1 else None)
    if layer is None:
        raise InvalidInputError(f"{name} has no layer '{LAYER}'", code="not_a_sample")
    with fiona.open(path, layer=layer) as src:
        tags = src.tags()
        design = _design(tags.get(DESIGN_TAG), name)
        missing = {"reference"} - set(src.schema["properties"])
        if missing:
            raise InvalidInputError(f"{name} has no 'reference' field", code="not_a_sample")
        points = tuple(_point(f, i) for i, f in enumerate(src, start=1))
        return SampleFile(design, points, src.crs)


def _design(text: str | None, name: str) -> dict[str, Any]:
    try:
        design = json.loads(text or "")
    except ValueError:
        design = None
    if not isinstance(design, dict) or design.get("schema") != SCHEMA:
        raise InvalidInputError(
            f"{name} is not an accuracy sample drawn by `accuracy-sample` (its design "
            "record is missing): draw one with `python -m batch_image accuracy-sample`",
            code="not_a_sample",
        )
    return design


def _point(feature: Any, index: int) -> LabelledPoint:
    props = feature.properties
    geom = feature.geometry
    x, y = (geom.coordinates[0], geom.coordinates[1]) if geom else (float("nan"),) * 2
    return LabelledPoint(
        point_id=int(props.get("point_id") or index),
        x=float(x),
        y=float(y),
        row=props.get("row"),
        col=props.get("col"),
        map_class=props.get("map_class"),
        reference=props.get("reference"),
    )


def draw_sample(
    map_path: Path,
    out: Path,
    *,
    n: int | None = None,
    min_per_class: int | None = None,
    allocation: dict[int, int] | None = None,
    seed: int = 0,
    map_name: str | None = None,
    sidecar: bool = True,
) -> dict[str, Any]:
    """``accuracy-sample``: allocate, draw and write ``out``; returns the design record.

    ``allocation`` (class id or name → points) sets every stratum exactly; otherwise ``n``
    points are allocated proportionally with ``min_per_class`` per class (default 50, or
    less when ``n`` is too small for that: at most half of ``n`` goes to the minimums).
    """
    from batch_image.accuracy import design as sampling
    from batch_image.accuracy.maps import read_strata

    map_name = map_name or Path(map_path).name
    strata = read_strata(map_path, map_name)
    if allocation:
        alloc = sampling.fixed(strata, _by_id(allocation, strata))
    else:
        if not n:
            raise InvalidInputError("give --n or --allocation", code="bad_allocation")
        if min_per_class is None:
            fair = max(2, n // (2 * len(strata.classes)))
            min_per_class = min(sampling.DEFAULT_MIN_PER_CLASS, fair)
        alloc = sampling.proportional(strata, n, min_per_class)
    points = sampling.draw(map_path, strata, alloc, seed)
    return write_sample(out, strata, alloc, points, seed=seed, map_name=map_name, sidecar=sidecar)


def _by_id(allocation: dict[Any, int], strata: Any) -> dict[int, int]:
    """Class names in ``--allocation`` → ids (case-insensitive); unknown names refused."""
    names = {c.name.lower(): c.id for c in strata.stated}
    out = {}
    for key, count in allocation.items():
        if isinstance(key, str) and not key.isdigit():
            if key.lower() not in names:
                raise InvalidInputError(
                    f"--allocation names class {key!r}, which the map does not have "
                    f"(its classes: {', '.join(c.name for c in strata.stated)})",
                    code="bad_allocation",
                )
            key = names[key.lower()]
        out[int(key)] = count
    return out
