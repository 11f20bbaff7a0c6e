"""S3 mode of ``assess`` against moto's server over real HTTP: the predict job draws
``sample.gpkg``, a person labels it, the upload to ``assessments/`` is assessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_image.errors import InvalidInputError
from batch_image.jobs import assess_job, predict_job
from batch_image.jobs.request import JobRequest
from batch_image.jobs.settings import from_env
from tests.batch_image.accuracy.conftest import label
from tests.conftest import make_model, make_scene, s3_client, versioned_bucket

pytestmark = pytest.mark.xdist_group("moto_server_job")


@pytest.fixture
def world(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    s3 = s3_client(endpoint)
    bucket = versioned_bucket(s3, "b")
    scene, truth = make_scene(tmp_path, width=60, height=50)
    model = make_model(tmp_path, scene, truth)
    for f in model.iterdir():
        s3.upload_file(str(f), bucket, f"models/m/v1/{f.name}")
    s3.put_object(Bucket=bucket, Key="models/m/current.json", Body=b'{"version": "v1"}')
    env = {
        "RASTERDROP_MODEL_URI": f"s3://{bucket}/models/m/",
        "RASTERDROP_SCRATCH_DIR": str(tmp_path / "scratch"),
        "RASTERDROP_ACCURACY_SAMPLE_N": "24",
        "RASTERDROP_MMU_PIXELS": "3",
        "RASTERDROP_LEASE_SECONDS": "30",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    head = s3.put_object(Bucket=bucket, Key="input/t/field.tif", Body=scene.read_bytes())
    req = JobRequest(bucket, "input/t/field.tif", head["VersionId"])
    outcome = predict_job.run(req, from_env(), s3=s3, workers=1)
    assert outcome.status == "succeeded"
    return s3, bucket, tmp_path, outcome.summary


def _upload_labelled(s3, bucket, tmp: Path, reference) -> str:
    s3.download_file(bucket, "output/t/field/sample.gpkg", str(tmp / "sample.gpkg"))
    labelled = label(tmp / "sample.gpkg", tmp / "labelled.gpkg", reference)
    return s3.put_object(Bucket=bucket, Key="assessments/t/field.gpkg", Body=labelled.read_bytes())[
        "VersionId"
    ]


def test_predict_publishes_the_sample_and_the_assessment_follows(world):
    s3, bucket, tmp, summary = world
    assert summary["outputs"]["accuracy_sample"] == "output/t/field/sample.gpkg"
    assert summary["postprocess"]["mmu_pixels"] == 3
    version = _upload_labelled(s3, bucket, tmp, lambda p: p["map_class"])
    req = JobRequest(bucket, "assessments/t/field.gpkg", version)
    outcome = assess_job.run(req, from_env(), s3=s3)
    assert outcome.status == "succeeded"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    folder = "output/t/field/assessment/"
    assert {folder + n for n in ("assessment.json", "assessment.md", "assessment.png",
                                 "summary.json")} <= keys  # fmt: skip
    done = json.loads(s3.get_object(Bucket=bucket, Key=folder + "summary.json")["Body"].read())
    assert done["kind"] == "assess" and done["sample"]["version_id"] == version
    assert done["overall_accuracy"]["value"] == 1.0
    mapped = {c["id"]: c["pixels"] * 100.0 for c in summary["classes"] if c["pixels"]}
    assert {c["id"]: c["area"]["value"] for c in done["classes"]} == pytest.approx(mapped)


def test_a_refused_sample_writes_error_json_and_exits_2(world):
    s3, bucket, tmp, _ = world
    version = _upload_labelled(s3, bucket, tmp, lambda p: 77)
    runner = CliRunner()
    from batch_image.cli.main import main

    result = runner.invoke(
        main,
        ["assess", "--bucket", bucket, "--key", "assessments/t/field.gpkg", "--version-id",
         version],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    err = json.loads(
        s3.get_object(Bucket=bucket, Key="output/t/field/assessment/error.json")["Body"].read()
    )
    assert err["code"] == "bad_reference" and err["kind"] == "assess"
    assert "assessments/t/field.gpkg" in err["message"]


def test_a_sample_without_a_prediction_is_refused(world):
    s3, bucket, tmp, _ = world
    s3.download_file(bucket, "output/t/field/sample.gpkg", str(tmp / "s.gpkg"))
    v = s3.put_object(Bucket=bucket, Key="assessments/t/other.gpkg", Body=b"x")["VersionId"]
    with pytest.raises(InvalidInputError, match="no finished prediction") as err:
        assess_job.run(JobRequest(bucket, "assessments/t/other.gpkg", v), from_env(), s3=s3)
    assert err.value.code == "no_prediction"


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("input/t/field.gpkg", "outside_assessments_prefix"),
        ("assessments/t/field.tif", "not_a_geopackage"),
        ("assessments/t//field.gpkg", "bad_key"),
        ("assessments/../field.gpkg", "bad_key"),
    ],
)
def test_sample_keys_follow_the_input_key_rule(key, code):
    with pytest.raises(InvalidInputError) as err:
        assess_job.check_sample_key(key)
    assert err.value.code == code
    assert assess_job.check_sample_key("assessments/a b+c/field.GPKG") == "a b+c/field"
