"""(b) The plain script users write today: read it all, reshape, predict, write.

    python -m bench.plain_script INPUT.tif MODEL_DIR OUT_DIR

Reads the whole raster into memory, keeps the valid pixels, calls ``predict``
and ``predict_proba`` (class map and confidence), and writes two GeoTIFFs.
The model is loaded the same safe way rasterdrop loads it (skops, trusted types).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio

from batch_image.model.card import load_model
from batch_image.model.features import compute_features


def main(input_path: str, model_dir: str, out_dir: str) -> None:
    estimator, card = load_model(Path(model_dir))
    if hasattr(estimator, "n_jobs"):
        estimator.n_jobs = -1
    with rasterio.open(input_path) as src:
        data = src.read()
        profile = src.profile
        nodata = src.nodata
    bands, height, width = data.shape
    pixels = data.reshape(bands, -1).T
    valid = np.ones(pixels.shape[0], dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= (pixels != nodata).all(axis=1)
    if pixels.dtype.kind == "f":
        valid &= np.isfinite(pixels).all(axis=1)
    features = compute_features(pixels[valid], card.features, card.band_names)
    labels = estimator.predict(features)
    proba = estimator.predict_proba(features)
    classes = np.full(height * width, 255, dtype=np.uint8)
    classes[valid] = labels
    confidence = np.full(height * width, 255, dtype=np.uint8)
    confidence[valid] = np.rint(proba.max(axis=1) * 100).astype(np.uint8)
    profile.update(count=1, dtype="uint8", nodata=255, compress="deflate")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, array in (("classes.tif", classes), ("confidence.tif", confidence)):
        with rasterio.open(out / name, "w", **profile) as dst:
            dst.write(array.reshape(1, height, width))


if __name__ == "__main__":
    main(*sys.argv[1:4])
