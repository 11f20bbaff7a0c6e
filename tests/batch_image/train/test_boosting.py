"""LightGBM and XGBoost: trained from a manifest (classification and regression), saved as
skops with exactly their estimator types trusted, predicted exactly, importable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import skops.io as sio
import yaml
from click.testing import CliRunner
from lightgbm import LGBMClassifier
from xgboost import XGBClassifier

from batch_image.cli.main import main
from batch_image.errors import ModelError
from batch_image.model.card import TRUSTED_TYPES, load_model
from batch_image.model.features import compute_features
from batch_image.model.stores import DirectoryStore
from batch_image.predict import engine
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.raster.validity import ValidityRule
from batch_image.train.fetchers import local_fetcher
from batch_image.train.manifest import manifest_from_dict
from batch_image.train.trainer import train_model
from tests.batch_image.train.helpers import small_sample
from tests.conftest import CLASSES, make_scene

SAMPLE_CLASSES = [
    {"id": i, "name": n}
    for i, n in enumerate(["water", "forest", "grass", "crop", "built", "bare"], start=1)
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("boost")
    return d, small_sample(d, width=300, height=240, values=True)


def _valid_features(scene: Path, card) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data)
    pixels = data.reshape(data.shape[0], -1)[:, valid.reshape(-1)].T
    return compute_features(pixels, card.features, card.band_names), valid


@pytest.mark.parametrize(("kind", "cls"), [("lightgbm", "LGBMClassifier"),
                                           ("xgboost", "XGBClassifier")])  # fmt: skip
def test_boosted_classifier_trains_and_predicts_exactly(sample, kind: str, cls: str) -> None:
    d, paths = sample
    spec = manifest_from_dict({
        "name": kind, "classes": SAMPLE_CLASSES,
        "samples": [{"image": paths.scene.name, "labels": paths.labels.name}],
        "estimator": {"type": kind, "params": {"n_estimators": 20}},
        "min_samples_per_class": 5, "cv": {"folds": 2, "block_size": 32},
    })  # fmt: skip
    result = train_model(spec, local_fetcher(d), DirectoryStore(d / f"m-{kind}"), workers=2)
    assert type(result.estimator).__name__ == cls
    assert result.report["evaluation"]["blocked"]["overall_accuracy"] > 0.8
    estimator, card = load_model(d / f"m-{kind}")
    found = set(sio.get_untrusted_types(file=d / f"m-{kind}" / "model.skops"))
    booster = {"lightgbm": "lightgbm.basic.Booster", "xgboost": "xgboost.core.Booster"}[kind]
    own = {t for t in TRUSTED_TYPES if t.endswith(cls)} | {booster}
    assert found - {"collections.OrderedDict"} == own
    x, valid = _valid_features(paths.scene, card)
    proba = estimator.predict_proba(x)
    ids = np.asarray(card.estimator_class_ids(estimator.classes_))
    if kind == "xgboost":  # fitted on indexes 0..5, the card maps them to the ids
        assert list(estimator.classes_) == list(range(6)) and card.class_index == (1, 2, 3, 4, 5, 6)
    else:
        assert card.class_index == ()
    out = d / f"out-{kind}"
    predict_file(paths.scene, d / f"m-{kind}", out,
                 PredictOptions(workers=2, target_pixels=4096, probabilities=True))  # fmt: skip
    with rasterio.open(out / "classes.tif") as src:
        classes = src.read(1)
    with rasterio.open(out / "probabilities.tif") as src:
        bands = src.read()
    assert np.array_equal(classes[valid], ids[proba.argmax(axis=1)].astype(np.uint8))
    for k in range(bands.shape[0]):
        assert np.array_equal(bands[k][valid], np.rint(proba[:, k] * 100).astype(np.uint8))


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_boosted_regressor_trains_and_predicts_exactly(sample, kind: str) -> None:
    d, paths = sample
    spec = manifest_from_dict({
        "name": f"{kind}-reg", "task": "regression", "target": {"name": "biomass", "unit": "t/ha"},
        "samples": [{"image": paths.scene.name, "labels": paths.values.name}],
        "estimator": {"type": kind, "params": {"n_estimators": 20}},
        "min_samples_per_class": 5, "cv": {"folds": 2, "block_size": 32},
    })  # fmt: skip
    result = train_model(spec, local_fetcher(d), DirectoryStore(d / f"r-{kind}"), workers=2)
    assert result.report["evaluation"]["blocked"]["r2"] > 0.5
    estimator, card = load_model(d / f"r-{kind}")
    x, valid = _valid_features(paths.scene, card)
    out = d / f"rout-{kind}"
    doc = predict_file(paths.scene, d / f"r-{kind}", out, PredictOptions(workers=2,
                       target_pixels=4096))  # fmt: skip
    assert "uncertainty" not in doc["outputs"]  # not a forest
    with rasterio.open(out / "prediction.tif") as src:
        got = src.read(1)
    assert np.array_equal(got[valid], estimator.predict(x).astype(np.float32))


def test_threads_are_set_on_the_boosters_for_the_windows() -> None:
    x = np.random.default_rng(0).random((60, 3)).astype(np.float32)
    y = np.arange(60) % 2
    lgbm = LGBMClassifier(n_estimators=2, verbose=-1, n_jobs=8).fit(x, y)
    xgb = XGBClassifier(n_estimators=2, n_jobs=8).fit(x, y)
    assert engine.configure_threads(lgbm, 4, "windows") == (4, 1)
    assert lgbm.n_jobs == 1
    engine.configure_threads(xgb, 4, "windows")
    assert xgb.n_jobs == 1
    assert xgb.get_booster().attr("nthread") is None  # a parameter, not an attribute
    config = xgb.get_booster().save_config()
    assert '"nthread":"1"' in config.replace(" ", "")
    engine.configure_threads(xgb, 3, "model")
    assert '"nthread":"3"' in xgb.get_booster().save_config().replace(" ", "")


def test_a_notebook_xgboost_classifier_imports_with_its_classes_file(tmp_path: Path) -> None:
    scene, truth = make_scene(tmp_path)
    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data)
    x = data.reshape(4, -1)[:, valid.reshape(-1)].T.astype(np.float32)
    model = XGBClassifier(n_estimators=10).fit(x, truth[valid] - 1)  # 0..2, as XGBoost wants
    sio.dump(model, tmp_path / "xgb.skops")
    classes = tmp_path / "classes.yaml"
    classes.write_text(yaml.safe_dump([{"id": c.id, "name": c.name, "colour": c.colour}
                                       for c in CLASSES]))  # fmt: skip
    result = CliRunner().invoke(main, ["import-model", str(tmp_path / "xgb.skops"), "--out",
                                       str(tmp_path / "m"), "--classes", str(classes),
                                       "--dtype", "uint16"])  # fmt: skip
    assert result.exit_code == 0, result.output
    _, card = load_model(tmp_path / "m")
    assert card.class_index == (1, 2, 3)
    predict_file(scene, tmp_path / "m", tmp_path / "out", PredictOptions(workers=1))
    with rasterio.open(tmp_path / "out" / "classes.tif") as src:
        got = src.read(1)
    assert np.array_equal(got[valid], (model.predict(x) + 1).astype(np.uint8))


def test_other_lightgbm_types_stay_untrusted(tmp_path: Path) -> None:
    from batch_image.model.card import check_trusted_types

    x = np.random.default_rng(1).random((40, 2))
    booster = LGBMClassifier(n_estimators=2, verbose=-1).fit(x, np.arange(40) % 2).booster_
    sio.dump({"booster": booster, "dataset_cls": __import__("lightgbm").Dataset},
             tmp_path / "odd.skops")  # fmt: skip
    with pytest.raises(ModelError, match=r"lightgbm\.basic\.Dataset") as exc:
        check_trusted_types(tmp_path / "odd.skops")
    assert exc.value.code == "model_untrusted"
