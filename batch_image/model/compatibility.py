"""Whether a raster can be read by a model: its header against the model card."""

from __future__ import annotations

import numpy as np

from batch_image.errors import InvalidInputError
from batch_image.model.card import ModelCard
from batch_image.raster.checks import RasterInfo


def check_compatible(info: RasterInfo, card: ModelCard, name: str) -> None:
    """Band count and dtype must be what the model was trained on."""
    if info.count != card.band_count:
        raise InvalidInputError(
            f"{name} has {info.count} band(s); model {card.name} expects {card.band_count} "
            f"({', '.join(card.band_names)})",
            code="band_count_mismatch",
            expected=card.band_count,
            got=info.count,
        )
    if np.dtype(info.dtype) != np.dtype(card.dtype):
        raise InvalidInputError(
            f"{name} is {info.dtype}; model {card.name} expects {card.dtype}",
            code="dtype_mismatch",
            expected=card.dtype,
            got=info.dtype,
        )
