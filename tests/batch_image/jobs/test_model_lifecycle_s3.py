"""The S3 ends of training (fetcher + model store) driving the real train action, then the
predict job using the model it published: the full model life cycle in one bucket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_image import s3io
from batch_image.errors import InvalidInputError
from batch_image.jobs import predict_job
from batch_image.jobs.request import JobRequest
from batch_image.jobs.run_reports import run_id_for, write_run_report
from batch_image.jobs.settings import Settings
from batch_image.model.s3_store import S3ModelStore
from batch_image.train.fetchers import s3_fetcher
from batch_image.train.manifest import parse_manifest_text
from batch_image.train.trainer import train_model
from tests.batch_image.train.helpers import small_sample
from tests.conftest import s3_client, versioned_bucket

pytestmark = pytest.mark.xdist_group("moto_server_train_s3")


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Iterator[Any]:
    yield s3_client(endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    return versioned_bucket(s3, "tr")


def test_reserve_never_hands_out_a_version_twice(s3: Any, bucket: str, tmp_path: Path) -> None:
    a = S3ModelStore(bucket, s3=s3, scratch=tmp_path)
    b = S3ModelStore(bucket, s3=s3, scratch=tmp_path)
    stamp = "20261126T100000Z"
    got = [a.reserve("demo", stamp), b.reserve("demo", stamp), a.reserve("demo", stamp)]
    assert got == [stamp, f"{stamp}-01", f"{stamp}-02"]
    a.release("demo", f"{stamp}-01")
    assert b.reserve("demo", stamp) == f"{stamp}-01"


@pytest.mark.slow
def test_train_in_s3_then_predict_with_the_promoted_model(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    sample = small_sample(tmp_path / "sample", width=300, height=200)
    s3.upload_file(str(sample.scene), bucket, "training/demo/scene a+b.tif")
    s3.upload_file(str(sample.labels), bucket, "training/demo/labels.tif")
    manifest = {
        "name": "demo",
        "classes": [
            {"id": 1, "name": "water", "colour": "#1f78b4"},
            {"id": 2, "name": "forest", "colour": "#1b7837"},
            {"id": 3, "name": "grassland", "colour": "#a6d96a"},
            {"id": 4, "name": "cropland", "colour": "#ffd92f"},
            {"id": 5, "name": "built-up", "colour": "#e31a1c"},
            {"id": 6, "name": "bare soil", "colour": "#b15928"},
        ],
        "samples": [{"image": "scene a+b.tif", "labels": "labels.tif"}],
        "estimator": {"type": "random_forest", "params": {"n_estimators": 10}},
        "max_samples_per_class": 300,
        "min_samples_per_class": 5,
        "cv": {"block_size": 32, "folds": 2},
    }
    put = s3.put_object(
        Bucket=bucket, Key="training/demo/manifest.json", Body=json.dumps(manifest).encode()
    )
    # What the train job does in S3 mode, with the S3 ends of the train seam
    run = run_id_for(put.get("VersionId"))
    text = s3io.get_bytes(s3, bucket, "training/demo/manifest.json", version_id=run)
    assert text is not None
    spec = parse_manifest_text(text, source="manifest.json")
    fetch = s3_fetcher(f"s3://{bucket}/training/demo/", tmp_path / "fetched", s3=s3)
    store = S3ModelStore(bucket, s3=s3, scratch=tmp_path)
    result = train_model(spec, fetch, store, promote=True)
    write_run_report(
        s3, bucket, "models/", "demo", run, {**result.summary(), "status": "succeeded"}
    )

    prefix = f"models/demo/{result.version}/"
    keys = {o["Key"] for o in s3io.list_keys(s3, bucket, prefix)}
    assert {prefix + "model.json", prefix + "model.skops"} <= keys
    assert prefix + "reserved.json" not in keys
    assert store.current("demo") == result.version
    assert s3io.get_json(s3, bucket, f"models/demo/runs/{run}/summary.json") is not None
    with pytest.raises(InvalidInputError):
        fetch("missing.tif")

    # The predict job follows current.json to the model just published
    s3.upload_file(str(sample.scene), bucket, "input/field 1.tif")
    settings = Settings(model_uri=f"s3://{bucket}/models/demo/", scratch_dir=tmp_path / "s")
    outcome = predict_job.run(JobRequest(bucket, "input/field 1.tif"), settings, s3=s3, workers=1)
    assert outcome.status == "succeeded"
    assert outcome.summary is not None
    assert outcome.summary["model"] == {
        "name": "demo",
        "version": result.version,
        "uri": f"s3://{bucket}/{prefix}",
    }
