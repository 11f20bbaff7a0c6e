"""Feature recipe: from raw pixels ``(n, bands)`` to the model's ``(n, features)``.

The same function runs at training and at predict time, so derived features
(normalized differences such as NDVI) are identical in both.
"""

from __future__ import annotations

import numpy as np

from batch_image.model.card import FeatureRecipe


def compute_features(
    pixels: np.ndarray, recipe: FeatureRecipe, band_names: tuple[str, ...]
) -> np.ndarray:
    """Features as C-contiguous float32 (what scikit-learn's trees use internally).

    ``pixels`` is ``(n, band_count)`` in the raster's band order.
    """
    n = pixels.shape[0]
    width = len(recipe.bands) + len(recipe.normalized_differences)
    out = np.empty((n, width), dtype=np.float32)
    for j, band in enumerate(recipe.bands):
        out[:, j] = pixels[:, band - 1]
    col = len(recipe.bands)
    index = {name: i for i, name in enumerate(band_names)}
    for nd in recipe.normalized_differences:
        a = pixels[:, index[nd.a]].astype(np.float32)
        b = pixels[:, index[nd.b]].astype(np.float32)
        total = a + b
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total != 0, (a - b) / total, np.float32(0))
        out[:, col] = ratio
        col += 1
    return out
