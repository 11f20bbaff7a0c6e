"""Regression predictions: exact against the model, their files, summary, preview and style;
and the opt-in class probabilities (one pass, every band = rint(predict_proba × 100))."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import rasterio
from PIL import Image

from batch_image.errors import ModelError
from batch_image.model.card import ModelCard, Target, load_card, load_estimator, load_model
from batch_image.model.features import compute_features
from batch_image.predict import regression
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.raster.validity import ValidityRule
from tests.conftest import make_model, make_regression_model, make_scene

ROOT = Path(__file__).resolve().parents[3]
SMALL_WINDOWS = PredictOptions(workers=2, target_pixels=256)  # many windows, 2 at once


def _pixels(scene: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data)
    return data, valid, valid.shape


def _features(scene: Path, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    data, valid, _ = _pixels(scene)
    flat = valid.reshape(-1)
    x = compute_features(data.reshape(data.shape[0], -1)[:, flat].T, card.features,
                         card.band_names)  # fmt: skip
    return x, valid


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = make_scene(tmp_path_factory.mktemp("reg"), width=61, height=53, seed=4)
    return path


@pytest.mark.parametrize("kind", ["forest", "extra_trees", "hgb"])
def test_windowed_regression_equals_whole_array_predict(
    tmp_path: Path, scene: Path, kind: str
) -> None:
    model = make_regression_model(tmp_path, scene, estimator=kind, trees=7)
    estimator, card = load_model(model)
    x, valid = _features(scene, card)
    expected = np.asarray(estimator.predict(x)).astype(np.float32)
    doc = predict_file(scene, model, tmp_path / "out", SMALL_WINDOWS)
    assert doc["windows"] > 10
    with rasterio.open(tmp_path / "out" / "prediction.tif") as src:
        got = src.read(1)
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.descriptions == ("biomass (t/ha)",)
        assert src.units == ("t/ha",)
        assert src.tags(1)["UNITS"] == "t/ha"
    assert np.array_equal(got[valid], expected)  # exact, not close
    assert np.isnan(got[~valid]).all()
    forest = kind != "hgb"
    assert (tmp_path / "out" / "uncertainty.tif").exists() == forest
    assert ("uncertainty" in doc["outputs"]) == forest
    if forest:
        trees = np.stack([t.predict(x.astype(np.float32)) for t in estimator.estimators_])
        with rasterio.open(tmp_path / "out" / "uncertainty.tif") as src:
            spread = src.read(1)
        assert np.array_equal(spread[valid], trees.std(axis=0).astype(np.float32))
        assert np.isnan(spread[~valid]).all()
        assert spread[valid].max() > 0


def test_regression_summary_holds_the_values_statistics(tmp_path: Path, scene: Path) -> None:
    model = make_regression_model(tmp_path, scene)
    estimator, card = load_model(model)
    x, _ = _features(scene, card)
    v = np.asarray(estimator.predict(x)).astype(np.float32).astype(np.float64)
    doc = predict_file(scene, model, tmp_path / "out", SMALL_WINDOWS)
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written == doc
    assert doc["task"] == "regression" and doc["classes"] == []
    assert "postprocess" not in doc
    assert doc["outputs"] == {
        "preview": "preview.png",
        "qgis_style": "prediction.qml",
        "prediction": "prediction.tif",
        "uncertainty": "uncertainty.tif",
    }
    values = doc["values"]
    assert (values["name"], values["unit"], values["pixels"]) == ("biomass", "t/ha", v.size)
    assert values["min"] == round(v.min(), 6) and values["max"] == round(v.max(), 6)
    assert values["mean"] == pytest.approx(v.mean(), abs=1e-6)
    assert values["std"] == pytest.approx(v.std(), abs=1e-5)
    step = (v.max() - v.min()) / regression.FINE_BINS
    for p in regression.PERCENTILES:
        assert abs(values["percentiles"][f"p{p}"] - np.percentile(v, p)) <= step + 1e-6
    hist, edges = np.histogram(v, bins=regression.HISTOGRAM_BINS, range=(v.min(), v.max()))
    assert values["histogram"]["edges"] == [round(e, 6) for e in edges]
    assert sum(values["histogram"]["counts"]) == v.size
    assert np.abs(np.array(values["histogram"]["counts"]) - hist).sum() <= 2
    assert doc["raster"]["valid_pixels"] == v.size


def test_regression_preview_and_qgis_style_share_the_ramp(tmp_path: Path, scene: Path) -> None:
    model = make_regression_model(tmp_path, scene)
    doc = predict_file(scene, model, tmp_path / "out", PredictOptions(workers=1))
    low, high = doc["values"]["percentiles"]["p2"], doc["values"]["percentiles"]["p98"]
    qml = (tmp_path / "out" / "prediction.qml").read_text()
    style = ElementTree.fromstring(qml)  # noqa: S314 - our own file
    shader = style.find(".//colorrampshader")
    assert shader is not None and shader.get("colorRampType") == "INTERPOLATED"
    items = shader.findall("item")
    assert [i.get("color") for i in items] == list(regression.RAMP)
    assert float(items[0].get("value")) == pytest.approx(low)
    assert float(items[-1].get("value")) == pytest.approx(high)
    img = np.asarray(Image.open(tmp_path / "out" / "preview.png").convert("RGB"))
    _, valid, (h, w) = _pixels(scene)
    assert img.shape[0] >= h and img.shape[1] > w
    # nodata is light grey, the colour bar runs from the ramp's last colour to its first
    row, col = np.argwhere(~valid)[0]
    assert tuple(img[row, col]) == regression.NODATA_PREVIEW
    bar_h = regression.bar_height(h)
    bar = img[regression.BAR_TOP : regression.BAR_TOP + bar_h, w + 12 + regression.BAR_WIDTH // 2]
    ramp = regression.ramp_lut(bar_h)[::-1]  # high values at the top, inside a black outline
    assert bar[0].tolist() == bar[-1].tolist() == [0, 0, 0]
    assert np.array_equal(bar[1:-1], ramp[1:-1])
    assert ramp[0].tolist() == [0xFD, 0xE7, 0x25] and ramp[-1].tolist() == [0x44, 0x01, 0x54]


def test_colourize_maps_the_stretch_onto_the_ramp_and_nan_to_grey() -> None:
    rgb = regression.colourize(np.array([[0.0, 5.0, 10.0, np.nan, 99.0]]), 0.0, 10.0)
    lut = regression.ramp_lut()
    assert rgb[0, 0].tolist() == lut[0].tolist() == [0x44, 0x01, 0x54]
    assert rgb[0, 2].tolist() == lut[-1].tolist() == [0xFD, 0xE7, 0x25]
    assert rgb[0, 1].tolist() == lut[128].tolist()
    assert tuple(rgb[0, 3]) == regression.NODATA_PREVIEW
    assert rgb[0, 4].tolist() == lut[-1].tolist()  # clipped at the stretch's top


def test_percentiles_from_a_histogram_interpolate_inside_the_bins() -> None:
    counts = np.array([10, 0, 30, 60])  # 100 values over [0, 4]
    got = regression.percentiles_from(counts, 0.0, 4.0)
    assert got["p5"] == 0.5  # halfway through the first bin
    assert got["p25"] == 2.5  # 15 of the 30 in the third bin
    assert got["p50"] == pytest.approx(3 + 10 / 60)
    assert regression.percentiles_from(np.zeros(4, np.int64), 0.0, 1.0) == {}


def test_card_task_and_target_round_trip_and_are_checked(tmp_path: Path, scene: Path) -> None:
    model = make_regression_model(tmp_path, scene)
    card = load_card(model)
    assert card.is_regression and card.target == Target("biomass", "t/ha")
    data = json.loads((model / "model.json").read_text())
    assert data["task"] == "regression" and data["target"] == {"name": "biomass", "unit": "t/ha"}
    assert data["classes"] == []
    assert ModelCard.from_dict(data) == card
    with pytest.raises(ModelError, match="lists classes"):
        ModelCard.from_dict({**data, "classes": [{"id": 1, "name": "a", "colour": "#000000"}]})
    with pytest.raises(ModelError, match="names no target"):
        ModelCard.from_dict({k: v for k, v in data.items() if k != "target"})
    with pytest.raises(ModelError, match="task 'clustering'"):
        ModelCard.from_dict({**data, "task": "clustering"})
    old = {k: v for k, v in data.items() if k not in ("task", "target")}
    old["classes"] = [{"id": 1, "name": "a", "colour": "#000000"}]
    assert ModelCard.from_dict(old).task == "classification"  # cards before tasks


def test_a_classifier_behind_a_regression_card_is_refused(tmp_path: Path, scene: Path) -> None:
    clf = make_model(tmp_path, scene, np.ones((53, 61), np.uint8) + (np.arange(61) % 3))
    reg = make_regression_model(tmp_path, scene)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "model.skops").write_bytes((clf / "model.skops").read_bytes())
    (tmp_path / "mixed" / "model.json").write_bytes((reg / "model.json").read_bytes())
    with pytest.raises(ModelError, match="not a fitted regressor") as exc:
        load_estimator(tmp_path / "mixed", load_card(tmp_path / "mixed"))
    assert exc.value.code == "model_unsupported"


def test_a_card_whose_recipe_differs_from_the_estimator_is_refused(
    tmp_path: Path, scene: Path
) -> None:
    reg = make_regression_model(tmp_path, scene)
    data = json.loads((reg / "model.json").read_text())
    data["features"]["bands"] = [1, 2]
    (reg / "model.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="expects 4 features, the card's recipe gives 2") as exc:
        load_model(reg)
    assert exc.value.code == "model_card_mismatch"


# --- class probabilities ------------------------------------------------------------------------


def test_probabilities_are_every_class_from_the_same_pass(tmp_path: Path) -> None:
    scene, truth = make_scene(tmp_path, width=45, height=37)
    model = make_model(tmp_path, scene, truth)
    estimator, card = load_model(model)
    x, valid = _features(scene, card)
    expected = np.rint(estimator.predict_proba(x) * 100).astype(np.uint8)
    plain = predict_file(scene, model, tmp_path / "plain", SMALL_WINDOWS)
    opts = PredictOptions(workers=2, target_pixels=256, probabilities=True)
    doc = predict_file(scene, model, tmp_path / "out", opts)
    assert doc["outputs"]["probabilities"] == "probabilities.tif"
    assert "probabilities" not in plain["outputs"]
    assert doc["classes"] == plain["classes"]
    with rasterio.open(tmp_path / "out" / "probabilities.tif") as src:
        bands = src.read()
        assert src.count == len(estimator.classes_) and src.dtypes[0] == "uint8"
        assert src.nodata == 255
        names = {c.id: c.name for c in card.classes}
        assert src.descriptions == tuple(names[int(c)] for c in estimator.classes_)
    for k in range(bands.shape[0]):
        assert np.array_equal(bands[k][valid], expected[:, k])
        assert (bands[k][~valid] == 255).all()
    for name in ("classes.tif", "confidence.tif"):
        with (
            rasterio.open(tmp_path / "out" / name) as a,
            rasterio.open(tmp_path / "plain" / name) as b,
        ):
            assert np.array_equal(a.read(), b.read())
    out = subprocess.run(
        ["rio", "cogeo", "validate", str(tmp_path / "out" / "probabilities.tif")],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={"PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert out.returncode == 0 and "is a valid cloud optimized GeoTIFF" in out.stdout


def test_probabilities_flag_on_the_command_line_and_ignored_for_a_regression(
    tmp_path: Path, scene: Path
) -> None:
    from click.testing import CliRunner

    from batch_image.cli.main import main

    reg = make_regression_model(tmp_path, scene)
    result = CliRunner().invoke(
        main, ["predict", str(scene), "--model", str(reg), "--out", str(tmp_path / "o"),
               "--probabilities", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "prediction.qml", "prediction.tif", "preview.png", "summary.json", "uncertainty.tif",
    ]  # fmt: skip


def test_scratch_space_counts_the_real_bytes_of_every_layer(tmp_path: Path, scene: Path) -> None:
    from batch_image.predict.pipeline import output_bytes

    clf = load_card(make_model(tmp_path, scene, np.ones((53, 61), np.uint8) + (np.arange(61) % 3)))
    reg = load_card(make_regression_model(tmp_path, scene))
    assert output_bytes(clf, 1000) == 4 * 1000  # classes + confidence, scratch and COG
    assert output_bytes(clf, 1000, probabilities=True) == 2 * (2 + 3) * 1000  # 3 classes
    assert output_bytes(reg, 1000) == 2 * (4 + 4) * 1000  # float32 prediction + uncertainty
    assert output_bytes(reg, 1000, probabilities=True) == output_bytes(reg, 1000)
