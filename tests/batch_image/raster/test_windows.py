"""Chunk plans cover the raster exactly once, on block boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from batch_image.raster.windows import plan_windows


@pytest.mark.parametrize(
    ("width", "height", "block", "target"),
    [
        (2600, 2000, (256, 256), 1 << 18),
        (45, 37, (16, 16), 300),
        (100_000, 300, (512, 512), 1 << 18),  # very wide: cut into columns of blocks
        (1000, 999, (1, 1000), 50_000),  # striped, one row per strip
        (7, 5, (256, 256), 1 << 18),  # smaller than one block
    ],
)
def test_windows_cover_raster_exactly_once(width, height, block, target):
    windows = plan_windows(width, height, block, target)
    hits = np.zeros((height, width), np.uint8)
    for w in windows:
        hits[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
        # aligned to blocks: offsets are multiples of the block size
        assert w.row_off % min(block[0], height) == 0
        assert w.col_off % min(block[1], width) == 0
    assert (hits == 1).all()


def test_windows_follow_target_size():
    windows = plan_windows(2600, 2000, (256, 256), 1 << 18)
    sizes = {int(w.width * w.height) for w in windows[:-1]}
    assert max(sizes) <= 1 << 18
    assert windows[0].width == 1024 and windows[0].height == 256
