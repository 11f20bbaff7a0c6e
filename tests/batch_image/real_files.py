"""Files shaped like what drone software, QGIS and GDAL write, and the truth about them.

Each writer returns the file and what is true of it, independently of rasterdrop's own
rules: the pixels a model must see (in the model's band order) and which pixels hold
data (``valid``). The tests predict the same pixels with ``model.predict`` and compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.rpc import RPC
from rasterio.transform import from_origin
from sklearn.ensemble import RandomForestClassifier

from batch_image.model.card import FeatureRecipe, ModelCard, load_model, save_model
from batch_image.model.features import compute_features
from tests.conftest import CLASSES, class_pattern, synth_pixels

H, W = 37, 45
CRS = "EPSG:32633"
TRANSFORM = from_origin(500000.0, 5400000.0, 10.0, 10.0)
RGBN = ("red", "green", "blue", "nir")


@dataclass(frozen=True)
class Truth:
    """What the file holds, told by its writer: pixels in the model's band order."""

    data: np.ndarray  # (model bands, H, W)
    valid: np.ndarray  # (H, W) bool
    classes: np.ndarray  # (H, W) class ids the spectra were drawn from


def collar() -> np.ndarray:
    """An orthomosaic's footprint: a slanted collar of no-data round the flight area."""
    yy, xx = np.mgrid[0:H, 0:W]
    inside = (xx > 3 + yy // 4) & (xx < W - 2 - (H - yy) // 5) & (yy > 2) & (yy < H - 3)
    inside[18:22, 12:19] = False  # a hole (a roof the stitcher gave up on)
    return inside


def spectra(bands: int, dtype: str = "uint8", seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    truth = class_pattern(H, W)
    data = synth_pixels(truth, bands, dtype, np.random.default_rng(seed))
    data[data == 0] = 1  # only masks and alpha mark no-data, never a value
    return data, truth


def profile(count: int, dtype: str = "uint8", **extra: object) -> dict:
    return {
        "driver": "GTiff",
        "width": W,
        "height": H,
        "count": count,
        "dtype": dtype,
        "crs": CRS,
        "transform": TRANSFORM,
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
        **extra,
    }


def jpeg_ycbcr_masked(tmp: Path) -> tuple[Path, Truth]:
    """RGB JPEG-in-TIFF, YCbCr, with an internal mask: the usual drone/ODM export."""
    rgb, truth = spectra(3)
    path = tmp / "ortho_jpeg.tif"
    prof = profile(3, compress="JPEG", photometric="YCBCR", jpeg_quality=90)
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(path, "w", **prof) as dst,
    ):
        dst.write(rgb)
        dst.write_mask(collar().astype(np.uint8) * 255)
    assert not Path(str(path) + ".msk").exists()
    with rasterio.open(path) as src:  # JPEG is lossy: the truth is what decodes
        decoded = src.read()
    return path, Truth(decoded, collar(), truth)


def rgba(tmp: Path) -> tuple[Path, Truth]:
    """RGBA orthomosaic: unassociated alpha 0 outside the flight area, no nodata value."""
    rgb, truth = spectra(3, seed=2)
    path = tmp / "ortho_rgba.tif"
    alpha = collar().astype(np.uint8) * 255
    with rasterio.open(path, "w", **profile(4, photometric="RGB", alpha="YES")) as dst:
        dst.write(np.concatenate([rgb, alpha[None]]))
    return path, Truth(rgb, collar(), truth)


def msk_sidecar(tmp: Path) -> tuple[Path, Truth]:
    """3 bands and a ``.msk`` sidecar (what GDAL writes without GDAL_TIFF_INTERNAL_MASK)."""
    rgb, truth = spectra(3, seed=3)
    path = tmp / "sidecar.tif"
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False),
        rasterio.open(path, "w", **profile(3)) as dst,
    ):
        dst.write(rgb)
        dst.write_mask(collar().astype(np.uint8) * 255)
    assert Path(str(path) + ".msk").exists()
    return path, Truth(rgb, collar(), truth)


def described(
    tmp: Path, stored: tuple[str, ...], names: tuple[str, ...] | None = None
) -> tuple[Path, Truth]:
    """4 uint16 bands stored in the order ``stored`` (of RGBN), described as ``names``
    (default: ``stored``); the truth is in RGBN order."""
    data, truth = spectra(4, "uint16", seed=4)  # in RGBN order
    path = tmp / f"described_{'_'.join(names or stored)}.tif"
    with rasterio.open(path, "w", **profile(4, "uint16", photometric="MINISBLACK")) as dst:
        for i, band in enumerate(stored, start=1):
            dst.write(data[RGBN.index(band)], i)
            dst.set_band_description(i, (names or stored)[i - 1])
    return path, Truth(data, np.ones((H, W), bool), truth)


def vrt_xml(
    sources: list[str],
    descriptions: list[str | None],
    dtype: str = "UInt16",
    relative: str = "1",
    nodata: float | None = None,
    size: tuple[int, int] = (W, H),
) -> str:
    """What ``gdalbuildvrt -separate stack.vrt B*.tif`` writes (one band per file)."""
    w, h = size
    bands = "".join(
        f"""  <VRTRasterBand dataType="{dtype}" band="{i}">
{f"    <Description>{name}</Description>" if name else ""}
{f"    <NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""}
    <ColorInterp>Gray</ColorInterp>
    <SimpleSource>
      <SourceFilename relativeToVRT="{relative}">{source}</SourceFilename>
      <SourceBand>1</SourceBand>
      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="{dtype}"
        BlockXSize="16" BlockYSize="16" />
      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />
      <DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />
    </SimpleSource>
  </VRTRasterBand>
"""
        for i, (source, name) in enumerate(zip(sources, descriptions, strict=True), start=1)
    )
    t = TRANSFORM
    return f"""<VRTDataset rasterXSize="{w}" rasterYSize="{h}">
  <SRS dataAxisToSRSAxisMapping="1,2">{CRS}</SRS>
  <GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>
{bands}</VRTDataset>
"""


def band_files(tmp: Path, folder: str = "stack.bands") -> tuple[list[Path], Truth]:
    """One single-band GeoTIFF per band (a Landsat-style delivery), RGBN."""
    data, truth = spectra(4, "uint16", seed=5)
    (tmp / folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(RGBN)):
        path = tmp / folder / f"scene_B{i + 1}.tif"
        with rasterio.open(path, "w", **profile(1, "uint16")) as dst:
            dst.write(data[i], 1)
        paths.append(path)
    return paths, Truth(data, np.ones((H, W), bool), truth)


def vrt_stack(tmp: Path, *, absolute: bool = False) -> tuple[Path, Truth]:
    paths, truth = band_files(tmp)
    # absolute: as built on the user's laptop, paths that mean nothing to the service
    sources = [f"/home/me/landsat/{p.name}" if absolute else f"stack.bands/{p.name}" for p in paths]
    path = tmp / ("absolute.vrt" if absolute else "stack.vrt")
    path.write_text(vrt_xml(sources, list(RGBN), relative="0" if absolute else "1"))
    return path, truth


GCPS = [
    GroundControlPoint(0, 0, 500000.0, 5400000.0),
    GroundControlPoint(0, W, 500452.0, 5400011.0),
    GroundControlPoint(H, 0, 500007.0, 5399628.0),
    GroundControlPoint(H, W, 500465.0, 5399641.0),
    GroundControlPoint(H // 2, W // 2, 500230.0, 5399818.0),
]


def gcp_only(tmp: Path) -> tuple[Path, Truth]:
    """Located by ground control points only (a scanned map, a raw satellite scene)."""
    rgb, truth = spectra(3, seed=6)
    path = tmp / "gcps.tif"
    prof = profile(3)
    del prof["transform"], prof["crs"]
    with rasterio.open(path, "w", **prof, gcps=GCPS, crs=CRS) as dst:
        dst.write(rgb)
    return path, Truth(rgb, np.ones((H, W), bool), truth)


RPCS = RPC(
    height_off=100, height_scale=100, lat_off=48.7, lat_scale=0.01,
    line_den_coeff=[1] + [0] * 19, line_num_coeff=[0, 0, -1] + [0] * 17,
    line_off=H / 2, line_scale=H / 2, long_off=15.0, long_scale=0.01,
    samp_den_coeff=[1] + [0] * 19, samp_num_coeff=[0, 1] + [0] * 18,
    samp_off=W / 2, samp_scale=W / 2,
)  # fmt: skip


def rpc_only(tmp: Path) -> tuple[Path, Truth]:
    rgb, truth = spectra(3, seed=7)
    path = tmp / "rpcs.tif"
    prof = profile(3)
    del prof["transform"], prof["crs"]
    with rasterio.open(path, "w", **prof, rpcs=RPCS) as dst:
        dst.write(rgb)
    return path, Truth(rgb, np.ones((H, W), bool), truth)


def palette(tmp: Path) -> Path:
    """A paletted (indexed-colour) 1-band image, as a GIF→TIFF or a styled export."""
    path = tmp / "paletted.tif"
    with rasterio.open(path, "w", **profile(1)) as dst:
        dst.write(class_pattern(H, W), 1)
        dst.write_colormap(1, {1: (0, 0, 255, 255), 2: (0, 128, 0, 255), 3: (255, 0, 0, 255)})
    return path


def sparse_oversize(tmp: Path, side: int = 400_000) -> Path:
    """A few-KiB sparse GeoTIFF declaring side × side pixels (no tile written)."""
    path = tmp / "sparse.tif"
    prof = {**profile(3), "width": side, "height": side, "blockxsize": 4096, "blockysize": 4096}
    with rasterio.open(path, "w", **prof, sparse_ok=True, BIGTIFF="YES"):
        pass
    assert path.stat().st_size < 1024**2
    return path


# --- models and the reference prediction -----------------------------------------------


def fit_model(
    tmp: Path,
    truth: Truth,
    *,
    name: str,
    band_names: tuple[str, ...] | None = None,
    dtype: str | None = None,
) -> Path:
    """A small forest fitted on the truly valid pixels, bands in ``truth.data``'s order."""
    count = truth.data.shape[0]
    names = band_names or tuple(f"b{i}" for i in range(1, count + 1))
    recipe = FeatureRecipe(bands=tuple(range(1, count + 1)))
    pixels = truth.data.reshape(count, -1)[:, truth.valid.reshape(-1)].T
    x = compute_features(pixels, recipe, names)
    y = truth.classes.reshape(-1)[truth.valid.reshape(-1)]
    est = RandomForestClassifier(n_estimators=8, random_state=0, n_jobs=1).fit(x, y)
    card = ModelCard(
        name=name,
        version="20261126T000000Z",
        classes=CLASSES,
        band_count=count,
        band_names=names,
        dtype=dtype or truth.data.dtype.name,
        features=recipe,
    )
    return save_model(tmp / f"model-{name}", est, card)


def expected_classes(model: Path, truth: Truth) -> np.ndarray:
    """``model.predict`` on the truly valid pixels, 255 (nodata) everywhere else."""
    est, card = load_model(model)
    count = truth.data.shape[0]
    flat = truth.valid.reshape(-1)
    out = np.full(H * W, 255, np.uint8)
    pixels = truth.data.reshape(count, -1)[:, flat].T
    out[flat] = est.predict(compute_features(pixels, card.features, card.band_names))
    return out.reshape(H, W)
