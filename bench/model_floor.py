"""(d) The model floor: ``predict_proba`` on the valid pixels, already in memory, all cores.

A regression model's floor is its ``predict``; a forest regressor's, what its outputs
need at the least: every tree's predictions, their mean and standard deviation, the rows
split over all cores (the trees release the GIL).

    python -m bench.model_floor INPUT.tif MODEL_DIR [--max-rows N]

Loading the model and the pixels is not timed; the one ``predict_proba`` call
is. Prints ``{"wall_s": ..., "rows": ..., "timed_rows": ...}`` as its last line.
With ``--max-rows`` only an evenly strided subset of that many rows is
predicted and the time scaled to all rows (tree ensembles cost the same per
row), for workloads too large to time whole within the bench budget.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from batch_image.model.card import load_model
from batch_image.model.features import compute_features
from batch_image.raster.validity import ValidityRule


def forest_floor(forest: Any, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the trees' predictions, rows split over the cores."""
    x = np.asarray(features, dtype=np.float32)
    parts = np.array_split(np.arange(x.shape[0]), os.cpu_count() or 1)

    def one(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        trees = np.stack([t.predict(x[rows], check_input=False) for t in forest.estimators_])
        return trees.mean(axis=0), trees.std(axis=0)

    with ThreadPoolExecutor(len(parts)) as pool:
        done = list(pool.map(one, parts))
    return np.concatenate([m for m, _ in done]), np.concatenate([s for _, s in done])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("model")
    parser.add_argument("--max-rows", type=int, default=0)
    args = parser.parse_args()
    estimator, card = load_model(Path(args.model))
    if hasattr(estimator, "n_jobs"):
        estimator.n_jobs = -1
    with rasterio.open(args.input) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data).reshape(-1)
    pixels = data.reshape(data.shape[0], -1)[:, valid].T
    del data
    features = compute_features(pixels, card.features, card.band_names)
    del pixels
    rows = features.shape[0]
    if args.max_rows and rows > args.max_rows:
        step = -(-rows // args.max_rows)
        features = np.ascontiguousarray(features[::step])
    start = time.perf_counter()
    if not card.is_regression:
        estimator.predict_proba(features)
    elif hasattr(estimator, "estimators_"):
        forest_floor(estimator, features)
    else:
        estimator.predict(features)
    seconds = time.perf_counter() - start
    scaled = seconds * rows / max(1, features.shape[0])
    print(json.dumps({"wall_s": scaled, "rows": rows, "timed_rows": int(features.shape[0])}))


if __name__ == "__main__":
    main()
