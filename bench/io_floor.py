"""(e) The I/O floor: read the raster and write rasterdrop's two outputs, nothing else.

    python -m bench.io_floor INPUT.tif OUT_DIR

Reads every window of the engine's plan and writes two single-band uint8
rasters of the same size (the class and confidence maps), deflate-compressed,
tiled. Imports are not timed; prints ``{"wall_s": ...}`` as its last line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import rasterio

from batch_image.raster.windows import plan_windows


def main(input_path: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with rasterio.open(input_path) as src:
        profile = {
            "driver": "GTiff",
            "width": src.width,
            "height": src.height,
            "count": 1,
            "dtype": "uint8",
            "crs": src.crs,
            "transform": src.transform,
            "nodata": 255,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "BIGTIFF": "IF_SAFER",
        }
        windows = plan_windows(src.width, src.height, src.block_shapes[0])
        with (
            rasterio.open(out / "classes.tif", "w", **profile) as a,
            rasterio.open(out / "confidence.tif", "w", **profile) as b,
        ):
            for window in windows:
                block = src.read(window=window)
                derived = (block[0] % 7).astype(np.uint8)  # something to compress, cheaply
                a.write(derived, 1, window=window)
                b.write(derived, 1, window=window)
    print(json.dumps({"wall_s": time.perf_counter() - start}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
