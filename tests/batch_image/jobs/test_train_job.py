"""``train --bucket B --key training/<name>/manifest.json``: the train job's S3 mode."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from batch_image.cli.train import train
from batch_image.synthetic.scene import SAMPLE_CLASSES
from tests.batch_image.train.helpers import small_sample

CLASSES = [{"id": i, "name": n, "colour": c} for i, n, c in SAMPLE_CLASSES]
BUCKET = "rd-train"


@pytest.fixture
def s3(monkeypatch, tmp_path):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RASTERDROP_SCRATCH_DIR": str(tmp_path / "scratch"),
        "RASTERDROP_WORKERS": "1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    (tmp_path / "scratch").mkdir()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def _manifest(**over):
    data = {
        "name": "landcover",
        "classes": CLASSES,
        "samples": [{"image": "scene.tif", "labels": "labels.tif"}],
        "estimator": {"params": {"n_estimators": 8}},
        "max_samples_per_class": 200,
        "cv": {"block_size": 40, "folds": 3},
        "promote": True,
    }
    data.update(over)
    return data


def _upload(s3, tmp_path, manifest, name="landcover"):
    paths = small_sample(tmp_path / "sample", width=300, height=200, seed=1)
    s3.upload_file(str(paths.scene), BUCKET, f"training/{name}/scene.tif")
    s3.upload_file(str(paths.labels), BUCKET, f"training/{name}/labels.tif")
    put = s3.put_object(
        Bucket=BUCKET,
        Key=f"training/{name}/manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    return put["VersionId"]


def _run(key, version):
    return CliRunner().invoke(train, ["--bucket", BUCKET, "--key", key, "--version-id", version])


def _get(s3, key):
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_s3_mode_publishes_promotes_and_reports(s3, tmp_path):
    version = _upload(s3, tmp_path, _manifest())
    result = _run("training/landcover/manifest.json", version)
    assert result.exit_code == 0, result.output
    summary = _get(s3, f"models/landcover/runs/{version}/summary.json")
    assert summary["kind"] == "train" and summary["status"] == "succeeded"
    model_version = summary["model"]["version"]
    assert summary["model"]["promoted"] is True
    assert summary["manifest"]["version_id"] == version
    assert set(summary["metrics"]) == {"blocked_cv", "random_cv"}
    assert _get(s3, "models/landcover/current.json")["version"] == model_version
    keys = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"models/landcover/{model_version}/")[
            "Contents"
        ]
    }
    prefix = f"models/landcover/{model_version}/"
    assert {prefix + f for f in ("model.skops", "model.json", "metrics.json", "report.md")} <= keys
    card = _get(s3, prefix + "model.json")
    assert card["training_data"]["samples"][0]["image"] == "scene.tif"
    assert not list((tmp_path / "scratch").iterdir())  # scratch cleaned up


def test_s3_mode_refusal_writes_error_report_and_exits_2(s3, tmp_path):
    version = _upload(s3, tmp_path, _manifest(classes=CLASSES[:5]))
    result = _run("training/landcover/manifest.json", version)
    assert result.exit_code == 2
    assert "label values [6]" in result.stderr
    error = _get(s3, f"models/landcover/runs/{version}/error.json")
    assert error["status"] == "failed" and error["category"] == "invalid_input"
    assert error["code"] == "labels_unknown_class" and error["kind"] == "train"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="models/landcover/").get("Contents", [])
    assert [o["Key"] for o in listed] == [f"models/landcover/runs/{version}/error.json"]


@pytest.mark.parametrize(
    ("manifest", "phrase"),
    [
        (_manifest(name="other"), "differs from its folder training/landcover/"),
        (
            _manifest(samples=[{"image": "/etc/hostname", "labels": "labels.tif"}]),
            "must be keys relative to the manifest",
        ),
        (
            _manifest(samples=[{"image": "s3://elsewhere/a.tif", "labels": "labels.tif"}]),
            "must be keys relative to the manifest",
        ),
        (_manifest(samples=[{"image": "missing.tif", "labels": "labels.tif"}]), "does not exist"),
    ],
)
def test_s3_mode_refuses_foreign_paths_and_names(s3, tmp_path, manifest, phrase):
    version = _upload(s3, tmp_path, manifest)
    result = _run("training/landcover/manifest.json", version)
    assert result.exit_code == 2, result.output
    assert phrase in result.stderr
    assert _get(s3, f"models/landcover/runs/{version}/error.json")["status"] == "failed"


def test_s3_mode_rejects_keys_outside_training(s3):
    result = _run("input/a.tif", "v1")
    assert result.exit_code == 2
    assert "training/<name>/manifest.json" in result.stderr
    usage = CliRunner().invoke(train, ["--bucket", BUCKET])
    assert usage.exit_code == 2 and "both --bucket and --key" in usage.output


def test_s3_mode_unresolved_version_reads_latest_and_reports_under_null(s3, tmp_path):
    _upload(s3, tmp_path, _manifest(promote=False))
    result = _run("training/landcover/manifest.json", "Ref::version")
    assert result.exit_code == 0, result.output
    summary = _get(s3, "models/landcover/runs/null/summary.json")
    assert summary["model"]["promoted"] is False
    assert summary["manifest"]["version_id"] is None
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="models/landcover/current.json")
    assert listed["KeyCount"] == 0


def _explode(*_args, **_kw):
    raise OSError("disk on fire\nsecond line")


@pytest.mark.parametrize(("attempt", "recorded"), [("3", True), ("2", False)])
def test_s3_mode_records_an_uncategorized_exception_as_internal_on_the_last_attempt(
    s3, tmp_path, monkeypatch, attempt, recorded
):
    """Like the predict job: not a RasterdropError → internal/unexpected, exit 1 (retry);
    error.json only when no retry follows, so a later success leaves no stale failure."""
    import batch_image.train.trainer as trainer

    monkeypatch.setattr(trainer, "train_model", _explode)
    monkeypatch.setenv("RASTERDROP_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", attempt)
    version = _upload(s3, tmp_path, _manifest())
    result = _run("training/landcover/manifest.json", version)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().endswith("error [internal/unexpected]: OSError: disk on fire")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="models/landcover/").get("Contents", [])
    if recorded:
        error = _get(s3, f"models/landcover/runs/{version}/error.json")
        assert (error["category"], error["code"]) == ("internal", "unexpected")
        assert error["message"] == "OSError: disk on fire"
        assert error["kind"] == "train" and error["manifest"]["version_id"] == version
        assert [o["Key"] for o in listed] == [f"models/landcover/runs/{version}/error.json"]
    else:
        assert listed == []
    assert not list((tmp_path / "scratch").iterdir())  # scratch cleaned up either way


def test_s3_mode_late_older_training_reports_not_promoted(s3, tmp_path):
    """current.json only moves forward: a training older than the current version asked
    for promotion, did not get it, and its run report says so."""
    newer = "29991231T235959Z"
    s3.put_object(
        Bucket=BUCKET, Key="models/landcover/current.json", Body=json.dumps({"version": newer})
    )
    version = _upload(s3, tmp_path, _manifest(promote=True))
    result = _run("training/landcover/manifest.json", version)
    assert result.exit_code == 0, result.output
    summary = _get(s3, f"models/landcover/runs/{version}/summary.json")
    assert summary["model"]["promoted"] is False
    assert _get(s3, "models/landcover/current.json")["version"] == newer
    assert "not promoted" in result.stderr
