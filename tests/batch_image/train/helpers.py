"""Helpers shared by the train tests (small sample scenes, label edits)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from batch_image.model.card import ModelCard
from batch_image.model.features import compute_features
from batch_image.synthetic.scene import SamplePaths, make_sample


def small_sample(directory: Path, width: int = 600, height: int = 400, seed: int = 5, **kw):
    return make_sample(directory, width=width, height=height, seed=seed, **kw)


def checkerboard(shape: tuple[int, int], cell: int) -> np.ndarray:
    rows, cols = np.indices(shape)
    return ((rows // cell + cols // cell) % 2) == 0


def write_like(template: Path, target: Path, data: np.ndarray, **changes) -> Path:
    """Write ``data`` (2-D) with ``template``'s profile and tags, plus ``changes``."""
    with rasterio.open(template) as src:
        profile = src.profile
        tags = src.tags()
        try:
            cmap = src.colormap(1)
        except ValueError:
            cmap = None
    profile.update(changes)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**tags)
        if cmap is not None and profile["dtype"] == "uint8":
            dst.write_colormap(1, cmap)
    return target


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def predict_pixels(estimator: Any, card: ModelCard, pixels: np.ndarray) -> np.ndarray:
    """Class ids for raw pixels ``(n, bands)`` through the card's feature recipe."""
    return estimator.predict(compute_features(pixels, card.features, card.band_names))


__all__ = ["SamplePaths", "checkerboard", "predict_pixels", "read", "small_sample", "write_like"]
