"""notify.handler end to end on moto: Batch event → S3 reports → one SNS message."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from notify_support import BUCKET, NOW, SECRET_KEY, error_doc, load_event, summary_doc

from rasterdrop_notify.tokens import verify_token

KEY = "input/acme/field-7.tif"
RESULTS = "output/acme/field-7/"


def flat(text: str) -> str:
    """The body with wrapping and column padding collapsed to single spaces."""
    return " ".join(text.split())


def _attrs(envelope: dict) -> dict[str, str]:
    return {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}


def _claims(body: str) -> list:
    """The link tokens of a message body, verified (expiry not checked: now=0)."""
    return [
        verify_token(parse_qs(urlsplit(u).query)["t"][0], [SECRET_KEY.encode()], 0)
        for u in re.findall(r"https://\S+", body)
    ]


def test_success_publishes_one_readable_message(aws, handlers, context):
    aws.put_json(RESULTS + "summary.json", summary_doc())

    out = handlers["notify"].handler(load_event("batch_succeeded.json"), context)

    assert out["action"] == "published"
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif ready"
    assert _attrs(msg) == {"status": "succeeded", "tenant": "acme"}
    body = msg["Message"]
    assert f"s3://{BUCKET}/{KEY}" in body
    assert "demo, version 20261126T090000Z" in body
    assert "2,048 x 1,536 pixels, 3,000,000 classified" in body
    assert "42.1 s" in body
    assert "4c7599ae-0a82-49aa-ba5a-4727fcce14a8" in body
    # class table: aligned, sorted by share, percentages and areas
    rows = [line for line in body.splitlines() if line.startswith("  ") and "%" in line]
    assert [r.split()[0] for r in rows] == [
        "forest",
        "grassland",
        "cropland",
        "water",
        "built-up",
        "bare",
    ]
    assert len({r.index("%") for r in rows}) == 1, "share column is aligned"
    assert "50.0 %" in rows[0] and "150.00 km²" in rows[0]
    # three links to the link endpoint, tokens naming the three outputs, honest expiry
    urls = re.findall(r"https://\S+", body)
    assert len(urls) == 4
    keys = []
    for url in urls:
        parts = urlsplit(url)
        assert parts.netloc == "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws"
        claim = verify_token(parse_qs(parts.query)["t"][0], [SECRET_KEY.encode()], 0)
        keys.append(claim.key)
        assert claim.expires_at == int((NOW + timedelta(days=7)).timestamp())
    assert keys == [
        RESULTS + "classes.tif",
        RESULTS + "confidence.tif",
        RESULTS + "preview.png",
        RESULTS + "classes.qml",
    ]
    assert "Downloads (links valid until 2026-12-03 09:05 UTC)" in body
    # the marker records the publish
    marker = [
        o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="notified/")["Contents"]
    ]
    assert len(marker) == 1
    doc = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=marker[0])["Body"].read())
    assert doc["state"] == "published" and doc["message_id"] == out["message_id"]
    assert doc["published_at"] == NOW.isoformat()


def test_links_follow_the_injected_clock_not_the_wall_clock(aws, handlers, context, set_now):
    # Years away from any real date: a handler reading the wall clock anywhere fails this.
    later = datetime(2031, 5, 4, 12, 30, 15, tzinfo=UTC)
    set_now(later)
    aws.put_json(RESULTS + "summary.json", summary_doc())
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    [msg] = aws.messages()
    assert {c.expires_at for c in _claims(msg["Message"])} == {
        int((later + timedelta(days=7)).timestamp())
    }
    assert "Downloads (links valid until 2031-05-11 12:30 UTC)" in msg["Message"]


def test_duplicate_delivery_publishes_once(aws, handlers, context):
    aws.put_json(RESULTS + "summary.json", summary_doc())
    event = load_event("batch_succeeded.json")
    first = handlers["notify"].handler(event, context)
    second = handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    # a second job for the same input version and model (e.g. resubmitted): still one message
    other_job = load_event("batch_succeeded.json")
    other_job["id"] = "0f0e0d0c-76e5-d76a-f980-7011e206042b"
    other_job["detail"]["jobId"] = "11111111-2222-3333-4444-555555555555"
    third = handlers["notify"].handler(other_job, context)
    assert [first["action"], second["action"], third["action"]] == [
        "published",
        "duplicate",
        "duplicate",
    ]
    assert len(aws.messages()) == 1


def test_new_model_version_is_a_new_message(aws, handlers, context):
    aws.put_json(RESULTS + "summary.json", summary_doc())
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    aws.put_json(RESULTS + "summary.json", summary_doc(model_version="20261127T000000Z"))
    out = handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    assert out["action"] == "published"
    assert len(aws.messages()) == 2


def test_invalid_input_uses_error_json(aws, handlers, context):
    aws.put_json(
        RESULTS + "error.json",
        error_doc(
            "invalid_input", "not_a_tiff", "The file is not a GeoTIFF (it starts with PK: a zip?)."
        ),
    )
    handlers["notify"].handler(load_event("batch_failed_invalid_input.json"), context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif failed (invalid input)"
    assert _attrs(msg) == {"status": "failed", "tenant": "acme"}
    body = flat(msg["Message"])
    assert "Reason The file is not a GeoTIFF (it starts with PK: a zip?). [not_a_tiff]" in body
    assert "What to do Fix the file and upload it again" in body
    assert "Job 4c7599ae-0a82-49aa-ba5a-4727fcce14a8 (1 attempt, exit code 2)" in body
    assert "https://" not in body


def test_model_error_uses_error_json(aws, handlers, context):
    aws.put_json(
        RESULTS + "error.json",
        error_doc("model_error", "band_mismatch", "The model expects 4 bands; the raster has 3."),
    )
    handlers["notify"].handler(load_event("batch_failed_model_error.json"), context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif failed (model error)"
    assert "The model expects 4 bands; the raster has 3. [band_mismatch]" in flat(msg["Message"])
    assert "Your file is not the problem" in flat(msg["Message"])


@pytest.mark.parametrize(
    ("sample", "label", "reason", "advice"),
    [
        (
            "batch_failed_oom.json",
            "out of memory",
            "OutOfMemoryError: Container killed due to memory usage",
            "ran out of memory",
        ),
        (
            "batch_failed_spot.json",
            "interrupted",
            "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated.",
            "upload it again to retry",
        ),
        (
            "batch_failed_timeout.json",
            "timed out",
            "Job attempt duration exceeded timeout",
            "longer than its time limit",
        ),
        (
            "batch_failed_image_pull.json",
            "could not start",
            "CannotPullContainerError: Error response from daemon",
            "deployment problem",
        ),
    ],
)
def test_jobs_that_died_without_error_json(aws, handlers, context, sample, label, reason, advice):
    handlers["notify"].handler(load_event(sample), context)
    [msg] = aws.messages()
    assert msg["Subject"] == f"rasterdrop: field-7.tif failed ({label})"
    body = flat(msg["Message"])
    assert reason in body
    assert advice in body
    assert "4c7599ae-0a82-49aa-ba5a-4727fcce14a8" in body


def test_last_attempt_death_beats_stale_error_json(aws, handlers, context):
    # attempt 1 wrote error.json (internal, retried); attempt 2 was OOM-killed
    aws.put_json(RESULTS + "error.json", error_doc("internal", "io", "Read timed out."))
    handlers["notify"].handler(load_event("batch_failed_oom.json"), context)
    [msg] = aws.messages()
    assert "(out of memory)" in msg["Subject"]


def test_error_json_of_another_input_version_is_ignored(aws, handlers, context):
    aws.put_json(
        RESULTS + "error.json",
        error_doc("invalid_input", "not_a_tiff", "old problem", version="an-older-version"),
    )
    handlers["notify"].handler(load_event("batch_failed_invalid_input.json"), context)
    [msg] = aws.messages()
    assert "old problem" not in msg["Message"]
    assert "(invalid input)" in msg["Subject"]  # from exit code 2
    assert "exit code 2 but left no error report" in flat(msg["Message"])


def test_success_without_summary_is_reported_not_silent(aws, handlers, context):
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif failed (internal error)"
    assert "summary.json is missing" in flat(msg["Message"])


def test_summary_of_another_version_publishes_nothing(aws, handlers, context):
    aws.put_json(RESULTS + "summary.json", summary_doc(version="a-newer-version"))
    out = handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    assert out["action"] == "skipped"
    assert aws.messages() == []


@pytest.mark.parametrize(
    ("key", "results", "subject_name"),
    [
        ("input/acme/my field 7.tif", "output/acme/my field 7/", "my field 7.tif"),
        ("input/acme/a+b=c.TIFF", "output/acme/a+b=c/", "a+b=c.TIFF"),
        ("input/ünïcødé/Gärten-Süd.tif", "output/ünïcødé/Gärten-Süd/", "Garten-Sud.tif"),
    ],
)
def test_keys_are_used_raw(aws, handlers, context, key, results, subject_name):
    aws.put_json(results + "summary.json", summary_doc(key=key, results=results))
    event = load_event("batch_succeeded.json")
    event["detail"]["parameters"]["key"] = key
    handlers["notify"].handler(event, context)
    [msg] = aws.messages()
    assert msg["Subject"] == f"rasterdrop: {subject_name} ready"
    assert msg["Subject"].isascii()
    assert f"s3://{BUCKET}/{key}" in msg["Message"]
    assert _attrs(msg)["tenant"] == key.split("/")[1]
    claims = [
        verify_token(parse_qs(urlsplit(u).query)["t"][0], [SECRET_KEY.encode()], 0).key
        for u in re.findall(r"https://\S+", msg["Message"])
    ]
    assert claims[0] == results + "classes.tif"


def test_no_tenant_attribute_without_a_tenant_folder(aws, handlers, context):
    key, results = "input/field-7.tif", "output/field-7/"
    aws.put_json(results + "summary.json", summary_doc(key=key, results=results))
    event = load_event("batch_succeeded.json")
    event["detail"]["parameters"]["key"] = key
    handlers["notify"].handler(event, context)
    [msg] = aws.messages()
    assert _attrs(msg) == {"status": "succeeded"}


def test_subject_stays_short_with_a_300_character_name(aws, handlers, context):
    name = "é" + "x" * 291 + "-end.tif"
    assert len(name) == 300
    key, results = f"input/acme/{name}", f"output/acme/{name[:-4]}/"
    event = load_event("batch_failed_oom.json")
    event["detail"]["parameters"]["key"] = key
    handlers["notify"].handler(event, context)
    [msg] = aws.messages()
    subject = msg["Subject"]
    assert len(subject) <= 99
    assert subject.isascii() and "\n" not in subject
    assert subject.startswith("rasterdrop: exxx") and subject.endswith(
        "-end.tif failed (out of memory)"
    )
    assert "..." in subject
    assert name in msg["Message"]  # the body keeps the full name
    del results


def test_training_success_reads_the_run_summary(aws, handlers, context):
    version = "Wq7mA9xK2pL4nR6tV8yZ0bC3dF5gH1jE"
    # the shape batch_image.training.TrainResult.summary() writes
    aws.put_json(
        f"models/demo/runs/{version}/summary.json",
        {
            "schema": "rasterdrop.train-summary/1",
            "kind": "train",
            "status": "succeeded",
            "model": {
                "name": "demo",
                "version": "20261126T091500Z",
                "location": f"s3://{BUCKET}/models/demo/20261126T091500Z/",
                "promoted": True,
            },
            "classes": [{"id": 1, "name": "water", "colour": "#1f78b4", "found": 9, "sampled": 9}],
            "metrics": {
                "blocked_cv": {
                    "folds": 5,
                    "n": 5000,
                    "overall_accuracy": 0.9532,
                    "kappa": 0.9391,
                    "macro_f1": 0.9104,
                },
                "random_cv": {"skipped": "too few samples"},
            },
            "cv_block_size": 64,
            "timings_s": {"open": 2.0, "sample": 30.0, "evaluate": 120.0, "fit": 60.0},
            "created_at": "2026-11-26T09:15:00Z",
        },
    )
    handlers["notify"].handler(load_event("batch_train_succeeded.json"), context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: model demo trained"
    assert _attrs(msg) == {"status": "succeeded", "kind": "train"}
    body = msg["Message"]
    assert "Metrics      blocked CV: accuracy 0.953, kappa 0.939, macro F1 0.910" in body
    assert "random CV" not in body  # skipped evaluation has no numbers
    assert "Promoted     yes: predictions now use it" in body
    body = flat(body)
    assert "Model demo version 20261126T091500Z is trained." in body
    assert "3 min 32 s" in body  # sum of the phases
    assert f"s3://{BUCKET}/models/demo/runs/{version}/" in body


def test_training_flat_metrics_and_total(aws, handlers, context):
    version = "Wq7mA9xK2pL4nR6tV8yZ0bC3dF5gH1jE"
    aws.put_json(
        f"models/demo/runs/{version}/summary.json",
        {
            "kind": "train",
            "model": {"name": "demo", "version": "v9"},
            "promoted": False,
            "metrics": {"accuracy": 0.5, "n_test": 10},
            "timings_s": {"total": 5.0, "fit": 1.0},
        },
    )
    handlers["notify"].handler(load_event("batch_train_succeeded.json"), context)
    body = aws.messages()[0]["Message"]
    assert "Metrics      accuracy 0.500\n" in body
    assert "Promoted     no" in body and "Processing   5.0 s" in body


def test_training_failure_reads_the_run_error(aws, handlers, context):
    version = "Wq7mA9xK2pL4nR6tV8yZ0bC3dF5gH1jE"
    aws.put_json(
        f"models/demo/runs/{version}/error.json",
        error_doc(
            "invalid_input",
            "labels_mismatch",
            "labels.tif does not cover scene.tif.",
            key="training/demo/manifest.json",
            version=version,
        ),
    )
    handlers["notify"].handler(load_event("batch_train_failed.json"), context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: training demo failed (invalid input)"
    assert "labels.tif does not cover scene.tif. [labels_mismatch]" in flat(msg["Message"])


def test_jobs_for_another_bucket_are_ignored(aws, handlers, context):
    event = load_event("batch_succeeded.json")
    event["detail"]["parameters"]["bucket"] = "someone-elses-bucket"
    out = handlers["notify"].handler(event, context)
    assert out["action"] == "skipped"
    assert aws.messages() == []


def test_report_read_denied_is_treated_as_missing():
    from botocore.exceptions import ClientError

    from rasterdrop_notify.reports import get_json

    class DeniedS3:
        def get_object(self, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    assert get_json(DeniedS3(), BUCKET, "output/x/summary.json") is None

    class BrokenS3:
        def get_object(self, **kwargs):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "no"}}, "GetObject")

    with pytest.raises(ClientError):
        get_json(BrokenS3(), BUCKET, "output/x/summary.json")


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        # created + 3 days is before NOW + 7 days: retention caps the promise
        ("2026-11-25T09:00:00Z", datetime(2026, 11, 28, 9, 0, tzinfo=UTC)),
        # created just now: NOW + 3 days still beats NOW + 7 days
        ("2026-11-26T09:00:41Z", datetime(2026, 11, 29, 9, 0, 41, tzinfo=UTC)),
    ],
)
def test_link_expiry_is_capped_by_output_retention(
    aws, handlers, context, env, reread_env, created_at, expected
):
    env.setenv("RASTERDROP_OUTPUT_RETENTION_DAYS", "3")
    reread_env()
    summary = summary_doc()
    summary["created_at"] = created_at
    aws.put_json(RESULTS + "summary.json", summary)
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    [msg] = aws.messages()
    assert f"Downloads (links valid until {expected:%Y-%m-%d %H:%M} UTC)" in msg["Message"]
    assert {c.expires_at for c in _claims(msg["Message"])} == {int(expected.timestamp())}


def test_link_expiry_without_retention_is_the_ttl(aws, handlers, context):
    summary = summary_doc()
    summary["created_at"] = "2020-01-01T00:00:00Z"  # long ago: no retention, no cap
    aws.put_json(RESULTS + "summary.json", summary)
    handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    [msg] = aws.messages()
    expected = int((NOW + timedelta(days=7)).timestamp())
    assert {c.expires_at for c in _claims(msg["Message"])} == {expected}


def test_null_version_is_not_shown_or_hashed_as_a_version(aws, handlers, context):
    summary = summary_doc(version=None)
    aws.put_json(RESULTS + "summary.json", summary)
    event = load_event("batch_succeeded.json")
    event["detail"]["parameters"]["version"] = "null"
    assert handlers["notify"].handler(event, context)["action"] == "published"
    [msg] = aws.messages()
    assert "version null" not in msg["Message"]


@pytest.mark.parametrize("absent", ["", "null", "None", "undefined", " NULL ", "Ref::version"])
def test_absent_version_is_one_unversioned_input(aws, handlers, context, absent):
    from rasterdrop_notify.paths import marker_key

    aws.put_json(RESULTS + "summary.json", summary_doc(version=None))
    event = load_event("batch_succeeded.json")
    event["detail"]["parameters"]["version"] = absent
    out = handlers["notify"].handler(event, context)
    assert out["action"] == "published"
    # keyed as "no version", exactly like an event without the field
    unversioned = marker_key(BUCKET, KEY, None, "20261126T090000Z")
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="notified/")["Contents"]
    assert [o["Key"] for o in listed] == [unversioned]
    body = aws.messages()[0]["Message"]
    assert "             version" not in body  # no input version line
    assert "Ref::" not in body and "undefined" not in body


def test_a_report_with_an_absent_version_matches_any_event_version(aws, handlers, context):
    summary = summary_doc()
    summary["input"]["version_id"] = "Ref::version"  # a job given no version wrote this
    aws.put_json(RESULTS + "summary.json", summary)
    out = handlers["notify"].handler(load_event("batch_succeeded.json"), context)
    assert out["action"] == "published"


@pytest.mark.parametrize(
    "key",
    [
        "input/acme/../field-7.tif",
        "input/acme/./field-7.tif",
        "input/acme//field-7.tif",
        # a control character: the reject function emails it on upload, once
        # (tests/handlers/test_reject_untransportable_keys.py)
    ],
)
def test_keys_the_job_refuses_still_email_why(aws, handlers, context, key):
    # the job refuses these keys before it has a safe place for error.json
    event = load_event("batch_failed_invalid_input.json")
    event["detail"]["parameters"]["key"] = key
    out = handlers["notify"].handler(event, context)
    assert out["action"] == "published"
    [msg] = aws.messages()
    assert "failed (invalid input)" in msg["Subject"]
    assert "rename the file and upload it again" in msg["Message"]
    assert msg["MessageAttributes"]["status"]["Value"] == "failed"
    # a second delivery of the same event publishes nothing more (messages() drains)
    assert handlers["notify"].handler(event, context)["action"] == "duplicate"
    assert aws.messages() == []


def test_a_refused_key_on_a_succeeded_event_is_skipped(aws, handlers, context):
    event = load_event("batch_succeeded.json")
    event["detail"]["parameters"]["key"] = "input/acme/../field-7.tif"
    out = handlers["notify"].handler(event, context)
    assert out["action"] == "skipped"
    assert aws.messages() == []


def test_a_vrt_band_file_job_is_refused_and_nobody_is_told(aws, handlers, context):
    # input/x/scene.bands/B4.tif: uploaded for the VRT beside it, refused by its own job
    event = load_event("batch_failed_invalid_input.json")
    event["detail"]["parameters"]["key"] = "input/acme/scene.bands/B4.TIF"
    out = handlers["notify"].handler(event, context)
    assert out["action"] == "skipped"
    assert aws.messages() == []


def _train_summary(promotion: dict, comparison: dict | None) -> dict:
    """What batch_image.train.trainer.TrainResult.summary() writes, with the gate's parts."""
    doc = {
        "schema": "rasterdrop.train-summary/1",
        "kind": "train",
        "status": "succeeded",
        "model": {
            "name": "demo",
            "version": "20261202T050000Z",
            "promoted": promotion["promoted"],
            "promotion": promotion,
        },
        "metrics": {"blocked_cv": {"overall_accuracy": 0.9, "kappa": 0.88, "macro_f1": 0.87}},
        "timings_s": {"total": 5.0},
    }
    if comparison is not None:
        doc["comparison"] = comparison
    return doc


COMPARISON = {
    "before": {"overall_accuracy": 0.81, "kappa": 0.77, "macro_f1": 0.75},
    "after": {"overall_accuracy": 0.9, "kappa": 0.88, "macro_f1": 0.87},
    "most_changed": [
        {"id": 3, "name": "grassland", "change": 0.21},
        {"id": 4, "name": "cropland", "change": -0.04},
    ],
}


def test_training_email_says_promoted_and_why_with_the_comparison(aws, handlers, context):
    version = "Wq7mA9xK2pL4nR6tV8yZ0bC3dF5gH1jE"
    reason = "promoted: blocked-CV kappa 0.880 vs 0.770 for 20261201T000000Z on the same blocks"
    promotion = {"policy": "if_better", "promoted": True, "reason": reason}
    aws.put_json(f"models/demo/runs/{version}/summary.json", _train_summary(promotion, COMPARISON))
    handlers["notify"].handler(load_event("batch_train_succeeded.json"), context)
    body = aws.messages()[0]["Message"]
    assert "Promoted     yes: predictions now use it\n" in body
    assert f"why: {reason}" in flat(body)
    assert "Compared     current version -> this one, on the same blocks:" in body
    assert "             accuracy 0.810 -> 0.900\n             kappa 0.770 -> 0.880\n" in body
    assert "F1 changed most: grassland +0.210, cropland -0.040" in body


def test_training_email_says_a_worse_model_was_kept_out(aws, handlers, context):
    version = "Wq7mA9xK2pL4nR6tV8yZ0bC3dF5gH1jE"
    reason = (
        "not promoted: blocked-CV kappa 0.610 is 0.270 below 0.880 of 20261201T000000Z "
        "on the same blocks (tolerance 0.01)"
    )
    promotion = {"policy": "if_better", "promoted": False, "reason": reason}
    skipped = {"skipped": "none of the samples are ones the current version was trained on"}
    aws.put_json(f"models/demo/runs/{version}/summary.json", _train_summary(promotion, skipped))
    handlers["notify"].handler(load_event("batch_train_succeeded.json"), context)
    body = aws.messages()[0]["Message"]
    assert "Promoted     no\n" in body
    assert f"why: {reason}" in flat(body)
    assert "not compared: none of the samples are ones the current version" in flat(body)
