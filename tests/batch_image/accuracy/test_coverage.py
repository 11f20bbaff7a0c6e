"""Simulation on the sample scene: the 95 % intervals cover the true areas about 95 % of
the time, while the pixel counts of the same map are off (``bench/accuracy_coverage.py``)."""

from __future__ import annotations

import json

import pytest

from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.synthetic.scene import make_sample
from bench.accuracy_coverage import coverage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    from click.testing import CliRunner

    from batch_image.cli.main import main

    d = tmp_path_factory.mktemp("coverage")
    paths = make_sample(d, width=500, height=400, seed=11, truth=True)
    trained = CliRunner().invoke(
        main,
        ["train", "--image", str(paths.scene), "--labels", str(paths.labels), "--out",
         str(d / "model"), "--trees", "15", "--folds", "2"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    predict_file(paths.scene, d / "model", d / "out", PredictOptions(workers=1))
    return d / "out" / "classes.tif", paths.truth


def test_intervals_cover_the_true_areas_about_95_percent_of_the_time(mapped):
    classes, truth = mapped
    report = coverage(classes, truth, n=240, reps=60, seed=3, min_per_class=25)
    # 60 samples × 6 classes = 360 intervals: 95 % nominal, binomial sd ≈ 1.1 %
    assert 0.85 <= report["coverage_all_classes"] <= 0.99, report
    assert all(c["coverage"] >= 0.6 for c in report["classes"].values()), report
    # the map is imperfect, so counting its pixels misstates some class by several percent
    assert max(abs(c["pixel_count_error"]) for c in report["classes"].values()) > 0.03
    assert report["true_overall_accuracy"] < 0.99
    print(json.dumps(report, indent=1))  # the figures, with -s
