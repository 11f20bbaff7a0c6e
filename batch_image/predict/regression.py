"""What a regression's outputs show: value statistics, the colour ramp, style and preview.

* :func:`value_summary`: min, max, mean and standard deviation (exact, from the
  engine's sums), percentiles and a histogram of the predicted values, counted window
  by window from the scratch ``prediction.tif`` (bounded memory). Percentiles are read
  off a :data:`FINE_BINS`-bin histogram, so they are exact to ``(max - min) /
  FINE_BINS``; the summary's histogram has :data:`HISTOGRAM_BINS` equal bins.
* :data:`RAMP`: viridis (perceptually uniform, readable in grey and by the colour
  blind), stretched over the 2nd to 98th percentile; the preview (:func:`render_preview`)
  and the QGIS style (:func:`qgis_style`) use the same stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import rasterio
from PIL import Image, ImageDraw
from rasterio.enums import Resampling

from batch_image.model.card import ModelCard
from batch_image.predict.engine import ValueStats
from batch_image.predict.outputs import preview_font

FINE_BINS = 4000  # a multiple of HISTOGRAM_BINS
HISTOGRAM_BINS = 20
PERCENTILES = (2, 5, 25, 50, 75, 95, 98)
# viridis sampled at 9 even stops (matplotlib's), interpolated linearly in between
RAMP = (
    "#440154",
    "#472d7b",
    "#3b528b",
    "#2c728e",
    "#21918c",
    "#28ae80",
    "#5ec962",
    "#addc30",
    "#fde725",
)
PREVIEW_MAX_SIDE = 1024
NODATA_PREVIEW = (225, 225, 225)
DIGITS = 6


@dataclass(frozen=True)
class ValueSummary:
    """``summary.json``'s ``values``: what the predicted values look like."""

    name: str
    unit: str
    pixels: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    percentiles: dict[str, float]
    histogram: dict[str, list[Any]]

    @property
    def stretch(self) -> tuple[float, float]:
        """The ramp's range: 2nd to 98th percentile (min to max when those coincide)."""
        lo, hi = self.percentiles.get("p2"), self.percentiles.get("p98")
        if lo is None or hi is None or not hi > lo:
            lo, hi = self.min or 0.0, self.max or 0.0
        if not hi > lo:
            hi = lo + 1.0
        return float(lo), float(hi)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "pixels": self.pixels,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "percentiles": dict(self.percentiles),
            "histogram": {k: list(v) for k, v in self.histogram.items()},
        }


def _r(x: float) -> float:
    return round(float(x), DIGITS)


def fine_histogram(prediction_tif: Path, low: float, high: float, bins: int) -> np.ndarray:
    """Counts of the finite values of ``prediction_tif`` in ``bins`` equal bins over
    [low, high], read block by block."""
    counts = np.zeros(bins, dtype=np.int64)
    span = high - low
    with rasterio.open(prediction_tif) as src:
        for _, window in src.block_windows(1):
            v = src.read(1, window=window).astype(np.float64)
            v = v[~np.isnan(v)]
            if not v.size:
                continue
            if span > 0:
                idx = np.minimum(((v - low) / span * bins).astype(np.int64), bins - 1)
            else:
                idx = np.zeros(v.size, dtype=np.int64)
            counts += np.bincount(np.clip(idx, 0, bins - 1), minlength=bins)
    return counts


def percentiles_from(counts: np.ndarray, low: float, high: float) -> dict[str, float]:
    """Percentiles by linear interpolation inside the bins of a fine histogram."""
    total = int(counts.sum())
    if not total:
        return {}
    width = (high - low) / counts.size
    cum = np.cumsum(counts)
    out = {}
    for p in PERCENTILES:
        rank = p / 100 * total
        i = int(np.searchsorted(cum, rank, side="left"))
        i = min(i, counts.size - 1)
        before = int(cum[i - 1]) if i else 0
        inside = (rank - before) / counts[i] if counts[i] else 0.0
        out[f"p{p}"] = _r(min(high, max(low, low + (i + inside) * width)))
    return out


def coarse(counts: np.ndarray, low: float, high: float) -> dict[str, list[Any]]:
    """The fine histogram summed into :data:`HISTOGRAM_BINS` equal bins (edges rounded)."""
    per = counts.size // HISTOGRAM_BINS
    merged = counts.reshape(HISTOGRAM_BINS, per).sum(axis=1)
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    return {"edges": [_r(e) for e in edges], "counts": [int(c) for c in merged]}


def value_summary(card: ModelCard, stats: ValueStats, prediction_tif: Path) -> ValueSummary:
    """Statistics of the predicted values (see the module docstring)."""
    name, unit = (card.target.name, card.target.unit) if card.target else ("value", "")
    if not stats.n:
        return ValueSummary(name, unit, 0, None, None, None, None, {}, {"edges": [], "counts": []})
    mean = stats.total / stats.n
    var = max(0.0, stats.squares / stats.n - mean * mean)
    counts = fine_histogram(prediction_tif, stats.low, stats.high, FINE_BINS)
    return ValueSummary(
        name=name,
        unit=unit,
        pixels=stats.n,
        min=_r(stats.low),
        max=_r(stats.high),
        mean=_r(mean),
        std=_r(math.sqrt(var)),
        percentiles=percentiles_from(counts, stats.low, stats.high),
        histogram=coarse(counts, stats.low, stats.high),
    )


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def ramp_lut(n: int = 256) -> np.ndarray:
    """``n`` RGB colours along :data:`RAMP`."""
    stops = np.array([_rgb(c) for c in RAMP], dtype=np.float64)
    at = np.linspace(0, len(RAMP) - 1, n)
    out = np.stack([np.interp(at, np.arange(len(RAMP)), stops[:, k]) for k in range(3)], axis=1)
    return np.rint(out).astype(np.uint8)


def colourize(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """RGB of ``values`` on the ramp stretched over [low, high]; NaN light grey."""
    lut = ramp_lut()
    finite = ~np.isnan(values)
    pos = np.clip((np.nan_to_num(values, nan=low) - low) / (high - low), 0.0, 1.0)
    rgb = lut[np.rint(pos * 255).astype(np.int64)]
    rgb[~finite] = NODATA_PREVIEW
    return rgb


def _label(values: ValueSummary) -> str:
    return f"{values.name} ({values.unit})" if values.unit else values.name


def _number(x: float) -> str:
    return f"{x:.4g}"


def qgis_style(values: ValueSummary) -> str:
    """A single-band pseudocolour QGIS style with the preview's ramp and stretch."""
    low, high = values.stretch
    stops = np.linspace(low, high, len(RAMP))
    items = "\n".join(
        f'          <item value={quoteattr(repr(float(v)))} color={quoteattr(c)} alpha="255" '
        f"label={quoteattr(_number(float(v)))}/>"
        for v, c in zip(stops, RAMP, strict=True)
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.34" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" nodataColor=""
        classificationMin={quoteattr(repr(low))} classificationMax={quoteattr(repr(high))}>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0"
            minimumValue={quoteattr(repr(low))} maximumValue={quoteattr(repr(high))}
            label_precision="4">
{items}
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
  </pipe>
  <!-- {quoteattr(_label(values))[1:-1]} -->
</qgis>
"""


BAR_WIDTH = 24
LEGEND_WIDTH = 200
BAR_TOP = 54


def bar_height(map_height: int) -> int:
    """Height of the preview's colour bar for a map ``map_height`` pixels high."""
    return max(120, min(map_height - 70, 400))


def render_preview(
    prediction_tif: Path, card: ModelCard, values: ValueSummary, dst: Path
) -> tuple[int, int]:
    """The downsampled map on the ramp, with a colour bar labelled in the target's unit."""
    with rasterio.open(prediction_tif) as src:
        scale = max(src.width, src.height) / PREVIEW_MAX_SIDE
        w = max(1, round(src.width / max(scale, 1)))
        h = max(1, round(src.height / max(scale, 1)))
        data = src.read(1, out_shape=(h, w), resampling=Resampling.nearest)
    low, high = values.stretch
    rgb = colourize(data.astype(np.float64), low, high)
    font = preview_font(14)
    bar_h = bar_height(h)
    height = max(h, bar_h + 90)
    canvas = Image.new("RGB", (w + LEGEND_WIDTH, height), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb, "RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, y0 = w + 12, BAR_TOP
    draw.text((x0, 8), f"{card.name} {card.version}", fill=(0, 0, 0), font=font)
    draw.text((x0, 30), _label(values), fill=(0, 0, 0), font=font)
    gradient = ramp_lut(bar_h)[::-1]  # high at the top
    bar = np.repeat(gradient[:, None, :], BAR_WIDTH, axis=1)
    canvas.paste(Image.fromarray(bar, "RGB"), (x0, y0))
    draw.rectangle([x0, y0, x0 + BAR_WIDTH - 1, y0 + bar_h - 1], outline=(0, 0, 0))
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y0 + round((1 - frac) * (bar_h - 1))
        draw.line([x0 + BAR_WIDTH, y, x0 + BAR_WIDTH + 4, y], fill=(0, 0, 0))
        text = _number(low + frac * (high - low))
        draw.text((x0 + BAR_WIDTH + 8, y - 7), text, fill=(0, 0, 0), font=font)
    y = y0 + bar_h + 10
    draw.rectangle([x0, y + 2, x0 + 14, y + 16], fill=NODATA_PREVIEW, outline=(0, 0, 0))
    draw.text((x0 + 22, y), "no data", fill=(0, 0, 0), font=font)
    if values.mean is not None:
        draw.text((x0, y + 22), f"mean {_number(values.mean)}", fill=(0, 0, 0), font=font)
    canvas.save(dst, optimize=True)
    return canvas.size
