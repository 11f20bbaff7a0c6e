"""`make bootstrap-model` on moto: files first, model.json last, current.json pointed at it;
again: nothing re-uploaded; an older version is pointed at when the operator asks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ops.bootstrap import publish_model
from tests.conftest import make_model, make_scene

BUCKET = "rd-data"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    scene, truth = make_scene(tmp_path, width=20, height=16, seed=3)
    return make_model(tmp_path, scene, truth, name="demo", trees=3)


def read_json(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_publishes_and_points_current_json(s3, model_dir: Path) -> None:
    done = publish_model(s3, BUCKET, model_dir, "demo")
    assert (done.published, done.promoted) == (True, True)
    assert done.uri == f"s3://{BUCKET}/models/demo/20261126T000000Z/"
    assert read_json(s3, "models/demo/current.json")["version"] == "20261126T000000Z"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    prefix = "models/demo/20261126T000000Z/"
    assert {prefix + "model.json", prefix + "model.skops"} <= keys
    assert prefix + "reserved.json" not in keys
    # (model.json last: S3ModelStore.publish, tested with the model stores)


def test_again_is_idempotent(s3, model_dir: Path) -> None:
    publish_model(s3, BUCKET, model_dir, "demo")
    before = s3.list_object_versions(Bucket=BUCKET, Prefix="models/demo/20261126T000000Z/")
    again = publish_model(s3, BUCKET, model_dir, "demo")
    after = s3.list_object_versions(Bucket=BUCKET, Prefix="models/demo/20261126T000000Z/")
    assert (again.published, again.promoted) == (False, False)
    assert len(after["Versions"]) == len(before["Versions"])


def test_operator_can_point_back_at_an_older_version(s3, model_dir: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    shutil.copytree(model_dir, newer)
    card = json.loads((newer / "model.json").read_text())
    card["version"] = "20261201T000000Z"
    (newer / "model.json").write_text(json.dumps(card))
    publish_model(s3, BUCKET, newer, "demo")
    assert read_json(s3, "models/demo/current.json")["version"] == "20261201T000000Z"
    back = publish_model(s3, BUCKET, model_dir, "demo")
    assert back.promoted
    assert read_json(s3, "models/demo/current.json")["version"] == "20261126T000000Z"
