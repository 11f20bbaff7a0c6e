"""The assessment's files: ``assessment.json``, ``assessment.md`` and ``assessment.png``.

Areas are shown in hectares when the map's unit is the metre, else in its own unit.
The plot puts, per class, the pixel-counting area beside the error-adjusted area with
its 95 % interval: where the bars differ, counting pixels would have been biased.
Drawn with Pillow (no matplotlib in the container).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch_image.accuracy.assessment import Assessment

ASSESSMENT_JSON = "assessment.json"
ASSESSMENT_MD = "assessment.md"
ASSESSMENT_PNG = "assessment.png"
FILES = (ASSESSMENT_JSON, ASSESSMENT_MD, ASSESSMENT_PNG)


def area_scale(unit: str) -> tuple[float, str]:
    """Divide map-unit areas by this to show them in the returned unit."""
    return (10_000.0, "ha") if unit == "metre^2" else (1.0, unit)


def write_reports(assessment: Assessment, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = assessment.to_dict()
    paths = {name: out_dir / name for name in FILES}
    paths[ASSESSMENT_JSON].write_text(json.dumps(doc, indent=2) + "\n")
    paths[ASSESSMENT_MD].write_text(markdown(doc))
    area_plot(doc, paths[ASSESSMENT_PNG])
    return paths


def _pm(est: dict[str, Any], scale: float = 1.0, fmt: str = ".3f") -> str:
    if est["value"] is None:
        return "–"
    value = format(est["value"] / scale, fmt)
    if est["ci95"] is None:
        return value
    half = (est["ci95"][1] - est["ci95"][0]) / 2 / scale
    return f"{value} ± {format(half, fmt)}"


def markdown(doc: dict[str, Any]) -> str:
    scale, unit = area_scale(doc["area_unit"])
    classes = doc["classes"]
    names = [c["name"] for c in classes]
    points = doc["points"]
    skipped = f" ({points['unlabelled']} not labelled, left out)" if points["unlabelled"] else ""
    method = (doc.get("allocation") or {}).get("method", "?")
    lines = [
        f"# Accuracy and area of {doc['map']}",
        "",
        f"Sample `{doc['sample']}`: {points['labelled']} labelled points{skipped}; "
        f"allocation {method}.",
        "Estimators: Olofsson et al. (2014), stratified by map class; ± is the 95 % interval.",
        "",
        f"**Overall accuracy: {_pm(doc['overall_accuracy'])}**",
        "",
        f"| class | mapped ({unit}, pixel count) | error-adjusted area ({unit}) | "
        "user's accuracy | producer's accuracy | points |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in classes:
        lines.append(
            f"| {c['name']} | {c['mapped_area'] / scale:,.1f} | {_pm(c['area'], scale, ',.1f')} "
            f"| {_pm(c['users_accuracy'])} | {_pm(c['producers_accuracy'])} "
            f"| {c['sample_points']} |"
        )
    matrix = doc["error_matrix"]
    lines += ["", "## Error matrix: sample counts (rows: map, columns: reference)", ""]
    lines += _matrix(names, matrix["counts"], "{:d}")
    lines += ["", "## Error matrix: estimated area proportions", ""]
    lines += _matrix(names, matrix["area_proportions"], "{:.4f}")
    lines += [
        "",
        "Pixel counts are biased by the map's errors; the error-adjusted areas are not (they",
        "are estimated from the labelled sample), and their intervals say how precise they are.",
    ]
    return "\n".join(lines) + "\n"


def _matrix(names: list[str], rows: list[list[Any]], fmt: str) -> list[str]:
    out = ["| map \\ reference | " + " | ".join(names) + " |"]
    out.append("| --- |" + " ---: |" * len(names))
    for name, row in zip(names, rows, strict=True):
        out.append(f"| {name} | " + " | ".join(fmt.format(v) for v in row) + " |")
    return out


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``: round axis ticks."""
    import math

    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def area_plot(doc: dict[str, Any], path: Path) -> Path:
    """Horizontal bars per class: pixel count (light) and error-adjusted area ± 95 % CI."""
    from PIL import Image, ImageDraw

    scale, unit = area_scale(doc["area_unit"])
    classes = doc["classes"]
    highs = [c["mapped_area"] for c in classes] + [
        (c["area"]["ci95"] or [0, c["area"]["value"] or 0])[1] for c in classes
    ]
    top_value = max(max(highs), 1e-12) / scale
    label_w, plot_w, row_h, top = 150, 560, 46, 56
    height = top + row_h * len(classes) + 50
    img = Image.new("RGB", (label_w + plot_w + 40, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(13), _font(11)
    draw.text((10, 8), f"Area per class ({unit}): pixel count vs error-adjusted ± 95 % CI",
              fill="black", font=_font(15))  # fmt: skip
    draw.rectangle((label_w, 32, label_w + 12, 44), fill="#cccccc")
    draw.text((label_w + 18, 31), "pixel count (map)", fill="black", font=small)
    draw.rectangle((label_w + 160, 32, label_w + 172, 44), fill="#333333")
    draw.text((label_w + 178, 31), "error-adjusted estimate", fill="black", font=small)

    def x(v: float) -> float:
        return label_w + plot_w * max(v, 0.0) / scale / top_value

    for k, c in enumerate(classes):
        y = top + k * row_h
        draw.rectangle((10, y + 8, 22, y + 20), fill=c["colour"] or "#888888")
        draw.text((28, y + 7), c["name"][:18], fill="black", font=font)
        draw.rectangle((label_w, y + 2, x(c["mapped_area"]), y + 16), fill="#cccccc")
        est = c["area"]
        if est["value"] is not None:
            draw.rectangle((label_w, y + 20, x(est["value"]), y + 34), fill=c["colour"] or "#333")
            draw.rectangle((label_w, y + 20, x(est["value"]), y + 34), outline="#333333")
            if est["ci95"]:
                lo, hi = x(est["ci95"][0]), x(est["ci95"][1])
                draw.line((lo, y + 27, hi, y + 27), fill="black", width=2)
                draw.line((lo, y + 21, lo, y + 33), fill="black", width=2)
                draw.line((hi, y + 21, hi, y + 33), fill="black", width=2)
    axis_y = top + row_h * len(classes) + 4
    draw.line((label_w, axis_y, label_w + plot_w, axis_y), fill="black")
    step = _nice_step(top_value / 4)
    v = 0.0
    while v <= top_value:
        xx = label_w + plot_w * v / top_value
        draw.line((xx, axis_y, xx, axis_y + 4), fill="black")
        draw.text((xx - 14, axis_y + 8), f"{v:,.0f}" if step >= 1 else f"{v:,.2f}",
                  fill="black", font=small)  # fmt: skip
        v += step
    img.save(path, optimize=True)
    return path
