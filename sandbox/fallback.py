"""The demo on local files, for checkouts where the S3 parts have not landed yet.

Used only when ``sandbox.parts.missing_parts()`` names something; the full demo runs the
stack's flow instead. Same commands the job runs, on files: sample → train → predict.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from sandbox.demo import DEFAULT_SIZE, DEFAULT_TREES, Echo, batch_image, prepare_data
from sandbox.parts import local_parts_missing


def local_demo(
    out: Path,
    *,
    scene: Path | None = None,
    labels: Path | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    trees: int = DEFAULT_TREES,
    echo: Echo = print,
) -> int:
    lacking = local_parts_missing()
    if lacking:
        echo("The local fallback needs " + ", ".join(lacking) + ": not in this checkout yet.")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".local"
    shutil.rmtree(work, ignore_errors=True)
    data = prepare_data(work, scene, labels, size, echo)
    model = out / "model"
    shutil.rmtree(model, ignore_errors=True)
    t = time.perf_counter()
    batch_image(
        "train",
        "--image",
        str(data.train_image),
        "--labels",
        str(data.train_labels),
        "--out",
        str(model),
        "--name",
        "demo",
        "--trees",
        str(trees),
        "--max-per-class",
        "2000",
    )
    echo(f"  model trained in {time.perf_counter() - t:.1f} s → {model}/")
    t = time.perf_counter()
    batch_image("predict", str(data.scene), "--model", str(model), "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    echo(f"  {data.scene.name} predicted in {time.perf_counter() - t:.1f} s → {out}/")
    for c in summary.get("classes", []):
        echo(f"    {c['name']:<12} {100 * c['share']:5.1f} %")
    echo(f"Outputs: {out}/classes.tif, confidence.tif, preview.png, summary.json, model/")
    return 0
