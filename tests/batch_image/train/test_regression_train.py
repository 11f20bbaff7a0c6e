"""Training a regression: manifests, continuous labels (rasters of any numeric type, points
and polygons with ``value_field``), value-quantile strata, R²/RMSE/MAE/bias and the report."""

from __future__ import annotations

import json
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from rasterio.windows import Window

from batch_image.cli.train import train
from batch_image.errors import InvalidInputError
from batch_image.model.card import Target, load_model
from batch_image.model.stores import DirectoryStore
from batch_image.train import sampling
from batch_image.train.evaluation import regression_metrics
from batch_image.train.fetchers import local_fetcher
from batch_image.train.labels import RasterLabels, VectorLabels
from batch_image.train.manifest import manifest_from_dict
from batch_image.train.trainer import train_model
from tests.batch_image import real_files as rf
from tests.batch_image.train.helpers import predict_pixels, read, small_sample

SAMPLE = {"image": "scene.tif", "labels": "values.tif"}


def _manifest(**changes: object) -> dict:
    base = {
        "name": "biomass",
        "task": "regression",
        "target": {"name": "biomass", "unit": "t/ha"},
        "samples": [SAMPLE],
    }
    return {**base, **changes}


# --- manifest ------------------------------------------------------------------------------


def test_a_regression_manifest_has_a_target_and_no_classes() -> None:
    m = manifest_from_dict(_manifest())
    assert m.is_regression and m.target == Target("biomass", "t/ha") and m.classes == ()
    assert m.estimator_class() == "sklearn.ensemble.RandomForestRegressor"
    hgb = manifest_from_dict(_manifest(estimator="hgb"))
    assert hgb.estimator_class() == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert manifest_from_dict(_manifest(target=None)).target == Target("value", "")
    assert m.to_dict()["task"] == "regression"
    assert m.to_dict()["target"] == {"name": "biomass", "unit": "t/ha"}
    assert manifest_from_dict(m.to_dict()) == m


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": [{"id": 1, "name": "a"}]}, "a regression has a target, not classes"),
        ({"task": "ranking"}, "task must be one of classification, regression"),
        ({"target": {"unit": "m"}}, "target must be {name, unit}"),
        (
            {"samples": [{"image": "a.tif", "vector": "p.gpkg", "value_field": "h", "buffer": 1}]},
            "buffer is for class labels",
        ),
        ({"samples": [{"image": "a.tif", "vector": "p.gpkg"}]}, "needs value_field"),
    ],
)
def test_bad_regression_manifests_are_refused_in_one_line(changes: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as exc:
        manifest_from_dict(_manifest(**changes))
    assert exc.value.code == "manifest_invalid" and "\n" not in exc.value.message


def test_value_field_and_target_belong_to_a_regression() -> None:
    classes = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    sample = {"image": "a.tif", "vector": "p.gpkg", "value_field": "h"}
    with pytest.raises(InvalidInputError, match="value_field is for task: regression"):
        manifest_from_dict({"name": "c", "classes": classes, "samples": [sample]})
    with pytest.raises(InvalidInputError, match="target is for task: regression"):
        manifest_from_dict({"name": "c", "classes": classes, "samples": [SAMPLE], "target": "x"})


# --- continuous labels ---------------------------------------------------------------------


def _image(tmp: Path) -> Path:
    image, _ = rf.msk_sidecar(tmp)
    return image


def _value_raster(tmp: Path, values: np.ndarray, dtype: str, nodata: float | None) -> Path:
    path = tmp / f"values_{dtype}.tif"
    with rasterio.open(path, "w", **rf.profile(1, dtype, nodata=nodata)) as dst:
        dst.write(values.astype(dtype), 1)
    return path


@pytest.mark.parametrize(("dtype", "nodata"), [("int16", -9999), ("float32", None), ("uint8", 0)])
def test_value_rasters_of_any_type_honour_their_nodata(
    tmp_path: Path, dtype: str, nodata: float | None
) -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(1, 120, size=(rf.H, rf.W)).astype(np.float64)
    unlabelled = rng.random((rf.H, rf.W)) < 0.3
    stored = values.copy()
    stored[unlabelled] = np.nan if nodata is None else nodata
    labels = _value_raster(tmp_path, stored, dtype, nodata)
    with rasterio.open(_image(tmp_path)) as ds:
        got = RasterLabels(labels, ds, continuous=True).read(Window(0, 0, rf.W, rf.H))
    assert got.dtype == np.float64
    assert np.array_equal(np.isnan(got), unlabelled)
    assert np.array_equal(got[~unlabelled], values[~unlabelled])


def _centre(row: int, col: int) -> tuple[float, float]:
    t = rf.TRANSFORM
    return (t.c + (col + 0.5) * t.a, t.f + (row + 0.5) * t.e)


def _plots(path: Path, features: list[tuple[dict, object]], kind: str = "float") -> Path:
    schema = {"geometry": "Unknown", "properties": {"agb": kind}}
    with fiona.open(path, "w", driver="GPKG", crs=rf.CRS, schema=schema) as dst:
        for geom, value in features:
            dst.write({"geometry": geom, "properties": {"agb": value}})
    return path


def test_points_and_polygons_carry_their_value_to_their_own_pixels(tmp_path: Path) -> None:
    t = rf.TRANSFORM
    square = [[(t.c + 10 * t.a, t.f + 20 * t.e), (t.c + 14 * t.a, t.f + 20 * t.e),
               (t.c + 14 * t.a, t.f + 23 * t.e), (t.c + 10 * t.a, t.f + 23 * t.e),
               (t.c + 10 * t.a, t.f + 20 * t.e)]]  # fmt: skip
    path = _plots(
        tmp_path / "plots.gpkg",
        [
            ({"type": "Point", "coordinates": _centre(5, 7)}, 12.75),
            ({"type": "Point", "coordinates": _centre(30, 40)}, 0.0),  # zero is a value
            ({"type": "Polygon", "coordinates": square}, 88.5),
            ({"type": "Point", "coordinates": _centre(2, 2)}, None),  # unmeasured: nothing
        ],
    )
    with rasterio.open(_image(tmp_path)) as ds:
        got = VectorLabels(path, ds, "class", (), value_field="agb").read(Window(0, 0, rf.W, rf.H))
    want = np.full((rf.H, rf.W), np.nan)
    want[5, 7], want[30, 40] = 12.75, 0.0
    want[20:23, 10:14] = 88.5
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[~np.isnan(want)], want[~np.isnan(want)])


def test_text_values_that_are_not_numbers_are_refused(tmp_path: Path) -> None:
    path = _plots(
        tmp_path / "plots.gpkg",
        [({"type": "Point", "coordinates": _centre(5, 7)}, "tall"),
         ({"type": "Point", "coordinates": _centre(6, 7)}, "12.5")],
        kind="str",
    )  # fmt: skip
    with rasterio.open(_image(tmp_path)) as ds, pytest.raises(InvalidInputError) as exc:
        VectorLabels(path, ds, "class", (), value_field="agb")
    assert exc.value.code == "labels_not_numeric"
    assert "['tall']" in exc.value.message and "plots.gpkg" in exc.value.message


# --- strata and metrics --------------------------------------------------------------------


class _Grid:
    """A label source from an array (the sampling tests' stand-in for a raster)."""

    description = "grid"

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def read(self, window: Window) -> np.ndarray:
        r, c = int(window.row_off), int(window.col_off)
        return self.values[r : r + int(window.height), c : c + int(window.width)]

    def close(self) -> None:
        return None


def test_value_strata_keep_rare_high_values_and_cap_each_stratum(tmp_path: Path) -> None:
    image = _image(tmp_path)
    rng = np.random.default_rng(0)
    values = rng.exponential(5.0, size=(rf.H, rf.W))  # skewed: few high values
    with rasterio.open(image) as ds:
        valid = ds.read_masks(1) > 0
    got = sampling.sample_values([image], [_Grid(values)], 30, seed=1, strata=5)
    assert got.targets is not None and len(got.edges) == 4
    assert np.allclose(got.edges, np.quantile(values, [0.2, 0.4, 0.6, 0.8]))
    assert sorted(got.sampled) == [0, 1, 2, 3, 4]
    assert all(n == 30 for n in got.sampled.values())
    assert sum(got.found.values()) == int(valid.sum())
    assert np.array_equal(got.targets, values[got.rows, got.cols])  # the very pixels' values
    assert (got.targets[got.labels == 4] >= got.edges[-1]).all()
    again = sampling.sample_values([image], [_Grid(values)], 30, seed=1, strata=5)
    assert np.array_equal(again.targets, got.targets)


def test_regression_metrics_on_a_known_case() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.0, 5.0])
    m = regression_metrics(y, pred)
    assert m == {
        "n": 4,
        "r2": round(1 - (0.25 + 0 + 1 + 1) / 5.0, 6),
        "rmse": round(np.sqrt(2.25 / 4), 6),
        "mae": round(2.5 / 4, 6),
        "bias": round(0.5 / 4, 6),
    }


# --- the whole training --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("regression")
    paths = small_sample(d, values=True)
    result = CliRunner().invoke(
        train,
        ["--image", str(paths.scene), "--labels", str(paths.values), "--out", str(d / "model"),
         "--name", "biomass", "--trees", "20", "--task", "regression", "--target", "biomass",
         "--unit", "t/ha"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return d, paths, result


def test_quick_form_regression_writes_card_metrics_and_plots(trained) -> None:
    d, paths, result = trained
    assert sorted(p.name for p in (d / "model").iterdir()) == [
        "metrics.json", "model.json", "model.skops", "observed_predicted_blocked.png",
        "observed_predicted_random.png", "report.md",
    ]  # fmt: skip
    estimator, card = load_model(d / "model")
    assert type(estimator).__name__ == "RandomForestRegressor"
    assert card.is_regression and card.target == Target("biomass", "t/ha")
    report = json.loads((d / "model" / "metrics.json").read_text())
    assert report["task"] == "regression"
    counts = report["value_counts"]
    labelled = np.isfinite(read(paths.values)[0])
    assert counts["found"] == int(labelled.sum()) == counts["sampled"]
    for scheme in ("blocked", "random"):
        m = report["evaluation"][scheme]
        assert set(m) == {"folds", "n", "r2", "rmse", "mae", "bias"}
        assert m["n"] == counts["sampled"] and 0.5 < m["r2"] <= 1.0 and m["rmse"] > 0
    assert card.extra["metrics"]["blocked_cv"]["r2"] == report["evaluation"]["blocked"]["r2"]
    assert f"blocked CV: R2 {report['evaluation']['blocked']['r2']:.3f}" in result.output
    md = (d / "model" / "report.md").read_text()
    assert "| scheme | R² | RMSE | MAE | bias |" in md
    assert "![blocked CV observed vs predicted](observed_predicted_blocked.png)" in md
    assert Image.open(d / "model" / "observed_predicted_blocked.png").size == (488, 488)


def test_the_model_predicts_its_sample_values_closely(trained) -> None:
    d, paths, _ = trained
    estimator, card = load_model(d / "model")
    image = read(paths.scene)
    values = read(paths.values)[0]
    rows, cols = np.nonzero(np.isfinite(values))
    pred = predict_pixels(estimator, card, image[:, rows, cols].T)
    assert np.corrcoef(pred, values[rows, cols])[0, 1] > 0.95


def test_run_summary_has_task_target_and_regression_headline(tmp_path: Path) -> None:
    paths = small_sample(tmp_path, values=True)
    spec = manifest_from_dict(
        _manifest(
            samples=[{"image": paths.scene.name, "labels": paths.values.name}],
            estimator={"type": "extra_trees", "params": {"n_estimators": 10}},
            cv={"folds": 3, "block_size": 64},
        )
    )
    result = train_model(spec, local_fetcher(tmp_path), DirectoryStore(tmp_path / "m"))
    summary = result.summary()
    assert summary["task"] == "regression"
    assert summary["target"] == {"name": "biomass", "unit": "t/ha"}
    assert summary["classes"] == []
    assert set(summary["metrics"]["blocked_cv"]) == {"folds", "n", "r2", "rmse", "mae", "bias"}
    assert type(result.estimator).__name__ == "ExtraTreesRegressor"


def test_constant_values_are_refused(tmp_path: Path) -> None:
    paths = small_sample(tmp_path, values=True)
    with rasterio.open(paths.values) as src:
        v = src.read(1)
        profile = src.profile
    with rasterio.open(tmp_path / "flat.tif", "w", **profile) as dst:
        dst.write(np.where(np.isfinite(v), 7.0, np.nan).astype(np.float32), 1)
    spec = manifest_from_dict(_manifest(samples=[{"image": "scene.tif", "labels": "flat.tif"}]))
    with pytest.raises(InvalidInputError, match=r"every labelled pixel has the value 7\.0") as exc:
        train_model(spec, local_fetcher(tmp_path), DirectoryStore(tmp_path / "m"))
    assert exc.value.code == "constant_target"
