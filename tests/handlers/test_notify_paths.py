"""Key conventions shared with the job, failure classification and settings (pure)."""

from __future__ import annotations

import pytest
from notify_support import load_event

from rasterdrop_notify.errors import ConfigurationError
from rasterdrop_notify.events import BatchJobStateChangeEvent, S3ObjectCreatedEvent
from rasterdrop_notify.failures import JobFailure, choose_failure, classify_job
from rasterdrop_notify.paths import (
    KeyRefused,
    output_prefix_for,
    tenant_of,
    training_name,
    training_run_prefix,
)
from rasterdrop_notify.settings import Settings


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("input/a/b.tif", "output/a/b/"),
        ("input/b.TIF", "output/b/"),
        ("input/x/y/z.tiff", "output/x/y/z/"),
        ("input/x/y/z.TiFf", "output/x/y/z/"),
        ("input/my field+1.tif", "output/my field+1/"),
        ("input/ünï/çødé.tif", "output/ünï/çødé/"),
        ("input/a.b.c.tif", "output/a.b.c/"),
    ],
)
def test_output_prefix_for(key, expected):
    assert output_prefix_for(key) == expected


@pytest.mark.parametrize(
    ("key", "code", "says"),
    [
        ("", "bad_key", "is empty"),
        ("input/" + "a" * 1015 + ".tif", "bad_key", "longer than 1024 bytes"),
        ("input/a\nb.tif", "bad_key", "control characters"),
        ("input/a\ud800.tif", "bad_key", "not valid unicode"),
        ("other/a.tif", "outside_input_prefix", "is not under input/"),
        ("input/a.png", "not_a_tiff", "does not end in .tif, .tiff or .vrt"),
        ("input/a.tif.json", "not_a_tiff", "does not end in .tif, .tiff or .vrt"),
        ("input/.tif", "bad_key", "empty, '.' or '..' path segment"),
        ("input/a/.tif", "bad_key", "empty, '.' or '..' path segment"),
        ("input/a//b.tif", "bad_key", "empty, '.' or '..' path segment"),
        ("input/../b.tif", "bad_key", "empty, '.' or '..' path segment"),
        ("input/a/..tif", "bad_key", "empty, '.' or '..' path segment"),
    ],
)
def test_output_prefix_for_refuses(key, code, says):
    with pytest.raises(ValueError, match=says) as refused:
        output_prefix_for(key)
    assert isinstance(refused.value, KeyRefused)
    assert (refused.value.code, refused.value.key) == (code, key)


def test_key_checks_run_in_the_jobs_order():
    # outside the prefix AND not a TIFF AND a control character: the control character wins
    with pytest.raises(KeyRefused, match="control characters"):
        output_prefix_for("other/\x00.png")
    with pytest.raises(KeyRefused) as refused:
        output_prefix_for("other/a.png")
    assert refused.value.code == "outside_input_prefix"


def test_a_key_of_exactly_1024_bytes_is_accepted():
    key = "input/" + "é" * 507 + ".tif"  # bytes are counted, not characters: 6 + 1014 + 4
    assert len(key.encode()) == 1024
    assert output_prefix_for(key) == "output/" + "é" * 507 + "/"
    with pytest.raises(KeyRefused, match="longer than 1024 bytes"):
        output_prefix_for("input/" + "é" * 507 + "x.tif")


def test_custom_prefixes():
    assert output_prefix_for("in/a.tif", "in/", "out/") == "out/a/"
    assert tenant_of("in/t/a.tif", "in/") == "t"


def test_tenant_of():
    assert tenant_of("input/acme/a.tif") == "acme"
    assert tenant_of("input/a.tif") is None
    assert tenant_of("training/demo/manifest.json") is None


def test_training_paths():
    assert training_name("training/demo/manifest.json") == "demo"
    assert training_name("training/demo/other.json") is None
    assert training_name("training/a/b/manifest.json") is None
    assert training_run_prefix("demo", "V1") == "models/demo/runs/V1/"


@pytest.mark.parametrize("absent", [None, "", "null", "None", "undefined", "Ref::version"])
def test_training_run_of_an_unversioned_manifest_is_runs_null(absent):
    assert training_run_prefix("demo", absent) == "models/demo/runs/null/"


@pytest.mark.parametrize(
    ("sample", "category", "exit_code", "attempts"),
    [
        ("batch_failed_invalid_input.json", "invalid_input", 2, 1),
        ("batch_failed_model_error.json", "model_error", 3, 1),
        ("batch_failed_oom.json", "out_of_memory", 137, 1),
        ("batch_failed_spot.json", "instance_reclaimed", None, 3),
        ("batch_failed_timeout.json", "timeout", 137, 1),
        ("batch_failed_image_pull.json", "image_pull", None, 1),
    ],
)
def test_classify_job_samples(sample, category, exit_code, attempts):
    event = BatchJobStateChangeEvent.model_validate(load_event(sample))
    failure = classify_job(event.detail)
    assert (failure.category, failure.exit_code, failure.attempts) == (
        category,
        exit_code,
        attempts,
    )
    assert failure.reason


def test_spot_on_an_earlier_attempt_only_is_not_spot():
    raw = load_event("batch_failed_spot.json")
    raw["detail"]["attempts"][-1] = {
        "container": {"exitCode": 1, "reason": None, "logStreamName": "x"},
        "startedAt": 1,
        "stoppedAt": 2,
        "statusReason": "Essential container in task exited",
    }
    raw["detail"]["statusReason"] = "Essential container in task exited"
    failure = classify_job(BatchJobStateChangeEvent.model_validate(raw).detail)
    assert failure.category == "internal"
    assert failure.reason == "The job stopped with exit code 1."


def test_error_json_wins_unless_the_last_attempt_died_of_infrastructure():
    doc = {"category": "invalid_input", "code": "not_a_tiff", "message": "Not a TIFF."}
    by_exit = JobFailure("invalid_input", "exit 2", 2, 1)
    assert choose_failure(by_exit, doc) == JobFailure(
        "invalid_input", "Not a TIFF.", 2, 1, "not_a_tiff"
    )
    oom = JobFailure("out_of_memory", "OutOfMemoryError: ...", 137, 2)
    assert choose_failure(oom, doc) is oom


def test_s3_event_model_keeps_the_raw_key():
    raw = load_event("s3_object_created_oversize.json")
    raw["detail"]["object"]["key"] = "input/a+b%20c.tif"
    event = S3ObjectCreatedEvent.model_validate(raw)
    assert event.detail.object.key == "input/a+b%20c.tif"
    assert event.detail.object.version_id == "uhggCJ2_B6gU2JaXWXebnXFDstO0ID6G"


def test_batch_event_model_reads_parameters():
    event = BatchJobStateChangeEvent.model_validate(load_event("batch_succeeded.json"))
    assert event.detail.parameters["key"] == "input/acme/field-7.tif"
    assert event.detail.attempts[-1].container.exitCode == 0


def test_settings_from_env():
    s = Settings.from_env(
        {
            "RASTERDROP_BUCKET": "b",
            "RASTERDROP_TOPIC_ARN": "arn:t",
            "RASTERDROP_INPUT_PREFIX": "in",
            "RASTERDROP_LINK_TTL_DAYS": "2.5",
            "RASTERDROP_MAX_INPUT_BYTES": "1000",
        }
    )
    assert (s.bucket, s.input_prefix, s.output_prefix) == ("b", "in/", "output/")
    assert s.link_ttl_seconds == 216000
    assert s.max_input_bytes == 1000
    defaults = Settings.from_env({})
    assert defaults.link_ttl_days == 7 and defaults.lease_seconds == 90
    assert defaults.max_input_bytes == 4294967296  # the stack's default (cdk/config.py): 4 GiB
    assert (defaults.presign_seconds, defaults.output_retention_days) == (300, 0)
    with pytest.raises(ConfigurationError, match="RASTERDROP_TOPIC_ARN"):
        defaults.require("topic_arn")


@pytest.mark.parametrize(
    "env",
    [
        {"RASTERDROP_LINK_TTL_DAYS": "0"},
        {"RASTERDROP_LINK_TTL_DAYS": "400"},
        {"RASTERDROP_MAX_INPUT_BYTES": "ten"},
        {"RASTERDROP_LINK_PRESIGN_SECONDS": "7200"},
    ],
)
def test_settings_refuse_bad_values(env):
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)
