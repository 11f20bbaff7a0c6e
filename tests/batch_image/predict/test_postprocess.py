"""Minimum mapping unit, class polygons and the accuracy sample after prediction."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from rasterio import features

from batch_image.errors import InvalidInputError, ModelError
from batch_image.model.card import load_model
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.predict.postprocess import BYTES_PER_PIXEL, PostProcess
from tests.batch_image.predict.test_local import read1, reference
from tests.conftest import make_model, make_scene


@pytest.fixture
def noisy(tmp_path: Path) -> tuple[Path, Path]:
    """A scene with salt-and-pepper in its prediction (noisy pixels), and its model."""
    scene, truth = make_scene(tmp_path, width=90, height=70, seed=3)
    model = make_model(tmp_path, scene, truth, trees=3)
    rng = np.random.default_rng(1)
    with rasterio.open(scene, "r+") as dst:  # 6 % of pixels take another pixel's spectrum
        data = dst.read()
        rows, cols = rng.integers(3, 70, 380), rng.integers(0, 90, 380)
        data[:, rows, cols] = data[:, rng.integers(3, 70, 380), rng.integers(0, 90, 380)]
        dst.write(data)
    return scene, model


def _patch_sizes(classes: np.ndarray, connectivity: int) -> list[int]:
    valid = classes != 255
    sizes = []
    for cid in np.unique(classes[valid]):
        mask = (classes == cid).astype(np.uint8)
        for _, value in features.shapes(mask, mask=mask.astype(bool), connectivity=connectivity):
            sizes.append(value)
    return sizes


@pytest.mark.parametrize("connectivity", [4, 8])
def test_mmu_equals_gdal_sieve_of_the_whole_raster_and_the_summary_counts_after_it(
    tmp_path, noisy, connectivity
):
    scene, model = noisy
    plain, _ = reference(scene, model)
    options = PredictOptions(postprocess=PostProcess(mmu_pixels=6, connectivity=connectivity))
    summary = predict_file(scene, model, tmp_path / "out", options)
    got = read1(tmp_path / "out" / "classes.tif")
    expected = features.sieve(plain, 6, mask=plain != 255, connectivity=connectivity)
    expected[plain == 255] = 255
    assert np.array_equal(got, expected)
    assert not np.array_equal(got, plain)  # the sieve did something here
    assert np.array_equal(got == 255, plain == 255)  # nodata neither grows nor shrinks
    counts = {c["id"]: c["pixels"] for c in summary["classes"]}
    assert counts == {cid: int((got == cid).sum()) for cid in counts}
    conf = read1(tmp_path / "out" / "confidence.tif")
    for c in summary["classes"]:
        sel = got == c["id"]
        assert c["mean_confidence"] == pytest.approx(round(conf[sel].mean(), 2))
    assert summary["postprocess"] == {
        "mmu_pixels": 6,
        "connectivity": connectivity,
        "changed_pixels": int((got != plain).sum()),
        "source": "stack",
    }
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["postprocess"] == summary["postprocess"]


def test_without_postprocessing_nothing_changes(tmp_path, noisy):
    scene, model = noisy
    summary = predict_file(scene, model, tmp_path / "out")
    assert "postprocess" not in summary
    assert set(summary["outputs"]) == {"classes", "confidence", "preview", "qgis_style", "review"}
    assert np.array_equal(read1(tmp_path / "out" / "classes.tif"), reference(scene, model)[0])


def test_polygons_cover_the_map_with_class_areas_and_a_stored_qgis_style(tmp_path, noisy):
    scene, model = noisy
    options = PredictOptions(postprocess=PostProcess(mmu_pixels=10, polygons=True))
    summary = predict_file(scene, model, tmp_path / "out", options)
    gpkg = tmp_path / "out" / "classes.gpkg"
    assert summary["outputs"]["polygons"] == "classes.gpkg"
    classes = read1(tmp_path / "out" / "classes.tif")
    with fiona.open(gpkg) as src:
        rows = [f.properties for f in src]
    assert summary["postprocess"]["polygons"] == {
        "file": "classes.gpkg", "max_polygons": 200_000, "written": True, "count": len(rows)
    }  # fmt: skip
    names = {c["id"]: c["name"] for c in summary["classes"]}
    by_class: dict[int, float] = {}
    for r in rows:
        assert r["class_name"] == names[r["class_id"]]
        by_class[r["class_id"]] = by_class.get(r["class_id"], 0.0) + r["area"]
    for cid, area in by_class.items():
        assert area == pytest.approx(int((classes == cid).sum()) * 100.0)
    with sqlite3.connect(gpkg) as db:
        (qml,) = db.execute("SELECT styleQML FROM layer_styles WHERE useAsDefault = 1").fetchone()
    assert 'type="categorizedSymbol" attr="class_id"' in qml and 'label="water"' in qml


def test_the_polygon_cap_writes_no_file_and_says_so(tmp_path, noisy):
    scene, model = noisy
    options = PredictOptions(postprocess=PostProcess(polygons=True, max_polygons=5))
    summary = predict_file(scene, model, tmp_path / "out", options)
    record = summary["postprocess"]["polygons"]
    assert record["written"] is False and "more than 5 polygons" in record["note"]
    assert "polygons" not in summary["outputs"]
    assert not list((tmp_path / "out").glob("*classes.gpkg*"))


def test_the_model_card_setting_wins_over_the_stack(tmp_path, noisy):
    scene, model = noisy
    card_file = model / "model.json"
    card = json.loads(card_file.read_text())
    card["postprocess"] = {"mmu_pixels": 4, "connectivity": 4}
    card_file.write_text(json.dumps(card))
    load_model(model)  # still a valid card
    options = PredictOptions(postprocess=PostProcess(mmu_pixels=50))
    summary = predict_file(scene, model, tmp_path / "out", options)
    assert summary["postprocess"]["mmu_pixels"] == 4
    assert summary["postprocess"]["source"] == "model card"


def test_a_bad_card_setting_is_a_model_error(tmp_path, noisy):
    scene, model = noisy
    card_file = model / "model.json"
    card = json.loads(card_file.read_text())
    card["postprocess"] = {"mmu_pixels": 4, "connectivity": 6}
    card_file.write_text(json.dumps(card))
    with pytest.raises(ModelError, match="connectivity must be 4 or 8"):
        predict_file(scene, model, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "error.json").read_text())["code"] == "bad_postprocess"


def test_over_the_memory_budget_is_refused_before_predicting(tmp_path, noisy):
    scene, model = noisy
    budget = 90 * 70 * BYTES_PER_PIXEL - 1
    options = PredictOptions(postprocess=PostProcess(mmu_pixels=4, budget_bytes=budget))
    with pytest.raises(InvalidInputError, match="over the budget") as err:
        predict_file(scene, model, tmp_path / "out", options)
    assert err.value.code == "postprocess_over_budget"
    assert scene.name in err.value.message
    assert not (tmp_path / "out" / "classes.tif").exists()  # nothing predicted


def test_the_accuracy_sample_is_drawn_from_the_final_map(tmp_path, noisy):
    from batch_image.accuracy.maps import read_strata
    from batch_image.accuracy.samplefile import read_sample

    scene, model = noisy
    options = PredictOptions(postprocess=PostProcess(mmu_pixels=6, accuracy_sample_n=40))
    summary = predict_file(scene, model, tmp_path / "out", options)
    assert summary["outputs"]["accuracy_sample"] == "sample.gpkg"
    assert summary["postprocess"]["accuracy_sample"] == {"file": "sample.gpkg", "n": 40}
    sample = read_sample(tmp_path / "out" / "sample.gpkg")
    assert len(sample.points) == 40
    assert sample.design["fingerprint"] == read_strata(tmp_path / "out" / "classes.tif").fingerprint
    with rasterio.open(tmp_path / "out" / "classes.tif") as src:
        grid = src.read(1)
    assert all(grid[p.row, p.col] == p.map_class for p in sample.points)


def test_the_command_line_takes_the_same_settings(tmp_path, noisy):
    from click.testing import CliRunner

    from batch_image.cli.main import main

    scene, model = noisy
    out = tmp_path / "out"
    args = ["predict", str(scene), "--model", str(model), "--out", str(out), "--mmu-pixels",
            "5", "--connectivity", "4", "--polygons", "--accuracy-sample", "30"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["postprocess"]["mmu_pixels"] == 5
    assert summary["postprocess"]["connectivity"] == 4
    assert summary["postprocess"]["source"] == "command line"
    assert (out / "classes.gpkg").exists() and (out / "sample.gpkg").exists()
