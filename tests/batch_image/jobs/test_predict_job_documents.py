"""The S3 job's summary.json and error.json as published: key for key, with
``timings_s.job_total`` in the object itself (measured after the result files are
uploaded, just before summary.json is written)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from batch_image.errors import ConfigError, InvalidInputError
from batch_image.jobs import predict_job
from batch_image.jobs.request import JobRequest
from batch_image.jobs.settings import Settings
from tests.batch_image.predict import shapes
from tests.conftest import s3_client, versioned_bucket

UPLOAD_PAUSE = 0.5


class SlowUploads:
    """An S3 client whose result-file uploads take UPLOAD_PAUSE longer."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.uploads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def upload_file(self, filename: str, bucket: str, key: str, **kw: Any) -> Any:
        time.sleep(UPLOAD_PAUSE)
        self.uploads.append(key)
        return self._s3.upload_file(filename, bucket, key, **kw)


@pytest.fixture
def bucket(endpoint: str, model4: Path) -> tuple[Any, str]:
    s3 = s3_client(endpoint)
    name = versioned_bucket(s3)
    for f in model4.iterdir():
        s3.upload_file(str(f), name, f"models/m/v1/{f.name}")
    s3.put_object(Bucket=name, Key="models/m/current.json", Body=b'{"version": "v1"}')
    return s3, name


def _settings(bucket: str, tmp: Path, **kw: Any) -> Settings:
    return Settings(model_uri=f"s3://{bucket}/models/m/", scratch_dir=tmp / "scratch", **kw)


def _json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_published_summary_has_job_total_measured_after_the_uploads(
    bucket, tmp_path: Path, scene4
) -> None:
    s3, name = bucket
    s3.upload_file(str(scene4[0]), name, "input/a b.tif")
    slow = SlowUploads(s3)
    outcome = predict_job.run(
        JobRequest(name, "input/a b.tif"), _settings(name, tmp_path), s3=slow, workers=1
    )
    assert outcome.status == "succeeded"
    published = _json(s3, name, "output/a b/summary.json")
    assert published == outcome.summary  # one value: what is returned is what was written
    t = published["timings_s"]
    assert "job_total" in t
    # four result files were uploaded, each slowed down, before the summary was written
    assert len(slow.uploads) == 5 and "output/a b/summary.json" not in slow.uploads
    assert t["job_total"] >= t["checks"] + t["total"] + 5 * UPLOAD_PAUSE - 0.01


def test_published_summary_keys_and_s3_fields(bucket, tmp_path: Path, scene4) -> None:
    s3, name = bucket
    put = s3.put_object(Bucket=name, Key="input/t/x.tif", Body=scene4[0].read_bytes())
    predict_job.run(JobRequest(name, "input/t/x.tif"), _settings(name, tmp_path), s3=s3, workers=1)
    doc = _json(s3, name, "output/t/x/summary.json")
    assert shapes.structure(doc) == shapes.S3_SUMMARY
    shapes.assert_follows_contract(doc, "rasterdrop.summary/1")
    assert doc["outputs"] == {
        "classes": "output/t/x/classes.tif",
        "confidence": "output/t/x/confidence.tif",
        "preview": "output/t/x/preview.png",
        "qgis_style": "output/t/x/classes.qml",
        "review": "output/t/x/review.gpkg",
    }
    assert doc["model"]["uri"] == f"s3://{name}/models/m/v1/"
    assert doc["input"]["path"] is None
    assert doc["input"]["version_id"] == put["VersionId"]
    assert doc["input"]["size_bytes"] == scene4[0].stat().st_size
    assert len(doc["run_id"]) == 32


def test_error_json_keys_once_the_model_is_known(bucket, tmp_path: Path) -> None:
    s3, name = bucket
    s3.put_object(Bucket=name, Key="input/p.tif", Body=b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(InvalidInputError):
        predict_job.run(JobRequest(name, "input/p.tif"), _settings(name, tmp_path), s3=s3)
    err = _json(s3, name, "output/p/error.json")
    assert shapes.structure(err) == shapes.S3_ERROR
    shapes.assert_follows_contract(err, "rasterdrop.error/1")
    assert err["model"]["uri"] == f"s3://{name}/models/m/v1/"
    assert len(err["run_id"]) == 32  # known: HEAD gave the version before the header check


def test_error_json_before_the_model_card_states_nulls(bucket, tmp_path: Path) -> None:
    s3, name = bucket
    settings = Settings(model_uri=None, scratch_dir=tmp_path / "s")
    with pytest.raises(ConfigError):
        predict_job.run(JobRequest(name, "input/q.tif"), settings, s3=s3)
    err = _json(s3, name, "output/q/error.json")
    assert list(err) == shapes.S3_ERROR[""]
    assert (err["model"], err["run_id"], err["code"]) == (None, None, "config_invalid")
