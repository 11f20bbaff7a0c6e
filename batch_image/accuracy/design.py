"""The sampling design: how many points each map class gets, and which pixels they are.

Stratified random sampling with the map classes as strata (Olofsson et al. 2014, §5.1):
by default the allocation is proportional to each class's mapped area with a minimum
per class, so rare classes still get enough points for their user's accuracy
(``min_per_class``, the paper's example uses 50–100); ``--allocation`` sets each
stratum's count exactly. Within a stratum the points are a simple random sample of its
pixels without replacement, drawn in two passes over the map with bounded memory: the
first (:func:`batch_image.accuracy.maps.read_strata`) counts the pixels of every class
in every window, the random ranks are chosen among those counts, the second pass finds
the pixels with those ranks. Same map, allocation and seed: same points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch_image.accuracy.maps import Strata, open_map, read_windows
from batch_image.errors import InvalidInputError

DEFAULT_MIN_PER_CLASS = 50


@dataclass(frozen=True)
class Allocation:
    """Points per class id, and how they were decided (recorded in the sample)."""

    counts: Mapping[int, int]
    method: str  # "proportional" | "fixed"
    min_per_class: int | None = None
    requested: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "requested": self.requested,
            "min_per_class": self.min_per_class,
            "counts": {str(k): v for k, v in sorted(self.counts.items())},
        }


@dataclass(frozen=True)
class SamplePoint:
    point_id: int
    row: int
    col: int
    x: float
    y: float
    map_class: int


def proportional(strata: Strata, n: int, min_per_class: int = DEFAULT_MIN_PER_CLASS) -> Allocation:
    """``n`` points proportional to area, at least ``min_per_class`` per class (or all of a
    class's pixels when it has fewer); the rest split by largest remainders."""
    pixels = dict(zip(strata.ids, strata.counts.tolist(), strict=True))
    floor = {cid: min(min_per_class, count) for cid, count in pixels.items()}
    if sum(floor.values()) > n:
        raise InvalidInputError(
            f"{n} points cannot give each of the map's {len(pixels)} classes "
            f"{min_per_class}: ask for at least {sum(floor.values())} or lower --min-per-class",
            code="sample_too_small",
        )
    fixed: dict[int, int] = {}
    free = dict(pixels)
    while True:  # classes whose proportional share is under their floor keep the floor
        budget = n - sum(fixed.values())
        total = sum(free.values())
        under = {c for c in free if budget * free[c] / total < floor[c]}
        if not under:
            break
        for c in under:
            fixed[c] = floor[c]
            del free[c]
        if not free:
            break
    counts = dict(fixed)
    if free:
        counts |= _largest_remainder(free, n - sum(fixed.values()))
    counts = {c: min(counts[c], pixels[c]) for c in pixels}
    return Allocation(counts, "proportional", min_per_class, n)


def _largest_remainder(weights: Mapping[int, int], n: int) -> dict[int, int]:
    total = sum(weights.values())
    exact = {c: n * w / total for c, w in weights.items()}
    out = {c: int(v) for c, v in exact.items()}
    rest = n - sum(out.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - out[c]), c))[:rest]:
        out[c] += 1
    return out


def fixed(strata: Strata, requested: Mapping[int, int]) -> Allocation:
    """Exactly ``requested[c]`` points in class ``c``; every mapped class must be named."""
    pixels = dict(zip(strata.ids, strata.counts.tolist(), strict=True))
    names = {c.id: c.name for c in strata.classes}
    unknown = sorted(set(requested) - set(pixels))
    if unknown:
        raise InvalidInputError(
            f"--allocation names class(es) {unknown} that the map does not contain "
            f"(its classes: {sorted(pixels)})",
            code="bad_allocation",
        )
    missing = sorted(set(pixels) - set(requested))
    if missing:
        raise InvalidInputError(
            "--allocation must give every mapped class a count (the estimators need "
            "every stratum sampled); missing: " + ", ".join(f"{c} ({names[c]})" for c in missing),
            code="bad_allocation",
        )
    for c, k in requested.items():
        if k < 2 or k > pixels[c]:
            raise InvalidInputError(
                f"--allocation {c}={k}: a stratum needs 2 to {pixels[c]:,} points "
                f"(class {names[c]} has {pixels[c]:,} pixels)",
                code="bad_allocation",
            )
    return Allocation(dict(requested), "fixed")


def draw(path: Path, strata: Strata, allocation: Allocation, seed: int) -> list[SamplePoint]:
    """The points: random ranks within each class, found in a second pass over the map."""
    rng = np.random.default_rng(seed)
    ranks = {}
    for k, cid in enumerate(strata.ids):
        total = int(strata.counts[k])
        chosen = rng.choice(total, size=allocation.counts[cid], replace=False)
        ranks[cid] = np.sort(chosen)
    before = np.cumsum(strata.window_counts, axis=0) - strata.window_counts  # rank offsets
    picked: list[tuple[int, int, int]] = []
    with open_map(path) as src:
        for w_index, (window, classes, valid) in enumerate(read_windows(src, list(strata.windows))):
            for k, cid in enumerate(strata.ids):
                lo, count = before[w_index, k], strata.window_counts[w_index, k]
                r = ranks[cid]
                here = r[(r >= lo) & (r < lo + count)] - lo
                if not here.size:
                    continue
                flat = np.flatnonzero(valid & (classes == cid))[here]
                rows, cols = np.divmod(flat, int(window.width))
                picked += [
                    (int(window.row_off) + int(rr), int(window.col_off) + int(cc), cid)
                    for rr, cc in zip(rows, cols, strict=True)
                ]
    order = np.random.default_rng(seed + 1).permutation(len(picked))  # no class runs
    t = strata.transform
    points = []
    for point_id, i in enumerate(order, start=1):
        row, col, cid = picked[i]
        x, y = t * (col + 0.5, row + 0.5)
        points.append(SamplePoint(point_id, row, col, float(x), float(y), cid))
    return points
