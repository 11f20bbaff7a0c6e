"""``python -m batch_image sample`` / ``train`` as the demo and the job run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "batch_image", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_sample_then_quick_train_like_make_demo(tmp_path):
    out = tmp_path / "demo-out"
    made = _cli(
        "sample", "--out", out, "--width", "400", "--height", "300", "--seed", "2", "--truth"
    )
    assert made.returncode == 0, made.stderr
    trained = _cli(
        "train",
        "--image", out / "scene.tif",
        "--labels", out / "labels.tif",
        "--out", out / "model",
        "--name", "demo",
        "--trees", "20",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.strip() == str(out / "model")
    card = json.loads((out / "model" / "model.json").read_text())
    assert card["name"] == "demo" and [c["name"] for c in card["classes"]][:2] == [
        "water",
        "forest",
    ]
    assert "blocked CV: accuracy" in trained.stderr
    # The model predict loads is the one train wrote: scored against the sample's truth.
    predicted = _cli("predict", out / "scene.tif", "--model", out / "model", "--out", out / "pred")
    assert predicted.returncode == 0, predicted.stderr
    import numpy as np
    import rasterio

    with rasterio.open(out / "pred" / "classes.tif") as ds:
        classes = ds.read(1)
    with rasterio.open(out / "truth.tif") as ds:
        truth = ds.read(1)
    valid = truth > 0
    assert np.array_equal(classes == 255, ~valid)
    assert 0.72 <= float((classes[valid] == truth[valid]).mean()) <= 0.97


@pytest.mark.slow
def test_bad_manifest_exits_2_with_one_line(tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("name: x\nclasses: [{id: 1, name: a}]\n")
    result = _cli("train", manifest, "--out", tmp_path / "models")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error [invalid_input/manifest_invalid]: manifest: missing field(s): samples"
    )
    assert result.stdout == ""
