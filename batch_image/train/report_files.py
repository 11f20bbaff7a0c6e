"""Training report files: ``metrics.json``, confusion-matrix PNGs, ``report.md``.

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


def write_report(directory: Path, report: dict[str, Any], classes: list[ModelClass]) -> list[str]:
    """Write the report files into ``directory``; return their names."""
    files = ["metrics.json"]
    (directory / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
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
