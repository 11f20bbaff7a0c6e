"""Chunk plan: windows aligned to the raster's internal blocks."""

from __future__ import annotations

from rasterio.windows import Window

# ~64k pixels (one 256 × 256 tile): a forest's per-call temporaries (n × classes
# float64 per tree, per thread) stay a few MB, so peak memory is the model plus the
# libraries; calls are still long enough that per-call overhead is noise (measured,
# see README "Performance").
DEFAULT_TARGET_PIXELS = 1 << 16


def plan_windows(
    width: int,
    height: int,
    block_shape: tuple[int, int],
    target_pixels: int = DEFAULT_TARGET_PIXELS,
) -> list[Window]:
    """Cover the raster with windows of about ``target_pixels``, on block boundaries.

    Windows span whole rows of blocks when a row fits in the target (long
    contiguous reads, few model calls); wider rasters are cut into columns of
    whole blocks. Edge windows are clipped to the raster, so sizes that are not
    multiples of the block size are covered exactly once.
    """
    bh, bw = (max(1, int(block_shape[0])), max(1, int(block_shape[1])))
    bw = min(bw, width)
    bh = min(bh, height)
    if width * bh <= target_pixels:
        cols = width
        rows = max(bh, (target_pixels // width) // bh * bh)
    else:
        rows = bh
        cols = max(bw, (target_pixels // bh) // bw * bw)
    windows = []
    for row in range(0, height, rows):
        for col in range(0, width, cols):
            windows.append(Window(col, row, min(cols, width - col), min(rows, height - row)))
    return windows
