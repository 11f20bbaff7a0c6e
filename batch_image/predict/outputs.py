"""Result files: COGs with colour table and class names, a QGIS style, a preview.

A regression writes ``prediction.tif`` (float32, NaN nodata) and for forests
``uncertainty.tif`` instead of classes and confidence; its style and preview live in
:mod:`batch_image.predict.regression`. ``probabilities.tif`` (one uint8 band per
class) is written on request beside the class map.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import rasterio
from PIL import Image, ImageDraw, ImageFont
from rasterio.enums import Resampling

from batch_image.model.card import NODATA_CLASS, ModelCard

CLASSES_TIF = "classes.tif"
CONFIDENCE_TIF = "confidence.tif"
CLASSES_QML = "classes.qml"
PREVIEW_PNG = "preview.png"
PROBABILITIES_TIF = "probabilities.tif"
PREDICTION_TIF = "prediction.tif"
UNCERTAINTY_TIF = "uncertainty.tif"
PREDICTION_QML = "prediction.qml"
#: the engine's layer names → their files
LAYER_FILES = {
    "classes": CLASSES_TIF,
    "confidence": CONFIDENCE_TIF,
    "probabilities": PROBABILITIES_TIF,
    "prediction": PREDICTION_TIF,
    "uncertainty": UNCERTAINTY_TIF,
}
#: how each layer's overviews are made
LAYER_RESAMPLING = {
    "classes": "mode",
    "confidence": "average",
    "probabilities": "average",
    "prediction": "average",
    "uncertainty": "average",
}
PREVIEW_MAX_SIDE = 1024
NODATA_RGBA = (0, 0, 0, 0)
NODATA_PREVIEW = (225, 225, 225, 255)


def colormap(card: ModelCard) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table: each class its colour, nodata transparent, the rest grey."""
    cmap = {i: (128, 128, 128, 255) for i in range(256)}
    for c in card.classes:
        cmap[c.id] = (*c.rgb(), 255)
    cmap[NODATA_CLASS] = NODATA_RGBA
    return cmap


def georeferencing(src: rasterio.io.DatasetReader) -> dict:
    """How the input is located, as profile keys every output carries: a geotransform and
    CRS, or the input's ground control points (with their CRS), or its RPCs. Outputs keep
    the input's pixel grid, so each kind carries over unchanged (no warping)."""
    gcps, gcp_crs = src.gcps
    if src.transform.is_identity and gcps:
        return {"gcps": gcps, "crs": gcp_crs}
    if src.transform.is_identity and src.rpcs:
        return {"rpcs": src.rpcs, "crs": src.crs}
    return {"crs": src.crs, "transform": src.transform}


def layer_format(name: str) -> tuple[str, float]:
    """dtype and nodata of a layer: float32 with NaN for values, uint8 with 255 otherwise."""
    if name in ("prediction", "uncertainty"):
        return "float32", float("nan")
    return "uint8", NODATA_CLASS


def layer_bytes_per_pixel(names: tuple[str, ...], bands: int = 1) -> int:
    """Bytes a pixel of these layers takes uncompressed (``bands`` for probabilities)."""
    total = 0
    for name in names:
        size = np.dtype(layer_format(name)[0]).itemsize
        total += size * (bands if name == "probabilities" else 1)
    return total


def scratch_profile(
    src_profile: dict,
    block: int = 512,
    georef: dict | None = None,
    *,
    dtype: str = "uint8",
    nodata: float = NODATA_CLASS,
    count: int = 1,
) -> dict:
    """Profile of the uncompressed tiled scratch file the engine writes windows into;
    ``georef`` (:func:`georeferencing`) replaces the profile's CRS and transform."""
    located = georef or {"crs": src_profile.get("crs"), "transform": src_profile["transform"]}
    return {
        "driver": "GTiff",
        "width": src_profile["width"],
        "height": src_profile["height"],
        "count": count,
        "dtype": dtype,
        **located,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "NONE",
        "BIGTIFF": "IF_SAFER",
    }


def describe_classes(dst: rasterio.io.DatasetWriter, card: ModelCard) -> None:
    names = {str(c.id): c.name for c in card.classes}
    dst.set_band_description(1, "class: " + ", ".join(f"{c.id}={c.name}" for c in card.classes))
    dst.update_tags(
        1,
        CLASS_NAMES=json.dumps(names),
        CLASS_COLOURS=json.dumps({str(c.id): c.colour for c in card.classes}),
    )
    dst.update_tags(MODEL_NAME=card.name, MODEL_VERSION=card.version, PRODUCT="rasterdrop classes")
    dst.write_colormap(1, colormap(card))


def describe_confidence(dst: rasterio.io.DatasetWriter, card: ModelCard) -> None:
    dst.set_band_description(1, "confidence: winning class probability, percent (0-100)")
    dst.update_tags(1, UNITS="percent")
    dst.update_tags(
        MODEL_NAME=card.name, MODEL_VERSION=card.version, PRODUCT="rasterdrop confidence"
    )


def describe_probabilities(dst: rasterio.io.DatasetWriter, card: ModelCard, ids: list[int]) -> None:
    """One band per model class (in the model's class order), named after it."""
    by_id = card.class_by_id()
    for band, cid in enumerate(ids, start=1):
        dst.set_band_description(band, by_id[cid].name)
        dst.update_tags(band, CLASS_ID=str(cid), UNITS="percent")
    dst.update_tags(
        MODEL_NAME=card.name, MODEL_VERSION=card.version, PRODUCT="rasterdrop probabilities"
    )


def _target_text(card: ModelCard) -> tuple[str, str]:
    target = card.target
    return (target.name, target.unit) if target else ("value", "")


def describe_prediction(dst: rasterio.io.DatasetWriter, card: ModelCard) -> None:
    name, unit = _target_text(card)
    dst.set_band_description(1, f"{name} ({unit})" if unit else name)
    dst.update_tags(1, UNITS=unit, TARGET=name)
    dst.update_tags(
        MODEL_NAME=card.name, MODEL_VERSION=card.version, PRODUCT="rasterdrop prediction"
    )
    dst.set_band_unit(1, unit)


def describe_uncertainty(dst: rasterio.io.DatasetWriter, card: ModelCard) -> None:
    name, unit = _target_text(card)
    text = f"{name} uncertainty: standard deviation of the trees' predictions"
    dst.set_band_description(1, f"{text} ({unit})" if unit else text)
    dst.update_tags(1, UNITS=unit, TARGET=name)
    dst.update_tags(
        MODEL_NAME=card.name, MODEL_VERSION=card.version, PRODUCT="rasterdrop uncertainty"
    )
    dst.set_band_unit(1, unit)


def to_cog(scratch: Path, dst: Path, *, resampling: str) -> None:
    """Convert a scratch GeoTIFF to a deflate-compressed COG with overviews.

    A raster located by GCPs or RPCs goes through GDAL's own COG driver, which keeps
    them as they are; rio-cogeo would warp it onto a grid fitted to the GCPs.
    """
    with rasterio.open(scratch) as src:
        by_points = src.transform.is_identity and bool(src.gcps[0] or src.rpcs)
        values = src.dtypes[0] == "float32"
    if by_points or values:  # GDAL's driver also keeps a band's unit (rio-cogeo drops it)
        _to_cog_keeping_points(scratch, dst, resampling=resampling, values=values)
        return
    # imported here: rio-cogeo (and morecantile, pydantic) cost ~0.1 s of start-up, and only
    # the COG conversion at the end of a run needs them (a sharded run's children never do)
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    profile = cog_profiles.get("deflate")
    profile.update(blockxsize=512, blockysize=512, predictor=1, BIGTIFF="IF_SAFER")
    cog_translate(
        str(scratch),
        str(dst),
        profile,
        nodata=NODATA_CLASS,
        overview_resampling=resampling,
        in_memory=False,
        quiet=True,
        forward_band_tags=True,
        config={"GDAL_NUM_THREADS": "ALL_CPUS", "GDAL_TIFF_INTERNAL_MASK": True},
    )


def _to_cog_keeping_points(
    scratch: Path, dst: Path, *, resampling: str, values: bool = False
) -> None:
    import rasterio.shutil

    extra = {"predictor": "FLOATING_POINT"} if values else {}
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        rasterio.shutil.copy(
            scratch,
            dst,
            driver="COG",
            compress="DEFLATE",
            blocksize=512,
            overview_resampling=resampling.upper(),
            BIGTIFF="IF_SAFER",
            **extra,
        )


def qgis_style(card: ModelCard) -> str:
    """A paletted-renderer QGIS style; QGIS loads ``classes.qml`` beside ``classes.tif``."""
    entries = "\n".join(
        f"        <paletteEntry value={quoteattr(str(c.id))} color={quoteattr(c.colour)} "
        f'alpha="255" label={quoteattr(c.name)}/>'
        for c in card.classes
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.34" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
  </pipe>
</qgis>
"""


def preview_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``size`` (the previews' text: class maps and regressions)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_preview(
    classes_tif: Path, card: ModelCard, shares: dict[int, float], dst: Path
) -> tuple[int, int]:
    """A coloured, downsampled PNG of the class map with a legend of names and shares."""
    with rasterio.open(classes_tif) as src:
        scale = max(src.width, src.height) / PREVIEW_MAX_SIDE
        w = max(1, round(src.width / max(scale, 1)))
        h = max(1, round(src.height / max(scale, 1)))
        ids = src.read(1, out_shape=(h, w), resampling=Resampling.nearest)
    lut = np.array([colormap(card)[i] for i in range(256)], dtype=np.uint8)
    rgba = lut[ids]
    font = preview_font(14)
    row_h = 20
    legend_w = 230
    legend_h = max(h, row_h * (len(card.classes) + 3) + 10)
    canvas = Image.new("RGBA", (w + legend_w, legend_h), (255, 255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, w - 1, h - 1], fill=NODATA_PREVIEW)  # nodata shows light grey
    layer = Image.fromarray(rgba, "RGBA")
    canvas.paste(layer, (0, 0), layer)
    x0 = w + 12
    draw.text((x0, 8), f"{card.name} {card.version}", fill=(0, 0, 0, 255), font=font)
    for i, c in enumerate(card.classes):
        y = 8 + row_h * (i + 1)
        draw.rectangle([x0, y + 2, x0 + 14, y + 16], fill=(*c.rgb(), 255), outline=(0, 0, 0, 255))
        share = shares.get(c.id, 0.0) * 100
        draw.text((x0 + 22, y), f"{c.name}  {share:.1f} %", fill=(0, 0, 0, 255), font=font)
    y = 8 + row_h * (len(card.classes) + 1)
    draw.rectangle([x0, y + 2, x0 + 14, y + 16], fill=NODATA_PREVIEW, outline=(0, 0, 0, 255))
    draw.text((x0 + 22, y), "no data", fill=(0, 0, 0, 255), font=font)
    canvas.convert("RGB").save(dst, optimize=True)
    return canvas.size
