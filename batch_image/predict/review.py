"""Review points: where the model is least sure, so people label there next.

Uncertainty sampling: a label where the model hesitates teaches it more than one where
it is already right. :class:`ReviewSelector` is fed every predicted window as the
engine writes it (no second pass over the raster) and keeps, per predicted class, a
bounded pool of the least sure pixels:

* the score is the winning class's confidence (0–100), or, when the window's class
  probabilities are given, the **margin** between the two best classes (0–100: a
  pixel torn between two classes scores 0 whatever the winner's own probability);
* candidates are thinned inside each window to one per ``min_distance`` × ``min_distance``
  cell (the least sure one), then the pool keeps the ``pool_size`` lowest scores;
* ties (confidence is whole percent) are broken by a fixed hash of the pixel's row and
  column, so the choice is deterministic and not biased towards the raster's corner.

Memory is ``pool_size`` candidates per class whatever the raster's size. At the end
:meth:`ReviewSelector.select` picks the points round-robin over the predicted classes
(each class in turn takes its least sure candidate that is at least ``min_distance``
pixels from every point already taken), so every predicted class is covered when there
are at least as many points as classes, and a class that runs out leaves its turn to the
others.

The file (:func:`write_review`) is :data:`REVIEW_GPKG`, layer :data:`LAYER`: points at
pixel centres in the map's CRS with ``predicted``, ``confidence``, ``margin`` (when
probabilities were used), an empty ``label`` (an int class id; a drop-down of class
names in QGIS), ``fingerprint`` (the map's, :mod:`batch_image.accuracy.maps`), ``row``,
``col`` and ``note``; its QGIS style draws the points by confidence. Labelled, it is a
point sample of a training manifest (``vector: review.gpkg``, ``class_field: label``):
:class:`batch_image.train.labels.VectorLabels` reads it, unlabelled points are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

REVIEW_GPKG = "review.gpkg"
LAYER = "review"
SCHEMA = "rasterdrop.review/1"
SCHEMA_TAG = "REVIEW_SCHEMA"
DESIGN_TAG = "REVIEW"
DEFAULT_REVIEW_POINTS = 200
DEFAULT_MIN_DISTANCE = 8  # pixels between two review points
POOL_PER_POINT = 8  # candidates kept per class for each point asked
MIN_POOL = 64
LABEL_FIELD = "label"
FIELDS = {
    "point_id": "int",
    "predicted": "int",
    "predicted_name": "str:80",
    "confidence": "int",
    "margin": "int",
    LABEL_FIELD: "int",
    "fingerprint": "str:64",
    "row": "int",
    "col": "int",
    "note": "str:254",
}
_NODATA = 255
NO_CRS_NOTE = "not written: the input has no CRS to place the points in"


def margin_percent(probabilities: np.ndarray, axis: int = 0) -> np.ndarray:
    """The best class's probability minus the second best's, in whole percent (uint8).

    ``probabilities`` holds one slice per class along ``axis``, as floats 0–1 or as
    whole percent (uint8 0–100, what a probability raster stores); one class only
    means a margin of 100 (nothing to hesitate between)."""
    p = np.asarray(probabilities)
    scale = 1.0 if p.dtype.kind in "ui" else 100.0
    if p.shape[axis] < 2:
        return np.full(np.delete(p.shape, axis), 100, dtype=np.uint8)
    top2 = np.partition(p.astype(np.float32, copy=False), p.shape[axis] - 2, axis=axis)
    best = np.take(top2, p.shape[axis] - 1, axis=axis)
    second = np.take(top2, p.shape[axis] - 2, axis=axis)
    return np.clip(np.rint((best - second) * scale), 0, 100).astype(np.uint8)


def _tie_break(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random 32-bit number per pixel (splitmix64 of its position)."""
    z = (rows.astype(np.uint64) << np.uint64(32)) | cols.astype(np.uint64)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) >> np.uint64(32)


@dataclass(frozen=True)
class ReviewPoint:
    point_id: int
    row: int
    col: int
    predicted: int
    confidence: int
    margin: int | None


@dataclass
class _Pool:
    """The least sure candidates of one class: sort keys and their pixels."""

    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    conf: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint8))
    margin: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint8))

    def merge(self, other: _Pool, cap: int) -> None:
        for name in ("keys", "rows", "cols", "conf", "margin"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        if self.keys.size > cap:
            keep = np.argpartition(self.keys, cap - 1)[:cap]
            for name in ("keys", "rows", "cols", "conf", "margin"):
                setattr(self, name, getattr(self, name)[keep])


class ReviewSelector:
    """Streams windows in, keeps bounded pools, selects ``n`` thinned points at the end."""

    def __init__(
        self,
        n: int = DEFAULT_REVIEW_POINTS,
        *,
        min_distance: int = DEFAULT_MIN_DISTANCE,
        margins: bool = False,
        pool_size: int | None = None,
    ) -> None:
        if n < 0 or min_distance < 1:
            raise ValueError("n must be ≥ 0 and min_distance ≥ 1")
        self.n = n
        self.min_distance = min_distance
        self.pool_size = pool_size or max(MIN_POOL, POOL_PER_POINT * n)
        self.pools: dict[int, _Pool] = {}
        self.used_margin = margins

    def offer(
        self,
        window: Window,
        classes: np.ndarray,
        confidence: np.ndarray,
        *,
        probabilities: np.ndarray | None = None,
        margin: np.ndarray | None = None,
    ) -> None:
        """One predicted window: ``classes`` and ``confidence`` ``(h, w)`` uint8 (255 where
        not valid), optionally its class ``probabilities`` ``(classes, h, w)`` or their
        precomputed ``margin`` ``(h, w)`` (:func:`margin_percent`)."""
        if self.n == 0:
            return
        margin = self._margin(confidence, probabilities, margin)
        valid = (classes != _NODATA) & (confidence != _NODATA)
        r, c = np.nonzero(valid)
        if r.size == 0:
            return
        score = (margin if margin is not None else confidence)[r, c].astype(np.uint64)
        rows, cols = r + int(window.row_off), c + int(window.col_off)
        keys = (score << np.uint64(32)) | _tie_break(rows, cols)
        ids = classes[r, c]
        conf = confidence[r, c]
        marg = margin[r, c] if margin is not None else np.full(r.size, _NODATA, np.uint8)
        for cid in np.unique(ids).tolist():
            sel = ids == cid
            pool = self._thinned(keys[sel], rows[sel], cols[sel], conf[sel], marg[sel])
            self.pools.setdefault(int(cid), _Pool()).merge(pool, self.pool_size)

    def _margin(
        self, confidence: np.ndarray, probabilities: np.ndarray | None, margin: np.ndarray | None
    ) -> np.ndarray | None:
        """The window's margins when the selector scores by margin, else None. A window
        without them (a chunk restored from an older checkpoint) gets the smallest margin
        its confidence allows, 2 × confidence − 100 (the runner-up has at most the rest)."""
        if not self.used_margin:
            return None
        if margin is None and probabilities is not None:
            margin = margin_percent(probabilities, axis=0)
        if margin is None:
            bound = np.clip(2 * confidence.astype(np.int16) - 100, 0, 100).astype(np.uint8)
            margin = np.where(confidence == _NODATA, _NODATA, bound).astype(np.uint8)
        return margin

    def _thinned(
        self, keys: np.ndarray, rows: np.ndarray, cols: np.ndarray, conf: Any, marg: Any
    ) -> _Pool:
        """The least sure candidate of each ``min_distance`` cell, then the pool's best."""
        d = self.min_distance
        cell = (rows // d) * (1 << 31) + cols // d
        order = np.lexsort((keys, cell))
        first = np.ones(order.size, dtype=bool)
        first[1:] = cell[order][1:] != cell[order][:-1]
        pick = order[first]
        if pick.size > self.pool_size:
            pick = pick[np.argpartition(keys[pick], self.pool_size - 1)[: self.pool_size]]
        return _Pool(keys[pick], rows[pick], cols[pick], conf[pick], marg[pick])

    @property
    def score(self) -> str:
        return "margin" if self.used_margin else "confidence"

    def select(self) -> list[ReviewPoint]:
        """``n`` points round-robin over the classes, each ≥ ``min_distance`` from the rest."""
        queues = {cid: np.argsort(p.keys, kind="stable") for cid, p in sorted(self.pools.items())}
        cursor = dict.fromkeys(queues, 0)
        taken = _Taken(self.min_distance)
        chosen: list[ReviewPoint] = []
        while len(chosen) < self.n and queues:
            for cid in list(queues):
                if len(chosen) >= self.n:
                    break
                point = self._next(cid, queues[cid], cursor, taken, len(chosen) + 1)
                if point is None:
                    del queues[cid]
                else:
                    chosen.append(point)
        return chosen

    def _next(
        self, cid: int, queue: np.ndarray, cursor: dict[int, int], taken: _Taken, pid: int
    ) -> ReviewPoint | None:
        pool = self.pools[cid]
        while cursor[cid] < queue.size:
            i = int(queue[cursor[cid]])
            cursor[cid] += 1
            row, col = int(pool.rows[i]), int(pool.cols[i])
            if taken.clear(row, col):
                taken.add(row, col)
                margin = int(pool.margin[i]) if self.used_margin else None
                return ReviewPoint(pid, row, col, cid, int(pool.conf[i]), margin)
        return None


class _Taken:
    """Points taken so far on a grid of ``d``-sized cells: a distance check looks at 3 × 3."""

    def __init__(self, d: int) -> None:
        self.d = d
        self.cells: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def clear(self, row: int, col: int) -> bool:
        cr, cc = row // self.d, col // self.d
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                for r, c in self.cells.get((cr + dr, cc + dc), ()):
                    if (r - row) ** 2 + (c - col) ** 2 < self.d**2:
                        return False
        return True

    def add(self, row: int, col: int) -> None:
        self.cells.setdefault((row // self.d, col // self.d), []).append((row, col))


@dataclass(frozen=True)
class ReviewClass:
    id: int
    name: str
    colour: str


def write_review(
    out: Path,
    points: Sequence[ReviewPoint],
    classes: Sequence[ReviewClass],
    *,
    crs: Any,
    transform: Any,
    fingerprint: str,
    map_name: str,
    record: dict[str, Any],
) -> None:
    """``out`` as a GeoPackage (replaced atomically) with its QGIS style inside."""
    import fiona

    from batch_image.accuracy.qgis import review_style, store_default_style

    names = {c.id: c.name for c in classes}
    design = {"schema": SCHEMA, "map": map_name, "fingerprint": fingerprint, **record}
    design["classes"] = [{"id": c.id, "name": c.name, "colour": c.colour} for c in classes]
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")  # GDAL wants .gpkg
    partial.unlink(missing_ok=True)
    schema = {"geometry": "Point", "properties": dict(FIELDS)}
    with fiona.open(
        partial, "w", driver="GPKG", schema=schema, crs_wkt=crs.to_wkt(), layer=LAYER
    ) as dst:
        dst.writerecords(
            {
                "geometry": {"type": "Point", "coordinates": _centre(transform, p)},
                "properties": {
                    "point_id": p.point_id,
                    "predicted": p.predicted,
                    "predicted_name": names.get(p.predicted, f"class {p.predicted}"),
                    "confidence": p.confidence,
                    "margin": p.margin,
                    LABEL_FIELD: None,
                    "fingerprint": fingerprint,
                    "row": p.row,
                    "col": p.col,
                    "note": None,
                },
            }
            for p in points
        )
        dst.update_tags({SCHEMA_TAG: SCHEMA, DESIGN_TAG: json.dumps(design)})
    qml = review_style([(c.id, c.name, c.colour) for c in classes])
    store_default_style(partial, LAYER, qml, "review points")
    partial.replace(out)


def _centre(transform: Any, p: ReviewPoint) -> tuple[float, float]:
    x, y = transform * (p.col + 0.5, p.row + 0.5)
    return float(x), float(y)


def _final_classes(classes_tif: Path, points: Sequence[ReviewPoint]) -> list[ReviewPoint]:
    """The points with the class of the finished map (a minimum mapping unit may have
    merged a pixel into its neighbour's class after it was chosen)."""
    import rasterio

    out = []
    with rasterio.open(classes_tif) as src:
        for p in points:
            value = int(src.read(1, window=Window(p.col, p.row, 1, 1))[0, 0])
            out.append(replace(p, predicted=value) if value != _NODATA else p)
    return out


def draw_review(
    out_dir: Path, classes_tif: Path, selector: ReviewSelector, classes: Sequence[ReviewClass]
) -> dict[str, Any]:
    """Select, write ``out_dir/review.gpkg``; returns the summary's ``review`` record
    (``file`` None and a ``note`` when the map has no CRS to place points in)."""
    import rasterio

    from batch_image.accuracy.maps import map_fingerprint

    with rasterio.open(classes_tif) as src:
        crs, transform = src.crs, src.transform
    if crs is None:
        return {"file": None, "requested": selector.n, "points": 0, "note": NO_CRS_NOTE}
    points = _final_classes(classes_tif, selector.select())
    fingerprint = map_fingerprint(classes_tif, classes_tif.name)
    record = {
        "file": REVIEW_GPKG,
        "requested": selector.n,
        "points": len(points),
        "min_distance_px": selector.min_distance,
        "score": selector.score,
        "per_class": {str(c.id): sum(p.predicted == c.id for p in points) for c in classes},
    }
    write_review(
        out_dir / REVIEW_GPKG,
        points,
        classes,
        crs=crs,
        transform=transform,
        fingerprint=fingerprint,
        map_name=classes_tif.name,
        record=record,
    )
    return record | {"fingerprint": fingerprint}
