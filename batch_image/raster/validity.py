"""Which pixels hold data: the one rule training and prediction share.

A pixel is valid when, in every data band, it is not the dataset's nodata value
and is finite (float bands), and when GDAL's per-dataset mask says so: an
internal or ``.msk`` sidecar mask, or an alpha band (0 = transparent = nodata).
Alpha bands are never data bands: they do not take part in the nodata test and
are never model features (:func:`data_bands`).

Nothing else in the package decides this (``tests/batch_image/raster/
test_validity.py`` checks no other module compares against nodata or reads a
dataset mask), so a masked drone orthomosaic is nodata in training samples, in
the predicted classes, in every count and every area alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.enums import ColorInterp, MaskFlags


def data_bands(src: Any) -> tuple[int, ...]:
    """1-based indexes of the bands that hold data (every band but alpha bands)."""
    return tuple(i for i, ci in enumerate(src.colorinterp, start=1) if ci != ColorInterp.alpha)


def alpha_bands(src: Any) -> tuple[int, ...]:
    return tuple(i for i, ci in enumerate(src.colorinterp, start=1) if ci == ColorInterp.alpha)


def pixel_validity(
    data: np.ndarray,
    nodata: float | None,
    *,
    alpha: tuple[int, ...] = (),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """``(h, w)`` bool for ``data`` of shape ``(bands, h, w)``.

    ``alpha`` are 1-based band indexes excluded from the value tests; ``mask`` is
    GDAL's per-dataset mask (0 = nodata) for the same pixels, when there is one.
    """
    keep = [i for i in range(data.shape[0]) if i + 1 not in alpha]
    values = data[keep] if len(keep) != data.shape[0] else data
    valid = np.ones(data.shape[1:], dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= (values != np.asarray(nodata, dtype=values.dtype)).all(axis=0)
    if np.issubdtype(values.dtype, np.floating):
        valid &= np.isfinite(values).all(axis=0)
    if mask is not None:
        valid &= mask > 0
    return valid


@dataclass(frozen=True)
class ValidityRule:
    """The rule as one open dataset states it, read once per dataset."""

    nodata: float | None
    alpha: tuple[int, ...]
    has_mask: bool  # a per-dataset mask (internal, .msk sidecar) or an alpha band

    @classmethod
    def of(cls, src: Any) -> ValidityRule:
        flags = src.mask_flag_enums[0] if src.count else ()
        return cls(src.nodata, alpha_bands(src), MaskFlags.per_dataset in flags)

    def mask(self, src: Any, data: np.ndarray, window: Any = None) -> np.ndarray:
        """Valid pixels of ``data``, which ``src.read(window=window)`` returned."""
        dataset_mask = src.dataset_mask(window=window) if self.has_mask else None
        return pixel_validity(data, self.nodata, alpha=self.alpha, mask=dataset_mask)
