"""The train job's S3 mode (``train --bucket --key``): refusals and their run reports.

A successful training through the rule and the job definition is covered end to end in
tests/e2e/test_sandbox_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_image import train_job
from batch_image.errors import InvalidInputError
from batch_image.settings import Settings
from sandbox.server import MotoServer

BUCKET = "train-job-test"


@pytest.fixture(scope="module")
def s3() -> Iterator:
    with MotoServer() as server:
        client = server.client("s3")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": server.region}
        )
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def report(s3, name: str, run: str, filename: str) -> dict:
    key = f"models/{name}/runs/{run}/{filename}"
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_model_name_comes_from_the_key() -> None:
    assert train_job.model_name_of("training/demo/manifest.json") == "demo"
    with pytest.raises(InvalidInputError):
        train_job.model_name_of("manifest.json")


def test_manifest_naming_another_model_is_refused(s3, tmp_path: Path) -> None:
    manifest = {
        "name": "other",
        "classes": [{"id": 1, "name": "a"}],
        "samples": [{"image": "x.tif", "labels": "y.tif"}],
    }
    put = s3.put_object(
        Bucket=BUCKET, Key="training/demo/manifest.json", Body=json.dumps(manifest).encode()
    )
    code = train_job.run(
        BUCKET,
        "training/demo/manifest.json",
        put["VersionId"],
        Settings(scratch_dir=tmp_path),
        s3=s3,
    )
    assert code == 2
    error = report(s3, "demo", put["VersionId"], "error.json")
    assert error["code"] == "manifest_name_mismatch"
    assert error["kind"] == "train" and error["status"] == "failed"


def test_missing_training_data_is_invalid_input(s3, tmp_path: Path) -> None:
    manifest = {
        "name": "demo",
        "classes": [{"id": 1, "name": "a"}],
        "samples": [{"image": "missing.tif", "labels": "missing_labels.tif"}],
    }
    put = s3.put_object(
        Bucket=BUCKET, Key="training/demo/manifest.json", Body=json.dumps(manifest).encode()
    )
    code = train_job.run(
        BUCKET,
        "training/demo/manifest.json",
        put["VersionId"],
        Settings(scratch_dir=tmp_path),
        s3=s3,
    )
    assert code == 2
    assert report(s3, "demo", put["VersionId"], "error.json")["code"] == "not_found"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="models/demo/current.json").get("KeyCount") == 0
