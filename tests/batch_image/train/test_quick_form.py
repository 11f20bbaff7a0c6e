"""Quick training: ``train --image --labels --out`` on the sample scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from batch_image.cli.train import train
from batch_image.model.card import load_model
from batch_image.synthetic.scene import SAMPLE_CLASSES
from tests.batch_image.train.helpers import (
    checkerboard,
    predict_pixels,
    read,
    small_sample,
    write_like,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train on half the label blobs (checkerboard), keep the rest for held-out accuracy."""
    d = tmp_path_factory.mktemp("quick")
    paths = small_sample(d, seed=5)
    labels = read(paths.labels)[0]
    board = checkerboard(labels.shape, 50)
    write_like(paths.labels, d / "train_labels.tif", np.where(board, labels, 0).astype(np.uint8))
    result = CliRunner().invoke(
        train,
        [
            "--image", str(paths.scene),
            "--labels", str(d / "train_labels.tif"),
            "--out", str(d / "model"),
            "--name", "quick",
            "--trees", "30",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return d, paths, labels, board, result


def test_model_dir_holds_model_card_and_report(trained):
    d, *_ = trained
    names = sorted(p.name for p in (d / "model").iterdir())
    assert names == [
        "confusion_blocked.png",
        "confusion_random.png",
        "metrics.json",
        "model.json",
        "model.skops",
        "report.md",
    ]


def test_card_carries_sample_classes_bands_and_provenance(trained):
    d, *_ = trained
    estimator, card = load_model(d / "model")
    assert card.name == "quick"
    assert [(c.id, c.name, c.colour) for c in card.classes] == list(SAMPLE_CLASSES)
    assert card.band_names == ("blue", "green", "red", "nir") and card.dtype == "uint16"
    assert [int(c) for c in estimator.classes_] == [1, 2, 3, 4, 5, 6]
    assert type(estimator).__name__ == "RandomForestClassifier"
    assert estimator.n_estimators == 30
    extra = card.extra
    assert extra["estimator"]["params"]["n_estimators"] == 30
    assert extra["estimator"]["params"]["n_jobs"] == -1
    assert {"scikit-learn", "numpy", "skops"} <= set(card.versions)
    assert extra["created_at"].endswith("Z")
    sample = extra["training_data"]["samples"][0]
    assert len(sample["image_sha256"]) == 64 and len(sample["labels_sha256"]) == 64
    counts = extra["training_data"]["class_counts"]
    assert set(counts["found"]) == {"1", "2", "3", "4", "5", "6"}
    assert all(counts["sampled"][k] <= counts["found"][k] for k in counts["found"])


def test_metrics_are_plausible_and_random_flatters(trained):
    d, *_ = trained
    card = json.loads((d / "model" / "model.json").read_text())
    blocked, rnd = card["metrics"]["blocked_cv"], card["metrics"]["random_cv"]
    assert 0.5 <= blocked["overall_accuracy"] <= 0.99
    assert 0.8 <= rnd["overall_accuracy"] <= 1.0
    assert rnd["overall_accuracy"] >= blocked["overall_accuracy"]
    assert rnd["kappa"] >= blocked["kappa"]
    assert len(blocked["confusion_matrix"]["matrix"]) == 6


def test_held_out_accuracy_is_realistic_not_perfect(trained):
    d, paths, labels, board, _ = trained
    estimator, card = load_model(d / "model")
    scene = read(paths.scene)
    test = np.where(board, 0, labels)
    valid = (test > 0) & (scene != 0).all(axis=0)
    pred = predict_pixels(estimator, card, scene[:, valid].T)
    accuracy = float((pred == test[valid]).mean())
    assert valid.sum() > 1000
    assert 0.7 <= accuracy <= 0.98


def test_cli_prints_class_counts_and_both_metrics(trained):
    *_, result = trained
    assert "class counts" in result.output
    assert "blocked CV: accuracy" in result.output
    assert "random CV: accuracy" in result.output
    assert "\r" not in result.stderr  # no progress bar when stderr is not a terminal


def test_model_from_sparse_labels_predicts_the_whole_scene_realistically(tmp_path):
    """The sample's promise: trained on the sparse labels, right on ~80-95 % of all pixels."""
    from batch_image.model.stores import DirectoryStore
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.manifest import quick_manifest
    from batch_image.train.trainer import train_model

    paths = small_sample(tmp_path, seed=2, truth=True)
    truth = read(paths.truth)[0]
    labels = read(paths.labels)[0]
    labelled = labels > 0
    assert np.array_equal(labels[labelled], truth[labelled])  # labels are never wrong
    result = train_model(
        quick_manifest(str(paths.scene), str(paths.labels), trees=30),
        local_fetcher(tmp_path),
        DirectoryStore(tmp_path / "model"),
    )
    scene = read(paths.scene)
    valid = truth > 0
    assert np.array_equal(valid, (scene != 0).all(axis=0))
    pred = predict_pixels(result.estimator, result.card, scene[:, valid].T)
    accuracy = float((pred == truth[valid]).mean())
    assert 0.72 <= accuracy <= 0.95
    per_class = [float((pred[truth[valid] == c] == c).mean()) for c in range(1, 7)]
    assert min(per_class) > 0.3  # every class is learnt, grassland/cropland overlap most
