"""(c) The peer library: pyspatialml's ``Raster.predict`` on the same file and model.

    python -m bench.pyspatialml_script INPUT.tif MODEL_DIR OUT_DIR

pyspatialml predicts block by block (the file's own blocks), every pixel
(nodata filled with 0 and masked afterwards), one ``predict`` call per block
with the estimator's own threads; it writes the class map only (no confidence).
The model's feature recipe is applied by a thin wrapper estimator.

pyspatialml (0.21, the newest release that installs beside NumPy 2; 0.22 pins
numpy<2) still calls ``np.find_common_type``, removed in NumPy 2.0: every
``Raster`` fails with it. :func:`numpy_compat` puts back an equivalent for the
dtypes involved (``np.result_type``), and the bench notes that it did.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from batch_image.model.card import ModelCard, load_model
from batch_image.model.features import compute_features


class WithFeatures:
    """``predict`` on raw band values through the model card's feature recipe."""

    def __init__(self, estimator: Any, card: ModelCard) -> None:
        self.estimator = estimator
        self.card = card

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        features = compute_features(np.asarray(pixels), self.card.features, self.card.band_names)
        return self.estimator.predict(features)


def numpy_compat() -> bool:
    """Restore ``np.find_common_type`` for pyspatialml; True when it was missing."""
    if hasattr(np, "find_common_type"):
        return False

    def find_common_type(array_types: list, scalar_types: list) -> np.dtype:
        return np.result_type(*array_types, *scalar_types)

    np.find_common_type = find_common_type  # type: ignore[attr-defined]
    return True


def main(input_path: str, model_dir: str, out_dir: str) -> None:
    numpy_compat()
    from pyspatialml import Raster

    estimator, card = load_model(Path(model_dir))
    if hasattr(estimator, "n_jobs"):
        estimator.n_jobs = -1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stack = Raster([input_path])
    result = stack.predict(
        WithFeatures(estimator, card),
        file_path=str(out / "classes.tif"),
        dtype="uint8",
        nodata=255,
        compress="deflate",
    )
    result.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
