"""(c) The peer library: pyspatialml's ``Raster.predict`` on the same file and model.

    python -m bench.pyspatialml_script INPUT.tif MODEL_DIR OUT_DIR

pyspatialml predicts block by block (the file's own blocks), every pixel
(nodata filled with 0 and masked afterwards), one ``predict`` call per block
with the estimator's own threads; it writes the class map only (no confidence).
The model's feature recipe is applied by a thin wrapper estimator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from batch_image.features import compute_features
from batch_image.modelcard import ModelCard, load_model


class WithFeatures:
    """``predict`` on raw band values through the model card's feature recipe."""

    def __init__(self, estimator: Any, card: ModelCard) -> None:
        self.estimator = estimator
        self.card = card

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        features = compute_features(np.asarray(pixels), self.card.features, self.card.band_names)
        return self.estimator.predict(features)


def main(input_path: str, model_dir: str, out_dir: str) -> None:
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
