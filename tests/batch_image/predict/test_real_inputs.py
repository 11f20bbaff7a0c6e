"""Real data as it comes: one row per kind of file people drop, predicted locally.

Each row writes a real file with rasterio/GDAL (real_files.py), then either predicts it
and compares every pixel of ``classes.tif`` with ``model.predict`` on the truly valid
pixels (nodata, 255, everywhere else), or expects a refusal with its exact code and exit
code, naming the user's file and no scratch path, the input untouched.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from batch_image.cli.main import main
from batch_image.errors import RasterdropError
from batch_image.predict.pipeline import PredictOptions, predict_file
from tests.batch_image import real_files as rf

ONE_WORKER = PredictOptions(workers=1)


@dataclass(frozen=True)
class Case:
    """What a row builds: the input, the model, and the truth (None: a refusal)."""

    path: Path
    model: Path
    truth: rf.Truth | None
    options: PredictOptions = ONE_WORKER


def _rgb(make: Callable[[Path], tuple[Path, rf.Truth]]) -> Callable[[Path], Case]:
    def build(tmp: Path) -> Case:
        path, truth = make(tmp)
        return Case(path, rf.fit_model(tmp, truth, name="rgb"), truth)

    return build


def _reordered(tmp: Path) -> Case:
    path, truth = rf.described(tmp, stored=("nir", "blue", "red", "green"))
    return Case(path, rf.fit_model(tmp, truth, name="rgbn", band_names=rf.RGBN), truth)


def _undescribed_positional(tmp: Path) -> Case:
    path, truth = rf.described(tmp, stored=rf.RGBN, names=("", "", "", ""))
    return Case(path, rf.fit_model(tmp, truth, name="rgbn", band_names=rf.RGBN), truth)


def _renamed(tmp: Path) -> Case:
    path, truth = rf.described(tmp, stored=rf.RGBN, names=("B4", "B3", "B2", "B8"))
    return Case(path, rf.fit_model(tmp, truth, name="rgbn", band_names=rf.RGBN), None)


def _vrt(tmp: Path) -> Case:
    path, truth = rf.vrt_stack(tmp)
    return Case(path, rf.fit_model(tmp, truth, name="rgbn", band_names=rf.RGBN), truth)


def _vrt_absolute(tmp: Path) -> Case:
    path, truth = rf.vrt_stack(tmp, absolute=True)
    return Case(path, rf.fit_model(tmp, truth, name="rgbn", band_names=rf.RGBN), None)


def _palette(tmp: Path) -> Case:
    _, truth = rf.msk_sidecar(tmp)
    return Case(rf.palette(tmp), rf.fit_model(tmp, truth, name="rgb"), None)


def _sparse(tmp: Path) -> Case:
    """Declares more pixels than the disk can hold outputs for (4 bytes a pixel)."""
    free = shutil.disk_usage(tmp).free
    side = math.isqrt(free // 4) + 4096
    _, truth = rf.msk_sidecar(tmp)
    options = PredictOptions(workers=1, max_pixels=side * side)
    return Case(rf.sparse_oversize(tmp, side), rf.fit_model(tmp, truth, name="rgb"), None, options)


PREDICTED = {
    "jpeg-ycbcr-internal-mask": _rgb(rf.jpeg_ycbcr_masked),
    "rgba-with-rgb-model": _rgb(rf.rgba),
    "msk-sidecar": _rgb(rf.msk_sidecar),
    "bands-reordered-by-name": _reordered,
    "no-descriptions-by-position": _undescribed_positional,
    "vrt-over-single-band-files": _vrt,
    "gcp-only": _rgb(rf.gcp_only),
    "rpc-only": _rgb(rf.rpc_only),
}
REFUSED = {  # row: (build, code, exit code)
    "bands-renamed": (_renamed, "band_names_mismatch", 2),
    "vrt-source-outside": (_vrt_absolute, "vrt_source_refused", 2),
    "palette-tiff": (_palette, "palette_raster", 2),
    "sparse-oversize": (_sparse, "scratch_full", 1),
}


@pytest.mark.parametrize("row", sorted(PREDICTED))
def test_predicts_exactly_the_truly_valid_pixels(tmp_path: Path, row: str) -> None:
    case = PREDICTED[row](tmp_path)
    assert case.truth is not None
    before = case.path.read_bytes()
    out = tmp_path / "out"
    summary = predict_file(case.path, case.model, out, case.options)
    with rasterio.open(out / "classes.tif") as cls, rasterio.open(out / "confidence.tif") as conf:
        classes, confidence = cls.read(1), conf.read(1)
    assert np.array_equal(classes, rf.expected_classes(case.model, case.truth))
    assert np.all(confidence[~case.truth.valid] == 255)
    assert np.all(confidence[case.truth.valid] <= 100)
    assert summary["raster"]["valid_pixels"] == int(case.truth.valid.sum())
    assert sum(c["pixels"] for c in summary["classes"]) == int(case.truth.valid.sum())
    assert case.path.read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".scratch")]


@pytest.mark.parametrize("row", sorted(REFUSED))
def test_refuses_with_its_code_naming_the_file(tmp_path: Path, row: str) -> None:
    build, code, exit_code = REFUSED[row]
    case = build(tmp_path)
    before = case.path.read_bytes()
    out = tmp_path / "out"
    with pytest.raises(RasterdropError) as info:
        predict_file(case.path, case.model, out, case.options)
    assert (info.value.code, info.value.exit_code) == (code, exit_code)
    if exit_code == 2:  # the user's file by its own name, never a scratch path
        assert case.path.name in info.value.message
        assert str(tmp_path) not in info.value.message
    assert json.loads((out / "error.json").read_text())["code"] == code
    assert not (out / "summary.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".scratch")]
    assert case.path.read_bytes() == before


def test_renamed_bands_say_expected_and_got(tmp_path: Path) -> None:
    case = _renamed(tmp_path)
    with pytest.raises(RasterdropError) as info:
        predict_file(case.path, case.model, tmp_path / "out")
    assert info.value.details["expected"] == list(rf.RGBN)
    assert info.value.details["got"] == ["B4", "B3", "B2", "B8"]
    assert "rio edit-info" in info.value.message


def test_vrt_cli_exit_code_and_line(tmp_path: Path) -> None:
    case = _vrt_absolute(tmp_path)
    result = CliRunner().invoke(
        main, ["predict", str(case.path), "--model", str(case.model), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "error [invalid_input/vrt_source_refused]: absolute.vrt: source" in result.output


@pytest.mark.parametrize("make", [rf.gcp_only, rf.rpc_only], ids=["gcps", "rpcs"])
def test_points_georeferencing_is_carried_into_every_output(tmp_path: Path, make) -> None:
    path, truth = make(tmp_path)
    model = rf.fit_model(tmp_path, truth, name="rgb")
    predict_file(path, model, tmp_path / "out", PredictOptions(workers=1))
    with rasterio.open(path) as src:
        gcps, rpcs = src.gcps, src.rpcs
    for name in ("classes.tif", "confidence.tif"):
        with rasterio.open(tmp_path / "out" / name) as dst:
            assert dst.transform.is_identity  # same pixel grid: located by the points
            if gcps[0]:
                got = [(g.row, g.col, g.x, g.y) for g in dst.gcps[0]]
                assert got == [(g.row, g.col, g.x, g.y) for g in gcps[0]]
                assert dst.gcps[1] == gcps[1]
            else:
                assert dst.rpcs is not None
                for key, value in rpcs.to_dict().items():
                    np.testing.assert_allclose(dst.rpcs.to_dict()[key], value, err_msg=key)
            assert dst.colormap(1)[1] if name == "classes.tif" else True


def test_interrupted_local_run_leaves_no_scratch(tmp_path: Path, monkeypatch) -> None:
    from batch_image.predict import pipeline

    path, truth = rf.msk_sidecar(tmp_path)
    model = rf.fit_model(tmp_path, truth, name="rgb")

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_convert_to_cogs", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_file(path, model, out, PredictOptions(workers=1))
    assert not [p for p in out.iterdir() if p.name.startswith(".scratch")]
    assert not (out / "summary.json").exists()


def test_sigterm_mid_run_removes_local_scratch(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import make_model, make_scene

    scene, _ = make_scene(tmp_path, width=1800, height=1800, bands=4, holes=False)
    (tmp_path / "small").mkdir()
    small, small_truth = make_scene(tmp_path / "small", bands=4)
    model = make_model(tmp_path, small, small_truth, trees=30)
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch_image", "predict", str(scene), "--model", str(model),
         "--out", str(out), "--workers", "1"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and any(p.name.startswith(".scratch") for p in out.iterdir())):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".scratch")]
    assert not (out / "summary.json").exists()
