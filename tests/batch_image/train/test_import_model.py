"""``import-model``: a notebook's fitted pipeline predicts exactly as in the notebook; pickles
need --trust-pickle; skops files with unexpected types and mismatched models are refused."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import rasterio
import skops.io as sio
import yaml
from click.testing import CliRunner
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from batch_image.cli.main import main
from batch_image.model.card import load_model
from batch_image.model.features import compute_features
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.raster.validity import ValidityRule
from tests.conftest import CLASSES, make_scene, regression_target


def _pixels(scene: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data)
    return data.reshape(data.shape[0], -1)[:, valid.reshape(-1)].T.astype(np.float32), valid


def _ndvi(x: np.ndarray) -> np.ndarray:
    nd = (x[:, 3] - x[:, 2]) / np.where(x[:, 3] + x[:, 2] == 0, 1, x[:, 3] + x[:, 2])
    return np.column_stack([x, nd])


@pytest.fixture
def notebook(tmp_path: Path):
    """What a user has: a scene and a scaler + logistic regression fitted in a notebook."""
    scene, truth = make_scene(tmp_path)
    x, valid = _pixels(scene)
    y = truth[valid]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(_ndvi(x), y)
    classes = tmp_path / "classes.yaml"
    classes.write_text(yaml.safe_dump([{"id": c.id, "name": c.name, "colour": c.colour}
                                       for c in CLASSES]))  # fmt: skip
    return scene, model, classes, x, valid


def _run(*args: str) -> object:
    return CliRunner().invoke(main, ["import-model", *args])


def _bands_args(classes: Path) -> list[str]:
    return ["--classes", str(classes), "--bands", "blue,green,red,nir",
            "--dtype", "uint16", "--derived", "ndvi:nir:red"]  # fmt: skip


def test_imported_pipeline_predicts_exactly_as_in_the_notebook(tmp_path: Path, notebook) -> None:
    scene, model, classes, x, valid = notebook
    joblib.dump(model, tmp_path / "model.joblib")
    result = _run(str(tmp_path / "model.joblib"), "--out", str(tmp_path / "m"), "--name", "nb",
                  "--trust-pickle", *_bands_args(classes))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "imported model.joblib as classification model nb" in result.output
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.skops"]
    _, card = load_model(tmp_path / "m")
    assert card.features.names(card.band_names) == ["blue", "green", "red", "nir", "ndvi"]
    assert [c.name for c in card.classes] == [c.name for c in CLASSES]
    feats = compute_features(x, card.features, card.band_names)
    np.testing.assert_allclose(feats, _ndvi(x), rtol=1e-6)
    predict_file(scene, tmp_path / "m", tmp_path / "out", PredictOptions(workers=2,
                 target_pixels=256))  # fmt: skip
    with rasterio.open(tmp_path / "out" / "classes.tif") as src:
        got = src.read(1)
    assert np.array_equal(got[valid], model.predict(feats).astype(np.uint8))
    with rasterio.open(tmp_path / "out" / "confidence.tif") as src:
        conf = src.read(1)
    want = np.rint(model.predict_proba(feats).max(axis=1) * 100).astype(np.uint8)
    assert np.array_equal(conf[valid], want)


def test_a_pickle_without_trust_pickle_is_refused(tmp_path: Path, notebook) -> None:
    _, model, classes, *_ = notebook
    joblib.dump(model, tmp_path / "model.pkl")
    result = _run(str(tmp_path / "model.pkl"), "--out", str(tmp_path / "m"), *_bands_args(classes))
    assert result.exit_code == 2
    assert "refusing to unpickle model.pkl" in result.output and "--trust-pickle" in result.output
    assert not (tmp_path / "m").exists()


def test_a_skops_file_with_an_unexpected_type_is_refused(tmp_path: Path, notebook) -> None:
    _, _, classes, x, _ = notebook
    # a notebook's own function inside the pipeline: skops cannot vouch for it
    odd = make_pipeline(FunctionTransformer(_ndvi), LogisticRegression(max_iter=200))
    odd.fit(x, np.arange(x.shape[0]) % 3 + 1)
    sio.dump(odd, tmp_path / "odd.skops")
    result = _run(str(tmp_path / "odd.skops"), "--out", str(tmp_path / "m"), "--bands",
                  "blue,green,red,nir", "--classes", str(classes))  # fmt: skip
    assert result.exit_code == 3
    assert "outside the trusted set" in result.output
    assert "test_import_model._ndvi" in result.output
    assert not (tmp_path / "m").exists()


def test_skops_file_imports_without_trust_and_wrong_shapes_are_refused(
    tmp_path: Path, notebook
) -> None:
    _, model, classes, *_ = notebook
    sio.dump(model, tmp_path / "model.skops")
    ok = _run(str(tmp_path / "model.skops"), "--out", str(tmp_path / "m"), *_bands_args(classes))
    assert ok.exit_code == 0, ok.output
    few = _run(str(tmp_path / "model.skops"), "--out", str(tmp_path / "m2"), "--bands", "a,b,c",
               "--classes", str(classes))  # fmt: skip
    assert few.exit_code == 2 and "expects 5 features, the card's recipe gives 3" in few.output
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump([{"id": 1, "name": "water"}, {"id": 2, "name": "forest"}]))
    args = ["--bands", "blue,green,red,nir", "--derived", "ndvi:nir:red", "--classes", str(other)]
    wrong = _run(str(tmp_path / "model.skops"), "--out", str(tmp_path / "m3"), *args)
    assert wrong.exit_code == 2 and "model classes [1, 2, 3] are not all listed" in wrong.output


def test_imported_regressor_evaluates_on_a_manifest(tmp_path: Path) -> None:
    scene, _ = make_scene(tmp_path)
    x, valid = _pixels(scene)
    y = regression_target(x)
    reg = RandomForestRegressor(n_estimators=5, random_state=0, n_jobs=1).fit(x, y)
    sio.dump(reg, tmp_path / "reg.skops")
    with rasterio.open(scene) as src:
        profile = src.profile
    values = np.full(valid.shape, np.nan, np.float32)
    values[valid] = y
    profile.update(count=1, dtype="float32", nodata=float("nan"))
    with rasterio.open(tmp_path / "values.tif", "w", **profile) as dst:
        dst.write(values, 1)
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump({
        "name": "check", "task": "regression", "target": {"name": "biomass", "unit": "t/ha"},
        "samples": [{"image": scene.name, "labels": "values.tif"}],
        "max_samples_per_class": 100000, "min_samples_per_class": 1,
    }))  # fmt: skip
    result = _run(str(tmp_path / "reg.skops"), "--out", str(tmp_path / "m"), "--task",
                  "regression", "--target", "biomass", "--unit", "t/ha", "--dtype", "uint16",
                  "--evaluate", str(tmp_path / "manifest.yaml"))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "m" / "metrics.json").read_text())
    m = report["evaluation"]["imported"]
    assert m["n"] == int(valid.sum()) and m["r2"] > 0.9
    assert f"R2 {m['r2']:.3f}" in result.output
    assert "| n | R² | RMSE | MAE | bias |" in (tmp_path / "m" / "report.md").read_text()
    _, card = load_model(tmp_path / "m")
    assert card.is_regression and card.target.unit == "t/ha" and card.band_names[0] == "b1"
