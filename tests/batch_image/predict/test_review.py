"""Review points (review.gpkg): where the model is least sure, thinned, over every class,
selected while the windows stream by; and the file a person labels and trains with."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from batch_image.accuracy.maps import read_strata
from batch_image.jobs import checkpoints
from batch_image.predict.engine import ChunkResult
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.predict.review import (
    LAYER,
    REVIEW_GPKG,
    ReviewSelector,
    margin_percent,
)
from batch_image.raster.validity import ValidityRule
from tests.conftest import make_model, make_scene


@pytest.fixture
def reviewed(tmp_path: Path) -> tuple[Path, Path, dict, np.ndarray]:
    """A 3-class scene predicted in many small windows with 30 review points, 4 px apart."""
    scene, truth = make_scene(tmp_path, width=90, height=70, seed=3)
    model = make_model(tmp_path, scene, truth, trees=15)
    with rasterio.open(scene, "r+") as dst:  # noisier than what the model learnt: doubts
        data = dst.read()
        noise = np.random.default_rng(1).normal(0, 9000, data.shape)
        noisy = np.clip(data + noise, 1, 65534).astype(data.dtype)
        dst.write(np.where(data == 0, 0, noisy))
    out = tmp_path / "out"
    options = PredictOptions(workers=1, target_pixels=600, review_points=30, review_min_distance=4)
    summary = predict_file(scene, model, out, options)
    return scene, out, summary, truth


def _points(gpkg: Path) -> list[dict]:
    with fiona.open(gpkg, layer=LAYER) as src:
        return [dict(f.properties) | {"xy": f.geometry.coordinates} for f in src]


def test_review_points_are_valid_spread_thinned_and_less_sure_than_the_median(reviewed):
    scene, out, summary, _ = reviewed
    assert summary["windows"] > 10  # the selection saw the map window by window
    points = _points(out / REVIEW_GPKG)
    assert len(points) == 30 == summary["review"]["points"]
    with rasterio.open(scene) as src:
        valid = ValidityRule.of(src).mask(src, src.read())
    with rasterio.open(out / "classes.tif") as c, rasterio.open(out / "confidence.tif") as f:
        classes, confidence = c.read(1), f.read(1)
        transform = c.transform
    rc = np.array([(p["row"], p["col"]) for p in points])
    assert valid[rc[:, 0], rc[:, 1]].all()  # on valid pixels only
    # the geometry is the pixel's centre, and the fields are the map's values there
    for p in points:
        assert p["xy"] == pytest.approx(transform * (p["col"] + 0.5, p["row"] + 0.5))
        assert p["predicted"] == classes[p["row"], p["col"]]
        assert p["confidence"] == confidence[p["row"], p["col"]]
        assert p["label"] is None
    d2 = ((rc[:, None, :] - rc[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d2, 10**9)
    assert d2.min() >= 4**2  # min distance respected
    mapped = set(np.unique(classes[classes != 255]).tolist())
    assert {p["predicted"] for p in points} == mapped == {1, 2, 3}  # every predicted class
    counts = summary["review"]["per_class"]
    assert sorted(counts.values()) == [10, 10, 10]  # round-robin: an even spread
    median = np.median(confidence[classes != 255])
    assert max(p["confidence"] for p in points) < median


def test_review_file_carries_the_maps_fingerprint_and_a_qgis_style(reviewed):
    _, out, summary, _ = reviewed
    fingerprint = read_strata(out / "classes.tif").fingerprint
    assert summary["review"]["fingerprint"] == fingerprint
    assert {p["fingerprint"] for p in _points(out / REVIEW_GPKG)} == {fingerprint}
    with fiona.open(out / REVIEW_GPKG, layer=LAYER) as src:
        design = json.loads(src.tags()["REVIEW"])
    assert design["fingerprint"] == fingerprint and design["score"] == "margin"
    assert [c["name"] for c in design["classes"]] == ["water", "forest", "built-up"]
    with closing(sqlite3.connect(out / REVIEW_GPKG)) as db:
        (qml,) = db.execute(
            "SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND useAsDefault = 1",
            (LAYER,),
        ).fetchone()
    assert 'type="graduatedSymbol" attr="confidence"' in qml
    assert '<field name="label"><editWidget type="ValueMap">' in qml
    assert 'name="forest" value="2"' in qml and 'name="(not labelled)"' in qml
    assert '<field name="label" editable="1"/>' in qml
    assert '<field name="confidence" editable="0"/>' in qml


def test_summary_and_outputs_name_the_review_file(reviewed):
    _, out, summary, _ = reviewed
    assert summary["outputs"]["review"] == "review.gpkg"
    assert summary["review"] | {"fingerprint": None, "per_class": None} == {
        "file": "review.gpkg",
        "requested": 30,
        "points": 30,
        "min_distance_px": 4,
        "score": "margin",
        "per_class": None,
        "fingerprint": None,
    }
    assert json.loads((out / "summary.json").read_text())["review"] == summary["review"]


def test_zero_review_points_writes_no_file(tmp_path, scene4, model4):
    summary = predict_file(scene4[0], model4, tmp_path / "o", PredictOptions(review_points=0))
    assert "review" not in summary and "review" not in summary["outputs"]
    assert not (tmp_path / "o" / REVIEW_GPKG).exists()


def _window(conf: np.ndarray, classes: np.ndarray | None = None) -> tuple:
    classes = np.ones_like(conf) if classes is None else classes
    return Window(0, 0, conf.shape[1], conf.shape[0]), classes.astype(np.uint8), conf


def test_margin_path_picks_the_pixel_torn_between_two_classes():
    """(0.5, 0.5, 0) has confidence 50 and margin 0; (0.4, 0.3, 0.3) confidence 40, margin
    10: by confidence the second is least sure, by margin the first."""
    proba = np.zeros((3, 1, 12), dtype=np.float64)
    proba[:, 0, :] = np.array([0.9, 0.05, 0.05])[:, None]  # sure pixels
    proba[:, 0, 2] = [0.5, 0.5, 0.0]
    proba[:, 0, 9] = [0.4, 0.3, 0.3]
    conf = np.rint(proba.max(axis=0) * 100).astype(np.uint8)
    assert margin_percent(proba)[0, 2] == 0 and margin_percent(proba)[0, 9] == 10
    by_margin = ReviewSelector(1, min_distance=1, margins=True)
    by_margin.offer(*_window(conf), probabilities=proba)
    by_confidence = ReviewSelector(1, min_distance=1)
    by_confidence.offer(*_window(conf))
    (m,) = by_margin.select()
    (c,) = by_confidence.select()
    assert (m.col, m.margin, m.confidence) == (2, 0, 50)
    assert (c.col, c.margin, c.confidence) == (9, None, 40)
    assert by_margin.score == "margin" and by_confidence.score == "confidence"


def test_margin_of_percent_probabilities_and_of_one_class():
    pct = np.array([[[60]], [[35]], [[5]]], dtype=np.uint8)
    assert margin_percent(pct)[0, 0] == 25
    assert margin_percent(np.ones((1, 2, 2)))[0, 0] == 100


def test_a_window_without_margins_gets_the_smallest_margin_its_confidence_allows():
    conf = np.array([[70, 255, 45]], dtype=np.uint8)
    sel = ReviewSelector(3, min_distance=1, margins=True)
    sel.offer(*_window(conf, np.array([[1, 255, 1]])))
    assert [(p.col, p.margin) for p in sel.select()] == [(2, 0), (0, 40)]


def test_pools_stay_bounded_and_invalid_pixels_never_enter():
    rng = np.random.default_rng(0)
    sel = ReviewSelector(5, min_distance=2, pool_size=64)
    for i in range(40):
        conf = rng.integers(0, 101, (50, 50)).astype(np.uint8)
        classes = rng.integers(1, 4, (50, 50)).astype(np.uint8)
        conf[:, :10] = 255
        classes[:, :10] = 255
        sel.offer(Window(0, 50 * i, 50, 50), classes, conf)
        assert all(p.keys.size <= 64 for p in sel.pools.values())
    points = sel.select()
    assert len(points) == 5 and all(p.col >= 10 for p in points)
    assert {p.predicted for p in points} == {1, 2, 3}


def test_a_class_that_runs_out_leaves_its_turns_to_the_others():
    conf = np.full((20, 20), 30, dtype=np.uint8)
    classes = np.full((20, 20), 1, dtype=np.uint8)
    classes[0, 0] = 2  # one pixel of class 2
    sel = ReviewSelector(6, min_distance=3)
    sel.offer(*_window(conf, classes))
    points = sel.select()
    assert len(points) == 6 and [p.predicted for p in points].count(2) == 1


def test_checkpoints_keep_the_margins():
    w = Window(0, 0, 2, 1)
    layers = {"classes": np.ones((1, 2), np.uint8), "confidence": np.full((1, 2), 60, np.uint8)}
    chunk = ChunkResult(w, layers, np.array([2]), np.array([120.0]), np.array([[20, 30]], np.uint8))
    restored = checkpoints.decode(checkpoints.encode([(0, chunk)]))[0]
    assert restored.margin.tolist() == [[20, 30]]
    chunk.margin = None
    assert checkpoints.decode(checkpoints.encode([(0, chunk)]))[0].margin is None


def _truth_at(truth: np.ndarray, feature, labelled: bool) -> int | None:
    """What a person sees at the point, or None for a point left unlabelled."""
    return int(truth[feature.properties["row"], feature.properties["col"]]) if labelled else None


def test_the_labelled_review_file_is_a_point_sample_of_a_manifest(reviewed, tmp_path):
    """Label some points (from the truth), leave the rest empty, train on it."""
    from batch_image.model.stores import VersionedStore
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.labels import VectorLabels
    from batch_image.train.manifest import parse_manifest_text
    from batch_image.train.trainer import train_model

    scene, out, _, truth = reviewed
    gpkg = tmp_path / "review-labelled.gpkg"
    with fiona.open(out / REVIEW_GPKG, layer=LAYER) as src:
        schema, crs = src.schema, src.crs
        feats = [
            {
                "geometry": f.geometry,
                "properties": dict(f.properties) | {"label": _truth_at(truth, f, i < 24)},
            }
            for i, f in enumerate(src)
        ]
    with fiona.open(gpkg, "w", driver="GPKG", schema=schema, crs=crs, layer=LAYER) as dst:
        dst.writerecords(feats)
    manifest = parse_manifest_text(
        json.dumps(
            {
                "name": "loop",
                "classes": [
                    {"id": 1, "name": "water"},
                    {"id": 2, "name": "forest"},
                    {"id": 3, "name": "built-up"},
                ],
                "samples": [{"image": str(scene), "vector": str(gpkg), "class_field": "label"}],
                "min_samples_per_class": 1,
                "cv": {"block_size": 8, "folds": 2},
            }
        )
    )
    from batch_image.model.card import ModelClass

    with rasterio.open(scene) as img:
        labels = VectorLabels(gpkg, img, "label", tuple(ModelClass(i, n, "#000000") for i, n in
                              ((1, "water"), (2, "forest"), (3, "built-up"))))  # fmt: skip
        burnt = labels.read(Window(0, 0, img.width, img.height))
    labelled = [(f["properties"]["row"], f["properties"]["col"]) for f in feats[:24]]
    assert int((burnt != 0).sum()) == 24  # one pixel per labelled point, empty ones skipped
    assert all(burnt[r, c] == truth[r, c] for r, c in labelled)
    result = train_model(manifest, local_fetcher(tmp_path), VersionedStore(tmp_path / "models"))
    assert sum(result.report["class_counts"]["found"].values()) == 24
