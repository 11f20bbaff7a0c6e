"""Training report files: ``metrics.json``, confusion-matrix PNGs (a regression:
observed-vs-predicted PNGs), ``report.md``.

The plots are drawn with Pillow (no matplotlib in the container).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from batch_image.model.card import ModelClass

CELL = 56
#: Said in every report: CV scores the training labels, not a map made with the model.
MAP_ACCURACY_NOTE = (
    "**These figures describe the training labels, not the map.** Labels are drawn where "
    "classes are easy to see, so cross-validation on them says how well the model "
    "separates those pixels, not how accurate a predicted map is or how large its classes "
    "are. For map accuracy and error-adjusted areas with confidence intervals, draw a "
    "stratified random sample of the predicted map (`python -m batch_image "
    "accuracy-sample classes.tif --n 300 --out sample.gpkg`), label it in QGIS and run "
    "`python -m batch_image assess classes.tif sample.gpkg --out assessment/` "
    "(Olofsson et al. 2014)."
)
FONT_SIZE = 13


def _font(size: int = FONT_SIZE) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def confusion_png(
    matrix: list[list[int]], classes: list[ModelClass], title: str, path: Path
) -> Path:
    """Row-normalized confusion matrix with counts, class names and colour swatches."""
    from PIL import Image, ImageDraw

    m = np.asarray(matrix, dtype=np.int64)
    k = m.shape[0]
    font = _font()
    small = _font(11)
    label_w = max(90, 8 * max((len(c.name) for c in classes), default=5) + 30)
    top = 70
    width = label_w + k * CELL + 20
    height = top + k * CELL + 40
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill="black", font=_font(15))
    draw.text((label_w, top - 22), "predicted", fill="#444444", font=small)
    draw.text((10, top - 22), "true", fill="#444444", font=small)
    totals = m.sum(axis=1, keepdims=True)
    share = np.divide(m, totals, out=np.zeros(m.shape, dtype=float), where=totals > 0)
    for i, c in enumerate(classes):
        y = top + i * CELL
        draw.rectangle((10, y + CELL // 2 - 6, 22, y + CELL // 2 + 6), fill=c.colour)
        draw.text((28, y + CELL // 2 - 7), c.name, fill="black", font=font)
        x = label_w + i * CELL
        draw.rectangle((x + CELL // 2 - 6, top - 40, x + CELL // 2 + 6, top - 28), fill=c.colour)
        for j in range(k):
            x = label_w + j * CELL
            s = share[i, j]
            if i == j:
                rgb = (int(255 - 180 * s), int(255 - 90 * s), int(255 - 180 * s))
            else:
                rgb = (255, int(255 - 200 * s), int(255 - 200 * s))
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=rgb, outline="#bbbbbb")
            ink = "white" if s > 0.6 else "black"
            draw.text((x + 5, y + 8), f"{s * 100:.0f}%", fill=ink, font=font)
            draw.text((x + 5, y + 30), str(int(m[i, j])), fill=ink, font=small)
    draw.text(
        (10, height - 26),
        "rows: true class (share of its pixels); columns: predicted class",
        fill="#444444",
        font=small,
    )
    img.save(path, format="PNG", optimize=True)
    return path


def _table(metrics: dict[str, Any], classes: list[ModelClass]) -> list[str]:
    lines = ["| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for c in classes:
        pc = metrics["per_class"].get(str(c.id), {})
        lines.append(
            f"| {c.id} {c.name} | {pc.get('precision', 0):.3f} | {pc.get('recall', 0):.3f} "
            f"| {pc.get('f1', 0):.3f} | {pc.get('support', 0)} |"
        )
    return lines


PLOT = 360  # side of the observed-vs-predicted plot area, pixels
MARGIN = 64


def _tick(x: float) -> str:
    return f"{x:.4g}"


def observed_predicted_png(
    observed: np.ndarray, predicted: np.ndarray, title: str, axis: str, path: Path
) -> Path:
    """Out-of-fold predictions against the observed values, as a density of points
    (darker: more pixels), with the 1:1 line; both axes share one range."""
    from PIL import Image, ImageDraw

    lo = float(min(observed.min(), predicted.min()))
    hi = float(max(observed.max(), predicted.max()))
    if not hi > lo:
        hi = lo + 1.0
    scale = (PLOT - 1) / (hi - lo)
    xs = np.clip(((observed - lo) * scale).astype(np.int64), 0, PLOT - 1)
    ys = np.clip(((predicted - lo) * scale).astype(np.int64), 0, PLOT - 1)
    density = np.zeros((PLOT, PLOT), dtype=np.int64)
    np.add.at(density, (PLOT - 1 - ys, xs), 1)
    shade = np.log1p(density) / max(np.log1p(density.max()), 1e-9)
    grey = np.where(density > 0, 200 - 180 * shade, 255).astype(np.uint8)
    img = Image.new("RGB", (PLOT + 2 * MARGIN, PLOT + 2 * MARGIN), "white")
    img.paste(Image.fromarray(grey, "L").convert("RGB"), (MARGIN, MARGIN))
    draw = ImageDraw.Draw(img)
    font, small = _font(), _font(11)
    x0, y0, x1, y1 = MARGIN, MARGIN, MARGIN + PLOT - 1, MARGIN + PLOT - 1
    draw.line([x0, y1, x1, y0], fill="#d62728", width=2)  # the 1:1 line
    draw.rectangle([x0, y0, x1, y1], outline="black")
    for frac in (0.0, 0.5, 1.0):
        v = _tick(lo + frac * (hi - lo))
        x = x0 + round(frac * (PLOT - 1))
        y = y1 - round(frac * (PLOT - 1))
        draw.line([x, y1, x, y1 + 4], fill="black")
        draw.text((x - 12, y1 + 8), v, fill="black", font=small)
        draw.line([x0 - 4, y, x0, y], fill="black")
        draw.text((4, y - 6), v, fill="black", font=small)
    draw.text((10, 8), title, fill="black", font=_font(15))
    draw.text((x0, y1 + 26), f"observed {axis}", fill="#444444", font=font)
    draw.text((x0, y0 - 20), f"predicted {axis} (out of fold); red: 1:1", fill="#444444",
              font=font)  # fmt: skip
    img.save(path, format="PNG", optimize=True)
    return path


def _regression_report(
    directory: Path, report: dict[str, Any], predictions: dict[str, np.ndarray]
) -> list[str]:
    """The body of ``report.md`` for a regression, and its observed-vs-predicted PNGs."""
    cv, counts = report["evaluation"], report["value_counts"]
    target = report.get("target") or {"name": "value", "unit": ""}
    axis = target["name"] + (f" ({target['unit']})" if target["unit"] else "")
    md = [
        f"Target: {axis}",
        "",
        "## Training pixels",
        "",
        f"{counts['found']} labelled valid pixels, {counts['sampled']} sampled in "
        f"{len(counts['sampled_per_stratum'])} value-quantile strata (edges "
        f"{', '.join(_tick(e) for e in counts['strata_edges']) or 'none'}); sampled values "
        f"from {counts['min']} to {counts['max']}, mean {counts['mean']}.",
        "",
        "## Evaluation",
        "",
        f"Spatially blocked {cv.get('blocked', {}).get('folds', '-')}-fold CV with "
        f"{report['cv_block_size']}-pixel blocks ({cv.get('blocks', 0)} blocks), beside a "
        "naive random split. Trust the blocked figures: random splits put neighbouring, "
        "near-identical pixels on both sides. Bias is the mean of predicted − observed.",
        "",
        "| scheme | R² | RMSE | MAE | bias |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    files = []
    for scheme in ("blocked", "random"):
        m = cv.get(scheme, {})
        if "r2" not in m:
            md.append(f"| {scheme} | {m.get('skipped', 'not computed')} | | | |")
            continue
        md.append(
            f"| {scheme} | {m['r2']:.3f} | {_tick(m['rmse'])} | {_tick(m['mae'])} "
            f"| {_tick(m['bias'])} |"
        )
    for scheme in ("blocked", "random"):
        m = cv.get(scheme, {})
        if "r2" not in m or scheme not in predictions:
            continue
        name = f"observed_predicted_{scheme}.png"
        observed_predicted_png(
            predictions["observed"],
            predictions[scheme],
            f"{report['name']} {report['version']}: {scheme} CV, R2 {m['r2']:.3f}, "
            f"RMSE {_tick(m['rmse'])}",
            axis,
            directory / name,
        )
        files.append(name)
        md += ["", f"![{scheme} CV observed vs predicted]({name})"]
    (directory / "report.md").write_text(
        "\n".join([f"# Model {report['name']} {report['version']}", "",
                   f"Estimator: {report['estimator']['type']} "
                   f"{json.dumps(report['estimator']['params'])}",
                   f"Features: {', '.join(report['features'])}", *md]) + "\n"
    )  # fmt: skip
    return files


def _comparison(comparison: dict[str, Any] | None, classes: list[ModelClass]) -> list[str]:
    """The section comparing this version with the current one on the same blocks."""
    if comparison is None:
        return []
    md = ["", "## Compared with the current version", ""]
    if "skipped" in comparison:
        return [*md, f"Not compared: {comparison['skipped']}."]
    b, a = comparison["before"], comparison["after"]
    md += [
        f"The same {comparison['folds']} blocked folds ({comparison['n']} pixels, "
        f"{comparison['new_pixels']} of them from samples the current version did not have). "
        "Before: the current version's estimator fitted on its own samples of each fold's "
        "training blocks; after: this version's blocked CV.",
        "",
        "| | before | after |",
        "| --- | ---: | ---: |",
        f"| overall accuracy | {b['overall_accuracy']:.3f} | {a['overall_accuracy']:.3f} |",
        f"| kappa | {b['kappa']:.3f} | {a['kappa']:.3f} |",
        f"| macro F1 | {b['macro_f1']:.3f} | {a['macro_f1']:.3f} |",
        "",
        "| class | F1 before | F1 after | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    f1 = comparison["per_class_f1"]
    for c in classes:
        row = f1.get(str(c.id))
        if row:
            change = row["after"] - row["before"]
            md.append(
                f"| {c.id} {c.name} | {row['before']:.3f} | {row['after']:.3f} | {change:+.3f} |"
            )
    names = {str(c.id): c.name for c in classes}
    most = ", ".join(f"{names.get(str(m['id']), m['id'])} ({m['change']:+.3f})" for m in
                     comparison["most_changed"])  # fmt: skip
    return [*md, "", f"Changed most: {most}."]


def write_report(
    directory: Path,
    report: dict[str, Any],
    classes: list[ModelClass],
    predictions: dict[str, np.ndarray] | None = None,
) -> list[str]:
    """Write the report files into ``directory``; return their names. A regression
    (``predictions``: observed and out-of-fold values) gets observed-vs-predicted plots."""
    files = ["metrics.json"]
    (directory / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    if "value_counts" in report:
        return [*files, *_regression_report(directory, report, predictions or {}), "report.md"]
    cv = report["evaluation"]
    md = [
        f"# Model {report['name']} {report['version']}",
        "",
        f"Estimator: {report['estimator']['type']} {json.dumps(report['estimator']['params'])}",
        f"Features: {', '.join(report['features'])}",
        "",
        "## Training pixels per class",
        "",
        "| class | labelled (found) | sampled |",
        "| --- | ---: | ---: |",
    ]
    for c in classes:
        md.append(
            f"| {c.id} {c.name} | {report['class_counts']['found'].get(str(c.id), 0)} "
            f"| {report['class_counts']['sampled'].get(str(c.id), 0)} |"
        )
    md += [
        "",
        "## Evaluation",
        "",
        f"Spatially blocked {cv.get('blocked', {}).get('folds', '-')}-fold CV with "
        f"{report['cv_block_size']}-pixel blocks ({cv.get('blocks', 0)} blocks), beside a "
        "naive random stratified split. Trust the blocked figures: random splits put "
        "neighbouring, near-identical pixels on both sides.",
        "",
        MAP_ACCURACY_NOTE,
        "",
        "| scheme | overall accuracy | kappa | macro F1 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for scheme in ("blocked", "random"):
        m = cv.get(scheme, {})
        if "overall_accuracy" in m:
            md.append(
                f"| {scheme} | {m['overall_accuracy']:.3f} | {m['kappa']:.3f} "
                f"| {m['macro_f1']:.3f} |"
            )
        else:
            md.append(f"| {scheme} | {m.get('skipped', 'not computed')} | | |")
    for scheme in ("blocked", "random"):
        m = cv.get(scheme, {})
        if "confusion_matrix" not in m:
            continue
        name = f"confusion_{scheme}.png"
        confusion_png(
            m["confusion_matrix"]["matrix"],
            classes,
            f"{report['name']} {report['version']}: {scheme} CV, "
            f"OA {m['overall_accuracy']:.3f}, kappa {m['kappa']:.3f}",
            directory / name,
        )
        files.append(name)
        md += ["", f"### {scheme.capitalize()} CV per class", "", *_table(m, classes), ""]
        md.append(f"![{scheme} confusion matrix]({name})")
    md += _comparison(report.get("comparison"), classes)
    (directory / "report.md").write_text("\n".join(md) + "\n")
    files.append("report.md")
    return files
