"""Do the 95 % intervals of ``assess`` cover the true areas 95 % of the time?

On the sample scene (``python -m batch_image sample --truth``) every pixel's true class
is known (``truth.tif``), so the true area of each class inside the map is known too.
Repeatedly: draw a stratified sample of the predicted map with the same design as
``accuracy-sample`` (:mod:`batch_image.accuracy.design`), label every point from
``truth.tif`` (a perfect labeller), estimate with Olofsson's estimators, and count how
often each class's interval covers its true area. The pixel counts' error is reported
beside, to show what the assessment corrects.

``python -m bench.accuracy_coverage CLASSES.tif TRUTH.tif [--n 300] [--reps 200]``
prints a JSON report. The tests run it on a small scene with a loose bound.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from batch_image.accuracy import design
from batch_image.accuracy.estimators import stratified_estimates
from batch_image.accuracy.maps import read_strata


def true_areas(map_path: Path, truth_path: Path, ids: tuple[int, ...]) -> np.ndarray:
    """Pixels of each class id in ``truth.tif`` where the map has a class."""
    with rasterio.open(map_path) as m, rasterio.open(truth_path) as t:
        classes, truth = m.read(1), t.read(1)
    valid = classes != 255
    return np.array([np.count_nonzero(valid & (truth == c)) for c in ids], dtype=float)


def coverage(
    map_path: Path, truth_path: Path, *, n: int = 300, reps: int = 200, seed: int = 0,
    min_per_class: int = 30,
) -> dict[str, Any]:  # fmt: skip
    strata = read_strata(map_path)
    ids = strata.ids
    with rasterio.open(truth_path) as t:
        truth = t.read(1)
    true = true_areas(map_path, truth_path, ids)
    mapped = strata.counts.astype(float)
    allocation = design.proportional(strata, n, min_per_class)
    index = {c: k for k, c in enumerate(ids)}
    covered = np.zeros(len(ids), dtype=int)
    covered_oa = 0
    widths = np.zeros(len(ids))
    with rasterio.open(map_path) as m:
        classes = m.read(1)
    valid = classes != 255
    true_oa = float(np.count_nonzero(valid & (classes == truth)) / np.count_nonzero(valid))
    for rep in range(reps):
        points = design.draw(map_path, strata, allocation, seed + 1000 * rep)
        counts = np.zeros((len(ids), len(ids)), dtype=np.int64)
        for p in points:
            ref = int(truth[p.row, p.col])
            counts[index[p.map_class], index[ref]] += 1  # every true class is a map class here
        est = stratified_estimates(counts, mapped)
        for k, a in enumerate(est.areas):
            lo, hi = a.interval
            covered[k] += lo <= true[k] <= hi
            widths[k] += a.half_width
        lo, hi = est.overall.interval
        covered_oa += lo <= true_oa <= hi
    names = {c.id: c.name for c in strata.classes}
    per_class = {
        names[c]: {
            "true_pixels": int(true[k]),
            "mapped_pixels": int(mapped[k]),
            "pixel_count_error": round(float((mapped[k] - true[k]) / true[k]), 4),
            "coverage": round(covered[k] / reps, 4),
            "mean_half_width_pixels": round(widths[k] / reps, 1),
        }
        for k, c in enumerate(ids)
    }
    return {
        "n": n,
        "reps": reps,
        "allocation": allocation.to_dict(),
        "coverage_all_classes": round(covered.sum() / (reps * len(ids)), 4),
        "coverage_overall_accuracy": round(covered_oa / reps, 4),
        "true_overall_accuracy": round(true_oa, 4),
        "classes": per_class,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classes", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = coverage(args.classes, args.truth, n=args.n, reps=args.reps, seed=args.seed)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
