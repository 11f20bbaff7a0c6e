"""The notifier's ``assess`` kind: an assessed sample → one email with areas ± intervals."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from notify_support import BUCKET, SECRET_KEY, load_event

from rasterdrop_notify.assessments import check_sample_key
from rasterdrop_notify.paths import KeyRefused
from rasterdrop_notify.tokens import verify_token

KEY = "assessments/acme/field-7.gpkg"
VERSION = "Zt9sample0version0id00000000000"
FOLDER = "output/acme/field-7/assessment/"


def _event(status: str = "SUCCEEDED", key: str = KEY) -> dict:
    event = load_event(
        "batch_succeeded.json" if status == "SUCCEEDED" else "batch_failed_invalid_input.json"
    )
    event["detail"]["parameters"].update(bucket=BUCKET, key=key, version=VERSION)
    event["detail"]["jobName"] = "rasterdrop-assess"
    return event


def _summary() -> dict:
    """What batch_image.jobs.assess_job publishes (its SUMMARY_CLASS_FIELDS)."""

    def est(v, lo, hi):
        return {"value": v, "se": (hi - lo) / 3.92, "ci95": [lo, hi]}

    return {
        "schema": "rasterdrop.assessment_run/1",
        "kind": "assess",
        "status": "succeeded",
        "sample": {"bucket": BUCKET, "key": KEY, "version_id": VERSION},
        "area_unit": "metre^2",
        "overall_accuracy": est(0.871, 0.84, 0.902),
        "classes": [
            {
                "id": 1,
                "name": "water",
                "mapped_area": 45_315_000.0,
                "area": est(46_000_000.0, 44_000_000.0, 48_000_000.0),
                "users_accuracy": est(0.98, 0.95, 1.0),
                "producers_accuracy": est(0.96, 0.9, 1.0),
                "sample_points": 50,
            },
            {
                "id": 2,
                "name": "forest",
                "mapped_area": 108_967_000.0,
                "area": est(101_500_000.0, 95_000_000.0, 108_000_000.0),
                "users_accuracy": est(0.9, 0.85, 0.95),
                "producers_accuracy": est(0.97, 0.94, 1.0),
                "sample_points": 80,
            },
        ],
        "points": {"labelled": 130, "unlabelled": 0},
        "timings_s": {"total": 3.2},
        "created_at": "2026-11-26T09:00:41Z",
    }


def test_an_assessment_email_shows_areas_with_intervals_and_links(aws, handlers, context):
    aws.put_json(FOLDER + "summary.json", _summary())
    out = handlers["notify"].handler(_event(), context)
    assert out["action"] == "published"
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: assessment of field-7.gpkg ready"
    attrs = {k: v["Value"] for k, v in msg["MessageAttributes"].items()}
    assert attrs == {"status": "succeeded", "kind": "assess", "tenant": "acme"}
    body = msg["Message"]
    assert "Accuracy     overall 0.871 +/- 0.031 (95 % interval)" in body
    water = next(line for line in body.splitlines() if line.strip().startswith("water"))
    assert "4,531.5" in water and "4,600.0 +/- 200.0" in water and "0.98" in water
    forest = next(line for line in body.splitlines() if line.strip().startswith("forest"))
    assert "10,896.7" in forest and "10,150.0 +/- 650.0" in forest
    assert "Mapped ha" in body and "Estimated ha (95 %)" in body
    keys = [
        verify_token(parse_qs(urlsplit(u).query)["t"][0], [SECRET_KEY.encode()], 0).key
        for u in re.findall(r"https://\S+", body)
    ]
    assert keys == [FOLDER + n for n in ("assessment.md", "assessment.png", "assessment.json")]
    again = handlers["notify"].handler(_event(), context)
    assert again["action"] == "duplicate" and aws.messages() == []


def test_a_refused_sample_is_emailed_with_the_reason(aws, handlers, context):
    aws.put_json(
        FOLDER + "error.json",
        {"schema": "rasterdrop.error/1", "kind": "assess", "status": "failed",
         "category": "invalid_input", "code": "stratum_too_small",
         "message": "field-7.gpkg: every map class needs at least 2 labelled points; too few "
                    "in: water (1)", "details": {},
         "input": {"bucket": BUCKET, "key": KEY, "version_id": VERSION}},
    )  # fmt: skip
    handlers["notify"].handler(_event("FAILED"), context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: assessment of field-7.gpkg failed (invalid input)"
    assert "too few in: water (1) [stratum_too_small]" in msg["Message"]
    assert "Fix the file and upload it again" in msg["Message"]


def test_success_without_a_summary_is_reported_not_silent(aws, handlers, context):
    handlers["notify"].handler(_event(), context)
    [msg] = aws.messages()
    assert "failed (internal error)" in msg["Subject"]


@pytest.mark.parametrize(
    "key",
    ["input/acme/x.gpkg", "assessments/x.tif", "assessments//x.gpkg", "assessments/../x.gpkg"],
)
def test_the_sample_key_rule_is_the_jobs(key):
    from batch_image.errors import InvalidInputError
    from batch_image.jobs.assess_job import check_sample_key as job_rule

    with pytest.raises(KeyRefused) as ours:
        check_sample_key(key)
    with pytest.raises(InvalidInputError) as theirs:
        job_rule(key)
    assert ours.value.code == theirs.value.code
    assert check_sample_key("assessments/a b+c/x.GPKG") == job_rule("assessments/a b+c/x.GPKG")


def test_the_prediction_email_links_the_accuracy_sample_and_polygons(aws, handlers, context):
    from notify_support import summary_doc

    doc = summary_doc()
    doc["outputs"] |= {
        "accuracy_sample": "output/acme/field-7/sample.gpkg",
        "polygons": "output/acme/field-7/classes.gpkg",
    }
    aws.put_json("output/acme/field-7/summary.json", doc)
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    body = aws.messages()[0]["Message"]
    assert "Accuracy sample to label in QGIS (GeoPackage):" in body
    assert "Class polygons (GeoPackage):" in body
    keys = [
        verify_token(parse_qs(urlsplit(u).query)["t"][0], [SECRET_KEY.encode()], 0).key
        for u in re.findall(r"https://\S+", body)
    ]
    assert {"output/acme/field-7/sample.gpkg", "output/acme/field-7/classes.gpkg"} <= set(keys)


def test_the_prediction_email_links_the_review_points(aws, handlers, context):
    from notify_support import summary_doc

    doc = summary_doc()
    doc["outputs"] |= {"review": "output/acme/field-7/review.gpkg"}
    aws.put_json("output/acme/field-7/summary.json", doc)
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    body = aws.messages()[0]["Message"]
    assert "Points to label next, where the model is least sure (GeoPackage for QGIS):" in body
    keys = [
        verify_token(parse_qs(urlsplit(u).query)["t"][0], [SECRET_KEY.encode()], 0).key
        for u in re.findall(r"https://\S+", body)
    ]
    assert "output/acme/field-7/review.gpkg" in keys
