"""The training images: what each one is (bands, grid) and which bands become features.

Opened once, before any label is read, so a wrong image (unreadable, not what predict
accepts, bands that do not match the first image's, a manifest band it does not have)
is refused before any pixel is sampled. Images are checked as predict checks its input
(:func:`batch_image.raster.checks.check_raster`: GeoTIFF or VRT over band GeoTIFFs, no
palette), so no model is trained that could never be run; every image after the first
has its bands bound to the first's as predict binds a file to a model
(:mod:`batch_image.model.compatibility`: by name, else by position).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from batch_image.errors import InvalidInputError
from batch_image.model.card import FeatureRecipe
from batch_image.model.compatibility import BandBinding, BandLayout, match_bands
from batch_image.raster.checks import check_raster
from batch_image.train.fetchers import Fetch
from batch_image.train.manifest import Manifest


@dataclass(frozen=True)
class TrainingImage:
    """One fetched image's header: enough for the recipe, the card and its provenance."""

    uri: str
    path: Path
    count: int
    dtype: str
    band_names: tuple[str, ...]
    width: int
    height: int
    crs: str | None
    alpha: tuple[int, ...] = ()  # alpha bands (1-based): validity, never features
    descriptions: tuple[str | None, ...] = ()
    binding: BandBinding | None = None  # its bands in the first image's order (None: as is)

    @property
    def layout(self) -> BandLayout:
        return BandLayout(self.descriptions or (None,) * self.count, self.alpha)


def sha256_file(path: Path) -> str:
    """The file's sha256, read in 1 MiB chunks (the card's training-data provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _band_names(descriptions: tuple[str | None, ...]) -> tuple[str, ...]:
    """Band descriptions, ``b<i>`` where one is missing; all ``b<i>`` if they repeat."""
    names = tuple(d if d else f"b{i}" for i, d in enumerate(descriptions, start=1))
    if len(set(names)) != len(names):
        return tuple(f"b{i}" for i in range(1, len(descriptions) + 1))
    return names


def _open_one(uri: str, path: Path) -> TrainingImage:
    """The image's header, checked as predict checks an input (named as the manifest does)."""
    info = check_raster(path, name=f"image {uri}")
    return TrainingImage(
        uri,
        path,
        info.count,
        info.dtype,
        _band_names(info.descriptions),
        info.width,
        info.height,
        info.crs,
        info.alpha,
        info.descriptions,
    )


def open_images(manifest: Manifest, fetch: Fetch) -> list[TrainingImage]:
    """Fetch and read every sample image's header; bind every image's bands to the first
    image's (one model, one feature vector layout) or refuse it saying expected vs got."""
    images = [_open_one(spec.image, fetch(spec.image)) for spec in manifest.samples]
    first = images[0]
    bound = [first]
    for image in images[1:]:
        binding = match_bands(
            image.layout,
            first.layout,
            first.layout.data,
            name=f"image {image.uri}",
            model_label=f"the first image {first.uri}",
        )
        bound.append(replace(image, binding=None if binding.identity else binding))
    return bound


def _manifest_error(message: str) -> InvalidInputError:
    return InvalidInputError(f"manifest: {message}", code="manifest_invalid")


def _band_index(band: str | int, band_names: tuple[str, ...]) -> int:
    """A manifest band (1-based index or band name) as a 1-based index."""
    count = len(band_names)
    if isinstance(band, int):
        if not 1 <= band <= count:
            raise _manifest_error(f"band {band} is outside 1..{count}")
        return band
    if band in band_names:
        return band_names.index(band) + 1
    raise _manifest_error(f"band {band!r} is not one of the image's bands {list(band_names)}")


def feature_recipe(
    manifest: Manifest, band_names: tuple[str, ...], alpha: tuple[int, ...] = ()
) -> FeatureRecipe:
    """The manifest's bands and derived features checked against the image's bands.

    Without ``bands`` every band but the alpha bands is a feature; naming an alpha
    band is refused: transparency marks nodata, it never describes the ground.
    """
    wanted = manifest.bands or [i for i in range(1, len(band_names) + 1) if i not in alpha]
    bands = [_band_index(b, band_names) for b in wanted]
    named_alpha = [band_names[b - 1] for b in bands if b in alpha]
    if named_alpha:
        raise _manifest_error(
            f"band(s) {named_alpha} are alpha bands (transparency), not data: "
            "they mark nodata and are never model features"
        )
    for nd in manifest.derived:
        for n in (nd.a, nd.b):
            if n not in band_names:
                raise _manifest_error(
                    f"derived feature {nd.name!r} names band {n!r}, not one of {list(band_names)}"
                )
    recipe = FeatureRecipe(tuple(bands), tuple(manifest.derived))
    names = recipe.names(band_names)
    if len(set(names)) != len(names):
        raise _manifest_error(f"feature names repeat: {names}")
    return recipe
