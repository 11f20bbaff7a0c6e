"""A synthetic but realistic multispectral scene with sparse training labels.

``make_sample`` writes ``scene.tif`` (multi-band, UTM 33N, 10 m pixels, tiled
256×256, nodata border and holes) and ``labels.tif`` (aligned uint8 classes,
0 = unlabelled, a few hand-drawn-like blobs per class).

How the scene is made, all vectorized and written strip by strip:

* one smooth random field per class on a coarse grid (Gaussian-filtered
  noise at two scales); the land-cover class of a pixel is the argmax of the
  bilinearly upsampled fields, which gives coherent, organic patches;
* the pixel spectrum is a soft mixture of class spectra (softmax of the same
  fields), so patch edges have mixed pixels;
* within-class variation: grassland vigour varies smoothly, cropland parcels
  each have their own growth stage (from bare-looking to lush, overlapping
  grassland), forests have texture, and the whole scene has a haze/illumination
  gradient; then per-pixel sensor noise;
* labels are blobs drawn inside patch interiors of their class, like a person
  digitizing polygons: sparse, never on nodata.

Deterministic per seed: every random draw comes from ``numpy`` generators
seeded by ``seed`` (and the strip index for per-pixel noise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch_image.train.labels import CLASSES_TAG

SAMPLE_CRS = "EPSG:32633"
SAMPLE_ORIGIN = (390000.0, 5820000.0)  # UTM 33N, near Berlin
PIXEL_SIZE = 10.0
BLOCK = 256
CHUNK = 4096  # columns generated at once: bounded memory for very wide scenes

# id, name, colour: the sample's classes (docs/contracts.md "Sample data").
SAMPLE_CLASSES: tuple[tuple[int, str, str], ...] = (
    (1, "water", "#1f78b4"),
    (2, "forest", "#1b7837"),
    (3, "grassland", "#a6d96a"),
    (4, "cropland", "#fdae61"),
    (5, "built-up", "#e31a1c"),
    (6, "bare soil", "#b08b5b"),
)

# Band name and centre wavelength (nm), Sentinel-2-like; extra bands beyond the list
# are named band<N> and placed between the known ones.
_BANDS: tuple[tuple[str, float], ...] = (
    ("blue", 490),
    ("green", 560),
    ("red", 665),
    ("nir", 842),
    ("swir1", 1610),
    ("swir2", 2190),
    ("rededge1", 705),
    ("rededge2", 740),
    ("rededge3", 783),
    ("nir08", 865),
    ("coastal", 443),
    ("watervapour", 945),
)

# Reflectance anchors (wavelength nm, reflectance) per spectrum.
_SPECTRA: dict[str, tuple[tuple[float, float], ...]] = {
    "water": (
        (443, 0.065),
        (490, 0.06),
        (560, 0.05),
        (665, 0.03),
        (705, 0.025),
        (842, 0.018),
        (1610, 0.01),
        (2190, 0.007),
    ),
    "forest": (
        (443, 0.03),
        (490, 0.032),
        (560, 0.055),
        (665, 0.032),
        (705, 0.08),
        (740, 0.2),
        (783, 0.26),
        (842, 0.28),
        (945, 0.27),
        (1610, 0.15),
        (2190, 0.075),
    ),
    "grass_green": (
        (443, 0.04),
        (490, 0.045),
        (560, 0.085),
        (665, 0.055),
        (705, 0.11),
        (740, 0.25),
        (783, 0.3),
        (842, 0.32),
        (1610, 0.23),
        (2190, 0.12),
    ),
    "grass_dry": (
        (443, 0.06),
        (490, 0.07),
        (560, 0.1),
        (665, 0.11),
        (705, 0.14),
        (740, 0.19),
        (842, 0.23),
        (1610, 0.29),
        (2190, 0.2),
    ),
    "crop_green": (
        (443, 0.035),
        (490, 0.04),
        (560, 0.085),
        (665, 0.038),
        (705, 0.12),
        (740, 0.32),
        (783, 0.4),
        (842, 0.44),
        (1610, 0.22),
        (2190, 0.11),
    ),
    "crop_bare": (
        (443, 0.07),
        (490, 0.085),
        (560, 0.115),
        (665, 0.14),
        (705, 0.16),
        (842, 0.21),
        (1610, 0.29),
        (2190, 0.24),
    ),
    "built": (
        (443, 0.11),
        (490, 0.115),
        (560, 0.125),
        (665, 0.135),
        (842, 0.17),
        (1610, 0.2),
        (2190, 0.18),
    ),
    "soil": (
        (443, 0.08),
        (490, 0.1),
        (560, 0.14),
        (665, 0.19),
        (842, 0.25),
        (1610, 0.33),
        (2190, 0.29),
    ),
}

# Relative abundance of each class (water rarer, vegetation common).
_CLASS_WEIGHT = np.array([0.7, 1.2, 1.1, 1.2, 0.8, 0.7])

_DTYPES = ("uint8", "uint16", "int16", "float32")
# Reflectance → stored value, and the nodata value, per dtype.
_SCALE = {"uint8": 500.0, "uint16": 10000.0, "int16": 10000.0, "float32": 1.0}
_NODATA = {"uint8": 0, "uint16": 0, "int16": -9999, "float32": float("nan")}
_RANGE = {"uint8": (1, 255), "uint16": (1, 65535), "int16": (1, 32767)}


@dataclass(frozen=True)
class SamplePaths:
    scene: Path
    labels: Path
    truth: Path | None = None  # every pixel's true class (0 on nodata), when asked for
    values: Path | None = None  # a continuous target (biomass) on the labelled pixels


def band_names(count: int) -> list[str]:
    """Names of the first ``count`` sample bands (blue, green, red, nir, swir1, ...)."""
    names = [n for n, _ in _BANDS[:count]]
    names += [f"band{i}" for i in range(len(names) + 1, count + 1)]
    return names


def sample_classes_json() -> str:
    return json.dumps([{"id": i, "name": n, "colour": c} for i, n, c in SAMPLE_CLASSES])


def _wavelengths(count: int) -> np.ndarray:
    known = [w for _, w in _BANDS[:count]]
    extra = np.linspace(450, 2200, max(count - len(known), 0) + 2)[1:-1]
    return np.array(known + list(extra), dtype=np.float64)


def _spectrum(name: str, wavelengths: np.ndarray) -> np.ndarray:
    xs, ys = zip(*_SPECTRA[name], strict=True)
    return np.interp(wavelengths, xs, ys).astype(np.float32)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance smooth noise on a coarse grid."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def _upsample(
    coarse: np.ndarray, factor: float, row0: int, rows: int, col0: int, cols: int
) -> np.ndarray:
    """Bilinear upsampling of ``coarse`` (..., h, w) to the full-res window given."""
    h, w = coarse.shape[-2:]
    ys = (np.arange(row0, row0 + rows) + 0.5) / factor - 0.5
    xs = (np.arange(col0, col0 + cols) + 0.5) / factor - 0.5
    y0 = np.clip(np.floor(ys).astype(np.int64), 0, h - 2)
    x0 = np.clip(np.floor(xs).astype(np.int64), 0, w - 2)
    wy = np.clip(ys - y0, 0, 1).astype(np.float32)[:, None]
    wx = np.clip(xs - x0, 0, 1).astype(np.float32)[None, :]
    top = coarse[..., y0, :]
    bottom = coarse[..., y0 + 1, :]
    rowmix = top * (1 - wy) + bottom * wy
    return rowmix[..., x0] * (1 - wx) + rowmix[..., x0 + 1] * wx


@dataclass(frozen=True)
class _Plan:
    """Everything coarse that defines the scene; full-res strips are derived from it."""

    width: int
    height: int
    factor: float
    class_fields: np.ndarray  # (6, h, w)
    vigour: np.ndarray  # (h, w), grassland greenness
    haze: np.ndarray  # (h, w), illumination / haze
    texture: np.ndarray  # (h2, w2), finer forest / urban texture
    texture_factor: float
    parcel_size: int
    parcel_stage: np.ndarray  # stage per parcel id
    parcel_angle: float
    holes: np.ndarray  # (h, w) field; hole where > holes_threshold
    holes_threshold: float
    border_left: tuple[float, float]  # nodata border width at top and bottom rows


def _plan(width: int, height: int, seed: int, nodata_fraction: float) -> _Plan:
    rng = np.random.default_rng(seed)
    # Patch scale follows the scene size (several patches across even small scenes),
    # capped at ~1.5 km for large ones.
    patch = float(np.clip(min(width, height) / 6.0, 24.0, 150.0))
    factor = patch / 4.0
    h = int(np.ceil(height / factor)) + 2
    w = int(np.ceil(width / factor)) + 2
    fields = np.stack([_smooth_field(rng, (h, w), 2.0) for _ in SAMPLE_CLASSES])
    fields += 0.35 * np.stack([_smooth_field(rng, (h, w), 0.8) for _ in SAMPLE_CLASSES])
    fields += np.log(_CLASS_WEIGHT / _CLASS_WEIGHT.mean()).astype(np.float32)[:, None, None]
    _ensure_every_class(fields, rng)
    vigour = _smooth_field(rng, (h, w), 1.5)
    haze = _smooth_field(rng, (h, w), 4.0)
    tf = 4.0
    texture = _smooth_field(rng, (int(np.ceil(height / tf)) + 2, int(np.ceil(width / tf)) + 2), 0.7)
    parcel_size = int(np.clip(patch / 3.0, 8, 60))
    stage = rng.beta(2.6, 1.0, size=4096).astype(np.float32)
    holes = _smooth_field(rng, (h, w), 1.0)
    # Share split: ~60 % a slanted border on the left edge, ~40 % holes (masked clouds).
    f = float(np.clip(nodata_fraction, 0.0, 0.95))
    border_mean = 0.6 * f * width
    slant = rng.uniform(0.3, 1.7)
    border = (border_mean * slant, border_mean * (2 - slant))
    inner = 1.0 - 0.6 * f
    hole_share = 0.0 if f == 0 else min(0.4 * f / inner, 0.99)
    threshold = float("inf") if hole_share == 0 else float(np.quantile(holes, 1 - hole_share))
    return _Plan(
        width=width,
        height=height,
        factor=factor,
        class_fields=fields,
        vigour=vigour,
        haze=haze,
        texture=texture,
        texture_factor=tf,
        parcel_size=parcel_size,
        parcel_stage=stage,
        parcel_angle=float(rng.uniform(-0.35, 0.35)),
        holes=holes,
        holes_threshold=threshold,
        border_left=border,
    )


def _ensure_every_class(fields: np.ndarray, rng: np.random.Generator) -> None:
    """Raise a bump in any class field that never wins, so all classes appear."""
    k, h, w = fields.shape
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(3):
        winners = np.bincount(fields.argmax(0).ravel(), minlength=k)
        missing = np.flatnonzero(winners < 4)
        if missing.size == 0:
            return
        for c in missing:
            others = np.delete(fields, c, axis=0).max(0)
            margin = fields[c] - others
            margin[:1, :] = margin[-1:, :] = margin[:, :1] = margin[:, -1:] = -np.inf
            cy, cx = np.unravel_index(int(np.argmax(margin + rng.uniform(0, 0.3, (h, w)))), (h, w))
            bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.5**2)).astype(np.float32)
            fields[c] += (float(-margin[cy, cx]) + 1.0) * bump


def _chunk(
    plan: _Plan,
    window: tuple[int, int, int, int],
    spectra: dict[str, np.ndarray],
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflectance (bands, rows, cols), class ids and nodata mask of one window."""
    row0, rows, col0, cols = window
    at = (row0, rows, col0, cols)
    fields = _upsample(plan.class_fields, plan.factor, *at)
    classes = (fields.argmax(0) + 1).astype(np.uint8)
    # Soft abundances: sharp softmax, so only edge pixels are really mixed.
    z = fields * 14.0
    z -= z.max(0, keepdims=True)
    abundance = np.exp(z)
    abundance /= abundance.sum(0, keepdims=True)

    vigour = 1 / (1 + np.exp(-1.6 * _upsample(plan.vigour, plan.factor, *at)))
    ys = np.arange(row0, row0 + rows, dtype=np.float32)[:, None]
    xs = np.arange(col0, col0 + cols, dtype=np.float32)[None, :]
    c, s = np.cos(plan.parcel_angle), np.sin(plan.parcel_angle)
    u = ((xs * c + ys * s) // plan.parcel_size).astype(np.int64)
    v = ((ys * c - xs * s) // (plan.parcel_size * 0.7)).astype(np.int64)
    parcel = (u * 73856093 ^ v * 19349663) % plan.parcel_stage.size
    stage = plan.parcel_stage[parcel]
    texture = _upsample(plan.texture, plan.texture_factor, *at)

    def mix(a: str, b: str, t: np.ndarray) -> np.ndarray:
        return spectra[a][:, None, None] * t + spectra[b][:, None, None] * (1 - t)

    ab = abundance
    image = (
        ab[0] * spectra["water"][:, None, None]
        + ab[1] * spectra["forest"][:, None, None] * (1 + 0.12 * texture)
        + ab[2] * mix("grass_green", "grass_dry", 0.55 + 0.45 * vigour)
        + ab[3] * mix("crop_green", "crop_bare", stage)
        + ab[4] * spectra["built"][:, None, None] * (1 + 0.15 * texture)
        + ab[5] * spectra["soil"][:, None, None] * (1 + 0.08 * texture)
    )
    haze = _upsample(plan.haze, plan.factor, *at)
    image = image * (1 + 0.04 * haze) + 0.006 * (haze + 1.5)
    rng = np.random.default_rng([seed, 7, row0, col0])
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    image = image * (1 + 0.05 * noise) + 0.006 * rng.standard_normal(image.shape, dtype=np.float32)

    holes = _upsample(plan.holes, plan.factor, *at) > plan.holes_threshold
    top, bottom = plan.border_left
    edge = top + (bottom - top) * (ys / max(plan.height - 1, 1))
    mask = holes | (xs < edge)
    return image.astype(np.float32), classes, mask


VALUES_TARGET = {"name": "biomass", "unit": "t/ha"}


def _biomass(reflectance: np.ndarray, seed: int, row0: int, col0: int) -> np.ndarray:
    """A plausible biomass (t/ha) of every pixel: grows with the greenness (NDVI of
    nir and red, or the first band's brightness with fewer bands), plus noise."""
    if reflectance.shape[0] >= 4:
        red, nir = reflectance[2], reflectance[3]
        green = np.clip((nir - red) / np.maximum(nir + red, 1e-6), 0.0, 1.0)
    else:
        green = np.clip(reflectance[0] / max(float(reflectance[0].max()), 1e-6), 0.0, 1.0)
    rng = np.random.default_rng([seed, 13, row0, col0])
    noise = rng.standard_normal(green.shape).astype(np.float32)
    return np.clip(220.0 * green**2 + 6.0 * noise, 0.0, None).astype(np.float32)


def _to_dtype(reflectance: np.ndarray, mask: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float32":
        out = np.clip(reflectance, 1e-4, None).astype(np.float32)
        out[:, mask] = np.nan
        return out
    lo, hi = _RANGE[dtype]
    out = np.clip(np.rint(reflectance * _SCALE[dtype]), lo, hi).astype(dtype)
    out[:, mask] = _NODATA[dtype]
    return out


def _draw_labels(ground: np.ndarray, seed: int, blobs_per_class: int | None) -> np.ndarray:
    """Sparse label blobs inside patch interiors of each class, never on nodata.

    ``ground`` holds the true class of every pixel, 0 on nodata.
    """
    from scipy.ndimage import binary_erosion

    rng = np.random.default_rng([seed, 11])
    height, width = ground.shape
    labels = np.zeros_like(ground)
    radius = float(np.clip(min(width, height) / 30.0, 5.0, 30.0))
    n = blobs_per_class or int(np.clip(round(width * height / 4e5), 4, 14))
    step = max(1, int(radius // 3))
    for cid, _, _ in SAMPLE_CLASSES:
        inside = ground == cid
        # Interior: far enough from the patch edge that a digitizer would trust it.
        core = binary_erosion(inside[::step, ::step], iterations=2)
        cy, cx = np.nonzero(core)
        if cy.size == 0:
            cy, cx = np.nonzero(inside[::step, ::step])
            if cy.size == 0:
                continue
        picks = rng.choice(cy.size, size=min(n, cy.size), replace=False)
        for p in picks:
            y, x = int(cy[p]) * step, int(cx[p]) * step
            a = radius * rng.uniform(0.6, 1.4)
            b = a * rng.uniform(0.45, 1.0)
            t = rng.uniform(0, np.pi)
            y0, y1 = max(0, int(y - a) - 1), min(height, int(y + a) + 2)
            x0, x1 = max(0, int(x - a) - 1), min(width, int(x + a) + 2)
            gy, gx = np.mgrid[y0:y1, x0:x1]
            dy, dx = gy - y, gx - x
            ru = (dx * np.cos(t) + dy * np.sin(t)) / a
            rv = (-dx * np.sin(t) + dy * np.cos(t)) / b
            blob = (ru**2 + rv**2) <= 1.0
            sel = blob & inside[y0:y1, x0:x1]
            labels[y0:y1, x0:x1][sel] = cid
    return labels


def make_sample(
    out_dir: Path | str,
    width: int = 2600,
    height: int = 2000,
    bands: int = 4,
    dtype: str = "uint16",
    seed: int = 0,
    nodata_fraction: float = 0.08,
    compress: str | None = None,
    blobs_per_class: int | None = None,
    truth: bool = False,
    values: bool = False,
) -> SamplePaths:
    """Write ``scene.tif`` and ``labels.tif`` into ``out_dir`` and return their paths.

    Default is ~40 MB uncompressed (4 bands, uint16, 2600 × 2000). ``compress``
    is a GDAL codec (``deflate``, ``lzw``, ``zstd``) or ``None``. ``truth`` also
    writes ``truth.tif``: the true class of every pixel, to score predictions with.
    ``values`` also writes ``values.tif``: a continuous target (biomass, t/ha, float32,
    NaN nodata) on the labelled pixels only, for training a regression.
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from batch_image.errors import InvalidInputError

    if dtype not in _DTYPES:
        raise InvalidInputError(
            f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}", code="bad_argument"
        )
    if bands < 1 or width < 16 or height < 16:
        raise InvalidInputError("need at least 1 band and 16 × 16 pixels", code="bad_argument")
    if not 0.0 <= nodata_fraction < 0.9:
        raise InvalidInputError("nodata fraction must be in [0, 0.9)", code="bad_argument")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = SamplePaths(
        scene=out / "scene.tif",
        labels=out / "labels.tif",
        truth=out / "truth.tif" if truth else None,
        values=out / "values.tif" if values else None,
    )

    plan = _plan(width, height, seed, nodata_fraction)
    wl = _wavelengths(bands)
    spectra = {name: _spectrum(name, wl) for name in _SPECTRA}
    names = band_names(bands)
    transform = Affine(PIXEL_SIZE, 0.0, SAMPLE_ORIGIN[0], 0.0, -PIXEL_SIZE, SAMPLE_ORIGIN[1])
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": dtype,
        "crs": SAMPLE_CRS,
        "transform": transform,
        "nodata": _NODATA[dtype],
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "interleave": "pixel",
        "BIGTIFF": "IF_SAFER",
    }
    if compress and compress.lower() != "none":
        profile["compress"] = compress
        profile["predictor"] = 3 if dtype == "float32" else 2

    # True class per pixel, 0 on nodata: 1 byte a pixel, what the label blobs are drawn from.
    ground = np.zeros((height, width), dtype=np.uint8)
    biomass = np.full((height, width), np.nan, np.float32) if values else None
    with rasterio.open(paths.scene, "w", **profile) as dst:
        for i, b in enumerate(names, start=1):
            dst.set_band_description(i, b)
        dst.update_tags(
            SOURCE="rasterdrop synthetic sample",
            SEED=str(seed),
            NODATA_FRACTION=str(nodata_fraction),
        )
        for row0 in range(0, height, BLOCK):
            rows = min(BLOCK, height - row0)
            for col0 in range(0, width, CHUNK):
                cols = min(CHUNK, width - col0)
                refl, cls, m = _chunk(plan, (row0, rows, col0, cols), spectra, seed)
                dst.write(_to_dtype(refl, m, dtype), window=Window(col0, row0, cols, rows))
                ground[row0 : row0 + rows, col0 : col0 + cols] = np.where(m, 0, cls)
                if biomass is not None:
                    b = _biomass(refl, seed, row0, col0)
                    biomass[row0 : row0 + rows, col0 : col0 + cols] = np.where(m, np.nan, b)

    labels = _draw_labels(ground, seed, blobs_per_class)
    label_profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "crs": SAMPLE_CRS,
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
    }
    colours = {0: (0, 0, 0, 0)}
    for cid, _, colour in SAMPLE_CLASSES:
        c = colour.lstrip("#")
        colours[cid] = (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255)
    with rasterio.open(paths.labels, "w", **label_profile) as dst:
        dst.write(labels, 1)
        dst.set_band_description(1, "class")
        dst.write_colormap(1, colours)
        dst.update_tags(**{CLASSES_TAG: sample_classes_json(), "UNLABELLED": "0"})
    if paths.values is not None and biomass is not None:
        value_profile = {**label_profile, "dtype": "float32", "nodata": float("nan")}
        with rasterio.open(paths.values, "w", **value_profile) as dst:
            dst.write(np.where(labels != 0, biomass, np.nan).astype(np.float32), 1)
            dst.set_band_description(1, "biomass (t/ha)")
            dst.update_tags(1, UNITS=VALUES_TARGET["unit"])
    if paths.truth is not None:
        with rasterio.open(paths.truth, "w", **label_profile) as dst:
            dst.write(ground, 1)
            dst.set_band_description(1, "true class")
            dst.write_colormap(1, colours)
            dst.update_tags(**{CLASSES_TAG: sample_classes_json()})
    return paths
