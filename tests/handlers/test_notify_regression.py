"""The email of a regression: its values (with the unit) instead of a class table, and links
to prediction.tif / uncertainty.tif; a regression training's R2/RMSE/MAE."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from notify_support import BUCKET, SECRET_KEY, load_event, summary_doc

from rasterdrop_notify.outcome import Outcome, ValueStats
from rasterdrop_notify.render import render_message
from rasterdrop_notify.reports import training_metrics, value_stats
from rasterdrop_notify.tokens import verify_token

RESULTS = "output/acme/field-7/"
VALUES = {
    "name": "biomass",
    "unit": "t/ha",
    "pixels": 3000000,
    "min": 0.0,
    "max": 196.697723,
    "mean": 69.623752,
    "std": 51.452449,
    "percentiles": {"p2": 1.372639, "p50": 76.452285, "p98": 149.111415},
    "histogram": {"edges": [0.0, 98.35, 196.7], "counts": [2000000, 1000000]},
}


def _regression_summary() -> dict:
    doc = summary_doc()
    doc["task"] = "regression"
    doc["classes"] = []
    doc["values"] = VALUES
    doc["outputs"] = {
        "preview": RESULTS + "preview.png",
        "qgis_style": RESULTS + "prediction.qml",
        "prediction": RESULTS + "prediction.tif",
        "uncertainty": RESULTS + "uncertainty.tif",
    }
    return doc


def test_regression_success_email_shows_values_and_links(aws, handlers, context):
    aws.put_json(RESULTS + "summary.json", _regression_summary())
    out = handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    assert out["action"] == "published"
    [msg] = aws.messages()
    body = msg["Message"]
    assert msg["Subject"] == "rasterdrop: field-7.tif ready"
    assert "2,048 x 1,536 pixels, 3,000,000 predicted" in " ".join(body.split())
    lines = body.splitlines()
    at = lines.index("Predicted biomass (t/ha)")
    assert lines[at + 1 : at + 4] == [
        "  min 0, max 196.7",
        "  mean 69.62, standard deviation 51.45",
        "  percentiles p2 1.373, p50 76.45, p98 149.1",
    ]
    assert "Classes (share of classified pixels)" not in body
    assert "  Prediction (GeoTIFF):" in lines and "  Uncertainty (GeoTIFF):" in lines
    keys = [
        verify_token(parse_qs(urlsplit(u).query)["t"][0], [SECRET_KEY.encode()], 0).key
        for u in re.findall(r"https://\S+", body)
    ]
    assert keys == [
        RESULTS + "preview.png",
        RESULTS + "prediction.qml",
        RESULTS + "prediction.tif",
        RESULTS + "uncertainty.tif",
    ]


def test_value_stats_reads_the_summary_and_ignores_a_class_map() -> None:
    stats = value_stats(_regression_summary())
    assert stats == ValueStats(
        name="biomass", unit="t/ha", minimum=0.0, maximum=196.697723, mean=69.623752,
        std=51.452449, percentiles=(("p2", 1.372639), ("p50", 76.452285), ("p98", 149.111415)),
    )  # fmt: skip
    assert value_stats(summary_doc()) is None


def test_unitless_values_render_without_brackets() -> None:
    stats = ValueStats("height", minimum=1.0, maximum=2.0, mean=1.5, std=0.25)
    o = Outcome(status="succeeded", bucket=BUCKET, key="input/a.tif", values=stats)
    body = render_message(o).body.splitlines()
    at = body.index("Predicted height")
    assert body[at + 1 : at + 3] == ["  min 1, max 2", "  mean 1.5, standard deviation 0.25"]
    assert len(body) == at + 3


def test_regression_training_metrics_are_labelled() -> None:
    summary = {"metrics": {"blocked_cv": {"folds": 5, "n": 900, "r2": 0.81, "rmse": 6.5,
                                          "mae": 4.9, "bias": -0.2}}}  # fmt: skip
    assert training_metrics(summary) == (
        ("blocked CV: R2", 0.81),
        ("blocked CV: RMSE", 6.5),
        ("blocked CV: MAE", 4.9),
        ("blocked CV: bias", -0.2),
    )
