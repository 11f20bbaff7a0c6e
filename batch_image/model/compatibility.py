"""Whether a raster can be read by a model, and which of its bands feed which model band.

The one band rule, for predict and for every training image after the first:

* alpha bands are never data (they mark nodata, :mod:`batch_image.raster.validity`),
  on either side: an RGBA orthomosaic runs a model trained on RGB, and an RGB file
  one trained on RGBA;
* when both sides name their bands (the model card's band names, the file's band
  descriptions), bands are matched by name, case-insensitively: a file that stores
  them in another order is read in the model's order, and one whose names disagree
  or lack a band the model reads is refused (exit 2) saying expected vs got;
* when either side has no names (``b1``, ``b2`` … in the card, no descriptions in the
  file), bands are matched by position, and the data band counts must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch_image.errors import InvalidInputError
from batch_image.model.card import ModelCard
from batch_image.raster.checks import RasterInfo

BY_NAME = "name"
BY_POSITION = "position"


@dataclass(frozen=True)
class BandBinding:
    """For each band of the model's layout (1-based, in order) the file's band that holds
    it (1-based), or 0 where the model never reads that band (an alpha band, an unused
    one the file does not have)."""

    sources: tuple[int, ...]
    by: str  # BY_NAME | BY_POSITION

    @property
    def identity(self) -> bool:
        return self.sources == tuple(range(1, len(self.sources) + 1))

    def arrange(self, data: np.ndarray) -> np.ndarray:
        """``(file bands, h, w)`` → ``(model bands, h, w)``; bands never read are zeros."""
        if self.identity and data.shape[0] == len(self.sources):
            return data
        out = np.zeros((len(self.sources), *data.shape[1:]), dtype=data.dtype)
        for j, source in enumerate(self.sources):
            if source:
                out[j] = data[source - 1]
        return out


@dataclass(frozen=True)
class BandLayout:
    """One side of the match: band names (or None where a band has none) and alpha bands."""

    names: tuple[str | None, ...]
    alpha: tuple[int, ...] = ()

    @property
    def data(self) -> tuple[int, ...]:
        return tuple(i for i in range(1, len(self.names) + 1) if i not in self.alpha)

    def named(self) -> bool:
        return any(self.names[i - 1] for i in self.data)

    def shown(self) -> list[str]:
        return [self.names[i - 1] or f"(band {i} unnamed)" for i in self.data]


def _names(layout: BandLayout) -> list[str]:
    return [layout.names[i - 1] or f"band {i}" for i in layout.data]


def _key(name: str | None) -> str:
    return (name or "").strip().casefold()


def match_bands(
    file: BandLayout,
    model: BandLayout,
    needed: tuple[int, ...],
    *,
    name: str,
    model_label: str,
    model_named: bool = True,
) -> BandBinding:
    """The binding of ``model``'s bands to ``file``'s (see the module docstring)."""
    sources = [0] * len(model.names)
    if model_named and model.named() and file.named():
        index: dict[str, list[int]] = {}
        for i in file.data:
            index.setdefault(_key(file.names[i - 1]), []).append(i)
        missing, repeated = [], []
        for b in needed:
            hits = index.get(_key(model.names[b - 1]), [])
            if len(hits) == 1:
                sources[b - 1] = hits[0]
            else:
                (missing if not hits else repeated).append(model.names[b - 1])
        if missing or repeated:
            raise _names_mismatch(file, model, needed, name, model_label, missing, repeated)
        return BandBinding(tuple(sources), BY_NAME)
    if len(file.data) != len(model.data) and _same_layout(file, model):
        # a card from before alpha bands were recorded, for a file laid out as it was
        return BandBinding(tuple(range(1, len(model.names) + 1)), BY_POSITION)
    if len(file.data) != len(model.data):
        raise InvalidInputError(
            f"{name} has {len(file.data)} data band(s){' plus alpha' if file.alpha else ''}; "
            f"{model_label} expects {len(model.data)} ({', '.join(_names(model))}): upload "
            "a file with the bands the model was trained on",
            code="band_count_mismatch",
            expected=len(model.data),
            got=len(file.data),
        )
    for mine, theirs in zip(model.data, file.data, strict=True):
        sources[mine - 1] = theirs
    return BandBinding(tuple(sources), BY_POSITION)


def _same_layout(file: BandLayout, model: BandLayout) -> bool:
    """Same band count and no alpha recorded for the model (a card written before alpha
    bands were recorded): read every band by position, as such cards always were."""
    return len(file.names) == len(model.names) and not model.alpha


def _names_mismatch(
    file: BandLayout,
    model: BandLayout,
    needed: tuple[int, ...],
    name: str,
    model_label: str,
    missing: list[str | None],
    repeated: list[str | None],
) -> InvalidInputError:
    expected = [model.names[b - 1] for b in needed]
    got = file.shown()
    problem = f"no band named {missing}" if missing else f"more than one band named {repeated}"
    return InvalidInputError(
        f"{name}: band names do not match {model_label}: expected bands {expected}, got "
        f"{got} ({problem}). Set the file's band descriptions to the expected names "
        "(rio edit-info FILE --bidx N --description NAME), or use a file with those bands",
        code="band_names_mismatch",
        expected=expected,
        got=got,
    )


def bind_bands(info: RasterInfo, card: ModelCard, name: str) -> BandBinding:
    """Dtype must be the model's; then the band rule above, for ``card``'s bands."""
    if np.dtype(info.dtype) != np.dtype(card.dtype):
        raise InvalidInputError(
            f"{name} is {info.dtype}; model {card.name} expects {card.dtype}: convert it "
            f"(gdal_translate -ot) or use a model trained on {info.dtype} data",
            code="dtype_mismatch",
            expected=card.dtype,
            got=info.dtype,
        )
    descriptions = info.descriptions or (None,) * info.count
    return match_bands(
        BandLayout(tuple(descriptions), info.alpha),
        BandLayout(card.band_names, card.alpha),
        card.needed_bands,
        name=name,
        model_label=f"model {card.name}",
        model_named=card.names_given,
    )


def check_compatible(info: RasterInfo, card: ModelCard, name: str) -> BandBinding:
    """Whether ``card``'s model can read the raster ``info`` describes; its band binding."""
    return bind_bands(info, card, name)
