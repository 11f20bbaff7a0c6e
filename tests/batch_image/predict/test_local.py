"""The predict engine on local files: exact, georeferenced, COG, categorized errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

from batch_image.cli.main import main
from batch_image.model.card import load_model
from batch_image.model.features import compute_features
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.raster.validity import ValidityRule
from tests.conftest import make_model, make_scene, write_raster


def reference(scene: Path, model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Whole-array model.predict / predict_proba on the valid pixels, 255 elsewhere."""
    est, card = load_model(model_dir)
    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data).reshape(-1)
    x = compute_features(
        data.reshape(data.shape[0], -1)[:, valid].T, card.features, card.band_names
    )
    classes = np.full(valid.shape, 255, np.uint8)
    conf = np.full(valid.shape, 255, np.uint8)
    classes[valid] = est.predict(x)
    conf[valid] = np.rint(est.predict_proba(x).max(axis=1) * 100)
    shape = data.shape[1:]
    return classes.reshape(shape), conf.reshape(shape)


def read1(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.parametrize(
    ("bands", "dtype", "block"),
    [
        (1, "uint16", 16),
        (4, "uint16", 16),
        (8, "uint16", 32),
        (4, "uint8", None),
        (4, "float32", 16),
        (3, "uint8", 16),
    ],
)
def test_windowed_equals_whole_array_predict(
    tmp_path: Path, bands: int, dtype: str, block: int | None
) -> None:
    # Given a raster whose size is not a multiple of its blocks, with nodata holes
    scene, truth = make_scene(tmp_path, bands=bands, dtype=dtype, block=block)
    model = make_model(tmp_path, scene, truth)
    # When it is predicted in many small windows on two workers
    out = tmp_path / "out"
    summary = predict_file(scene, model, out, PredictOptions(workers=2, target_pixels=300))
    # Then every pixel equals whole-array predict, and confidence max proba × 100
    want_cls, want_conf = reference(scene, model)
    np.testing.assert_array_equal(read1(out / "classes.tif"), want_cls)
    np.testing.assert_array_equal(read1(out / "confidence.tif"), want_conf)
    assert summary["windows"] >= (4 if block else 1)
    valid = int((want_cls != 255).sum())
    assert summary["raster"]["valid_pixels"] == valid
    assert summary["raster"]["nodata_pixels"] == want_cls.size - valid
    counts = {c["id"]: c["pixels"] for c in summary["classes"]}
    for cid in (1, 2, 3):
        assert counts[cid] == int((want_cls == cid).sum())


def test_float_nan_and_inf_are_nodata(tmp_path: Path) -> None:
    scene, truth = make_scene(tmp_path, bands=2, dtype="float32")
    model = make_model(tmp_path, scene, truth)
    predict_file(scene, model, tmp_path / "out", PredictOptions(workers=1))
    cls = read1(tmp_path / "out" / "classes.tif")
    assert cls[30, 5] == 255  # inf in one band only
    assert (cls[:3] == 255).all()
    assert (cls[10:14, 20:26] == 255).all()
    assert (cls[20:, :] != 255).sum() > 0


def test_outputs_are_georeferenced_cogs_with_colours_and_names(scene4, model4, tmp_path):
    scene, _ = scene4
    out = tmp_path / "out"
    summary = predict_file(scene, model4, out)
    with rasterio.open(scene) as src, rasterio.open(out / "classes.tif") as cls:
        assert cls.crs == src.crs
        assert cls.transform == src.transform
        assert (cls.width, cls.height) == (src.width, src.height)
        assert cls.nodata == 255
        assert cls.dtypes[0] == "uint8"
        cmap = cls.colormap(1)
        assert cmap[1] == (0x1F, 0x78, 0xB4, 255)
        assert cmap[3] == (0xE3, 0x1A, 0x1C, 255)
        assert cmap[255][3] == 0
        assert "1=water" in cls.descriptions[0]
        assert json.loads(cls.tags(1)["CLASS_NAMES"]) == {
            "1": "water",
            "2": "forest",
            "3": "built-up",
        }
    for name in ("classes.tif", "confidence.tif"):
        valid, errors, _ = cog_validate(str(out / name), quiet=True)
        assert valid, errors
    assert 'label="built-up"' in (out / "classes.qml").read_text()
    from PIL import Image

    with Image.open(out / "preview.png") as img:
        assert img.width > 45 and img.height >= 37
        # the map area holds the class colours
        colours = {img.getpixel((x, y)) for x in range(45) for y in range(5, 37)}
        assert (0x33, 0xA0, 0x2C) in colours
    assert summary["raster"]["crs"] == "EPSG:32633"
    assert summary["raster"]["pixel_area"] == 100.0
    assert summary["raster"]["area_unit"] == "metre^2"
    water = next(c for c in summary["classes"] if c["id"] == 1)
    assert water["area"] == water["pixels"] * 100.0
    assert json.loads((out / "summary.json").read_text())["status"] == "succeeded"


def test_all_nodata_input(tmp_path: Path, model4: Path) -> None:
    data = np.zeros((4, 20, 30), np.uint16)
    scene = write_raster(tmp_path / "empty.tif", data, nodata=0)
    summary = predict_file(scene, model4, tmp_path / "out")
    assert (read1(tmp_path / "out" / "classes.tif") == 255).all()
    assert (read1(tmp_path / "out" / "confidence.tif") == 255).all()
    assert summary["raster"]["valid_pixels"] == 0
    assert all(c["pixels"] == 0 for c in summary["classes"])


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output  # click 8.2+: stdout and stderr interleaved


def bad_inputs(tmp: Path, scene: Path) -> dict[str, tuple[Path, str]]:
    png = tmp / "photo.tif"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    empty = tmp / "empty.tif"
    empty.write_bytes(b"")
    text = tmp / "notes.tif"
    text.write_text("hello, this is not a raster\n")
    truncated = tmp / "truncated.tif"
    blob = scene.read_bytes()
    truncated.write_bytes(blob[: len(blob) * 2 // 3])
    garbage = tmp / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + b"\xff" * 200)
    two = write_raster(tmp / "two-bands.tif", np.ones((2, 20, 20), np.uint16), nodata=0)
    u8 = write_raster(tmp / "uint8.tif", np.ones((4, 20, 20), np.uint8), nodata=0)
    return {
        "png": (png, "is a PNG image, not a GeoTIFF"),
        "empty": (empty, "is empty (0 bytes)"),
        "text": (text, "is not a TIFF file"),
        "truncated": (truncated, "truncated"),
        "garbage": (garbage, "not a readable GeoTIFF"),
        "bands": (two, "has 2 data band(s); model test-model expects 4"),
        "dtype": (u8, "is uint8; model test-model expects uint16"),
    }


@pytest.mark.parametrize("case", ["png", "empty", "text", "truncated", "garbage", "bands", "dtype"])
def test_bad_input_exits_2_with_one_line_and_error_json(tmp_path, scene4, model4, case):
    path, message = bad_inputs(tmp_path, scene4[0])[case]
    before = path.read_bytes()
    out = tmp_path / "out"
    code, output = run_cli("predict", str(path), "--model", str(model4), "--out", str(out))
    assert code == 2, output
    assert message in output
    assert len(output.strip().splitlines()) == 1
    err = json.loads((out / "error.json").read_text())
    assert err["category"] == "invalid_input"
    assert message in err["message"]
    assert not (out / "summary.json").exists()
    assert path.read_bytes() == before  # the input is never modified


def test_pixel_cap(tmp_path, scene4, model4):
    code, output = run_cli(
        "predict",
        str(scene4[0]),
        "--model",
        str(model4),
        "--out",
        str(tmp_path / "o"),
        "--max-pixels",
        "1000",
    )
    assert code == 2
    assert "45 × 37 = 1,665 pixels, over the limit of 1,000" in output


def test_missing_model_exits_3(tmp_path, scene4):
    code, output = run_cli(
        "predict", str(scene4[0]), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")
    )
    assert code == 3
    # the one model source's words, as in S3 mode with a local RASTERDROP_MODEL_URI
    assert "error [model_error/model_missing]: no model.json in model directory" in output


def test_untrusted_type_in_model_is_refused(tmp_path, scene4, model4):
    import skops.io as sio

    class Sneaky:  # a type outside the trusted set
        def __init__(self):
            self.payload = [1, 2, 3]

    sio.dump({"estimator": Sneaky()}, model4 / "model.skops")
    code, output = run_cli(
        "predict", str(scene4[0]), "--model", str(model4), "--out", str(tmp_path / "o")
    )
    assert code == 3
    assert "refusing model.skops" in output and "Sneaky" in output


def test_cli_success_prints_where_outputs_are(tmp_path, scene4, model4):
    out = tmp_path / "out"
    code, output = run_cli(
        "predict", str(scene4[0]), "--model", str(model4), "--out", str(out), "--workers", "1"
    )
    assert code == 0, output
    assert str(out) in output
    assert {p.name for p in out.iterdir()} == {
        "classes.tif",
        "confidence.tif",
        "preview.png",
        "summary.json",
        "classes.qml",
        "review.gpkg",
    }
