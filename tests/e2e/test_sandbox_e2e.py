"""End to end through the sandbox: the synthesized stack's rules, job definitions and handlers
run against moto's server; one server and one template for the whole module.

The stack is configured with a tiny size limit (200 kB, large-job route above 60 kB) and
email routing, so every route of the template is exercised with rasters of a few kB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sandbox.core import Options, Sandbox
from tests.conftest import make_model, make_scene

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-e2e")]

CONTEXT = {
    "max_input_bytes": 200_000,
    "large_job_threshold_bytes": 60_000,
    "job_attempts": 3,
    "model_name": "demo",
    "notification_emails": ["ops@example.com"],
    "tenant_routing": {"acme": ["acme@example.com"]},
}
PART = 16 * 1024


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("e2e-data")
    (tmp / "small").mkdir()
    (tmp / "big").mkdir()
    small, truth = make_scene(tmp / "small", width=45, height=37, seed=1)
    big, _ = make_scene(tmp / "big", width=150, height=120, seed=2)  # ~144 kB: large-job route
    model = make_model(tmp, small, truth, name="demo")
    return {"small": small, "big": big, "model": model}


@pytest.fixture(scope="module")
def sb(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("e2e-sandbox")
    with Sandbox(Options(context=CONTEXT, work_dir=work, part_min_size=PART)) as sandbox:
        sandbox.publish_model(data["model"], "demo")
        sandbox.run_until_idle()
        yield sandbox


def local_classes(scene: Path, model: Path, out: Path) -> np.ndarray:
    """What the local CLI predicts for ``scene``: the reference pixels."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "batch_image",
            "predict",
            str(scene),
            "--model",
            str(model),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    with rasterio.open(out / "classes.tif") as src:
        return src.read(1)


def s3_classes(sb: Sandbox, prefix: str, dest: Path) -> np.ndarray:
    with rasterio.open(sb.download(prefix + "classes.tif", dest / "classes.tif")) as src:
        return src.read(1)


def news(sb: Sandbox, before: int) -> list:
    return sb.messages()[before:]


def summary(sb: Sandbox, prefix: str) -> dict:
    return json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key=prefix + "summary.json")["Body"].read()
    )


def test_template_drives_the_sandbox(sb: Sandbox) -> None:
    rules = {r.logical_id: r for r in sb.rules}
    predict = rules["PredictRule"]
    assert predict.pattern["detail"]["bucket"]["name"] == [sb.bucket]  # Ref resolved
    assert predict.targets[0].kind == "batch"
    jd = sb.job_definitions[predict.targets[0].job_definition]
    assert jd.command[0] == "predict" and "Ref::key" in jd.command
    assert jd.environment["RASTERDROP_MODEL_URI"] == f"s3://{sb.bucket}/models/demo/"
    assert jd.environment["RASTERDROP_MAX_INPUT_BYTES"] == "200000"
    assert sb.runner.entrypoint[1:] == ["-m", "batch_image"]
    assert (sb.prefix("input"), sb.prefix("output")) == ("input/", "output/")
    assert sb.train_manifest_key("demo") == "training/demo/manifest.json"
    notify = sb.functions["NotifyFunction"]
    assert notify.handler == "notify.handler"
    assert notify.environment["RASTERDROP_LINK_BASE_URL"].startswith("http://127.0.0.1:")
    assert notify.environment["RASTERDROP_TOPIC_ARN"] == sb.names["NotificationTopic"]


def test_two_files_at_once_with_space_and_plus(sb: Sandbox, data: dict, tmp_path: Path) -> None:
    before = len(sb.messages())
    jobs_before = len(sb.jobs)
    keys = {"input/acme/field 7+b.tif": data["small"], "input/beta/wide scene.TIF": data["big"]}
    for key, path in keys.items():
        sb.upload(path, key)
    sb.run_until_idle()

    jobs = sb.jobs[jobs_before:]
    assert sorted(j.definition.logical_id for j in jobs) == [
        "PredictJobDefinition",
        "PredictLargeJobDefinition",
    ]
    assert {j.parameters["key"] for j in jobs} == set(keys)  # raw keys, not URL-encoded
    assert all(j.status == "SUCCEEDED" and len(j.attempts) == 1 for j in jobs)
    # Intermediate job states and the jobs' own writes (output/, partial/) start nothing.
    for d in sb.trace:
        if d.summary.startswith("batch") and not d.summary.endswith(("SUCCEEDED", "FAILED")):
            assert d.rule is None, d
        if d.summary.startswith(("s3 Object Created output/", "s3 Object Created partial/")):
            assert d.kind not in ("batch",), d

    messages = news(sb, before)
    assert len(messages) == 2
    by_tenant = {m.attributes["tenant"]: m for m in messages}
    assert set(by_tenant) == {"acme", "beta"}
    assert all(m.attributes["status"] == "succeeded" for m in messages)
    assert "field 7+b.tif" in by_tenant["acme"].subject
    assert sorted(sb.recipients(by_tenant["acme"])) == ["acme@example.com", "ops@example.com"]
    assert sb.recipients(by_tenant["beta"]) == ["ops@example.com"]

    reference = local_classes(data["small"], data["model"], tmp_path / "local")
    got = s3_classes(sb, "output/acme/field 7+b/", tmp_path / "s3")
    np.testing.assert_array_equal(got, reference)
    doc = summary(sb, "output/acme/field 7+b/")
    assert doc["input"]["key"] == "input/acme/field 7+b.tif"
    assert doc["model"]["name"] == "demo"

    # The email's first link goes through the link handler to the object in S3.
    link = next(w for w in by_tenant["acme"].body.split() if w.startswith("http://127.0.0.1"))
    with urllib.request.urlopen(link, timeout=30) as resp:  # noqa: S310 - local endpoint
        body = resp.read()
    key = "output/acme/field 7+b/classes.tif"
    assert body == sb.s3.get_object(Bucket=sb.bucket, Key=key)["Body"].read()


def test_multipart_upload(sb: Sandbox, data: dict) -> None:
    before = len(sb.messages())
    event = sb.upload(data["small"], "input/acme/multi part.tif", multipart=True, part_size=PART)
    assert event["detail"]["reason"] == "CompleteMultipartUpload"
    assert event["detail"]["object"]["etag"].endswith("-2")
    sb.run_until_idle()
    job = sb.jobs[-1]
    assert job.parameters["etag"] == event["detail"]["object"]["etag"]
    assert job.status == "SUCCEEDED"
    (message,) = news(sb, before)
    assert message.attributes["status"] == "succeeded"
    assert summary(sb, "output/acme/multi part/")["input"]["etag"].strip('"').endswith("-2")


def test_oversize_upload_is_rejected_without_a_job(sb: Sandbox) -> None:
    before, jobs_before = len(sb.messages()), len(sb.jobs)
    event = sb.upload(b"\0" * 250_000, "input/acme/huge.tif")
    sb.run_until_idle()
    assert len(sb.jobs) == jobs_before
    rules = [d.rule for d in sb.trace if d.event_id == event["id"]]
    assert rules == ["OversizeRule"]
    (message,) = news(sb, before)
    assert message.attributes["status"] == "rejected"
    assert "huge.tif" in message.subject
    assert "the limit is 195.3 KiB" in message.body  # 200,000 bytes, from cdk.json context
    assert sb.keys("output/acme/huge/") == []


def test_corrupt_file_fails_once_with_a_failure_email(sb: Sandbox) -> None:
    before = len(sb.messages())
    sb.upload(b"this is not a tiff at all" * 40, "input/acme/corrupt.tif")
    sb.run_until_idle()
    job = sb.jobs[-1]
    assert job.status == "FAILED"
    assert [a.outcome.exit_code for a in job.attempts] == [2]  # EXIT on 2: never retried
    (message,) = news(sb, before)
    assert message.attributes["status"] == "failed"
    assert "corrupt.tif" in message.subject
    error = json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key="output/acme/corrupt/error.json")["Body"].read()
    )
    assert error["category"] == "invalid_input"
    assert sb.keys("output/acme/corrupt/summary.json") == []
    # the input is never modified or deleted
    assert (
        sb.s3.head_object(Bucket=sb.bucket, Key="input/acme/corrupt.tif")["ContentLength"] == 1000
    )


def test_duplicate_event_gives_one_output_and_one_email(sb: Sandbox, data: dict) -> None:
    before = len(sb.messages())
    event = sb.upload(data["small"], "input/acme/twice.tif")
    sb.run_until_idle()
    sb.put_event(event)  # EventBridge delivers at least once
    sb.run_until_idle()
    jobs = [j for j in sb.jobs if j.parameters["key"] == "input/acme/twice.tif"]
    assert [j.status for j in jobs] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(news(sb, before)) == 1
    versions = sb.s3.list_object_versions(
        Bucket=sb.bucket, Prefix="output/acme/twice/summary.json"
    ).get("Versions", [])
    assert len(versions) == 1


def test_killed_job_is_retried_and_resumes_to_the_same_pixels(
    sb: Sandbox, data: dict, tmp_path: Path
) -> None:
    before = len(sb.messages())
    # 16 × 16 windows, one checkpoint chunk each; attempt 1 dies after its second chunk.
    sb.container_overrides = {
        "Environment": [
            {"Name": "RASTERDROP_WINDOW_PIXELS", "Value": "256"},
            {"Name": "RASTERDROP_CHECKPOINT_PIXELS", "Value": "256"},
        ]
    }
    sb.faults[1] = {
        "RASTERDROP_SANDBOX_KILL_AFTER_PUTS": "2",
        "RASTERDROP_SANDBOX_KILL_KEYS": "partial/*/chunks/*",
    }
    try:
        sb.upload(data["small"], "input/acme/killed.tif")
        sb.run_until_idle()
    finally:
        sb.faults.clear()
        sb.container_overrides = None
    job = sb.jobs[-1]
    assert [a.outcome.exit_code for a in job.attempts] == [137, 0]  # SIGKILL, then retried
    assert job.status == "SUCCEEDED"
    second_log = job.attempts[1].log_path.read_text()
    assert "windows resumed" in second_log and "(0 windows resumed" not in second_log
    reference = local_classes(data["small"], data["model"], tmp_path / "local")
    np.testing.assert_array_equal(s3_classes(sb, "output/acme/killed/", tmp_path), reference)
    (message,) = news(sb, before)
    assert message.attributes["status"] == "succeeded"
    assert sb.keys("partial/") == [] or all(k.endswith("lease.json") for k in sb.keys("partial/"))


def test_training_manifest_publishes_a_version_that_predict_then_uses(
    sb: Sandbox, data: dict, tmp_path: Path
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "batch_image",
            "sample",
            "--out",
            str(tmp_path),
            "--width",
            "96",
            "--height",
            "80",
            "--seed",
            "3",
            "--compress",
            "deflate",
        ],
        check=True,
        capture_output=True,
    )
    old = json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key="models/demo/current.json")["Body"].read()
    )
    with rasterio.open(tmp_path / "labels.tif") as src:
        classes = json.loads(src.tags()["RASTERDROP_CLASSES"])
    manifest = {
        "name": "demo",
        "classes": classes,
        "samples": [{"image": "scene.tif", "labels": "labels.tif"}],
        "estimator": {"type": "random_forest", "params": {"n_estimators": 5}},
        "min_samples_per_class": 5,
        "cv": {"block_size": 16, "folds": 2},
        "promote": True,
    }
    before = len(sb.messages())
    sb.upload(tmp_path / "scene.tif", "training/demo/scene.tif")
    sb.upload(tmp_path / "labels.tif", "training/demo/labels.tif")
    sb.upload(json.dumps(manifest).encode(), "training/demo/manifest.json")
    sb.run_until_idle()
    train_job = sb.jobs[-1]
    assert train_job.definition.logical_id == "TrainJobDefinition"
    assert train_job.status == "SUCCEEDED", train_job.attempts[-1].log_path.read_text()[-2000:]
    new = json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key="models/demo/current.json")["Body"].read()
    )
    assert new["version"] != old["version"]
    assert sb.keys(f"models/demo/{new['version']}/model.json")
    (message,) = news(sb, before)  # the training outcome is announced too
    assert new["version"] in message.body

    sb.upload(tmp_path / "scene.tif", "input/acme/after-training.tif")
    sb.run_until_idle()
    assert summary(sb, "output/acme/after-training/")["model"]["version"] == new["version"]


def test_retries_exhausted_give_one_failure_email(sb: Sandbox, data: dict) -> None:
    before = len(sb.messages())
    kill = {"RASTERDROP_SANDBOX_KILL_AFTER_PUTS": "1", "RASTERDROP_SANDBOX_KILL_KEYS": "partial/*"}
    sb.faults.update({1: kill, 2: kill, 3: kill})  # every attempt dies, as on a bad host
    try:
        sb.upload(data["small"], "input/acme/unlucky.tif")
        sb.run_until_idle()
    finally:
        sb.faults.clear()
    job = sb.jobs[-1]
    assert [a.outcome.exit_code for a in job.attempts] == [137, 137, 137]  # job_attempts: 3
    assert job.status == "FAILED"
    (message,) = news(sb, before)
    assert message.attributes["status"] == "failed"
    assert "unlucky.tif" in message.subject
    assert sb.keys("output/acme/unlucky/summary.json") == []


def test_vrt_over_band_files_is_one_job_and_one_email(
    sb: Sandbox, data: dict, tmp_path: Path
) -> None:
    """Landsat-style delivery: one GeoTIFF per band in scene.bands/, then the VRT."""
    from tests.batch_image.real_files import vrt_xml

    with rasterio.open(data["small"]) as src:
        bands, prof = src.read(), src.profile
    prof.update(count=1)
    names = []
    for i, band in enumerate(bands, start=1):
        path = tmp_path / f"B{i}.TIF"
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(band, 1)
        names.append(path.name)
    before, jobs_before = len(sb.messages()), len(sb.jobs)
    for name in names:  # band files first: each is refused by its job, nobody is emailed
        sb.upload(tmp_path / name, f"input/acme/landsat.bands/{name}")
    text = vrt_xml(
        [f"landsat.bands/{n}" for n in names],
        [None] * len(names),
        nodata=0,
        size=(prof["width"], prof["height"]),
    )
    sb.upload(text.encode(), "input/acme/landsat.vrt")
    sb.run_until_idle()

    jobs = sb.jobs[jobs_before:]
    by_key = {j.parameters["key"]: j for j in jobs}
    assert by_key["input/acme/landsat.vrt"].status == "SUCCEEDED"
    assert all(j.status == "FAILED" for k, j in by_key.items() if ".bands/" in k)
    (message,) = news(sb, before)  # one email: the VRT's
    assert message.attributes["status"] == "succeeded"
    assert "landsat.vrt" in message.subject
    assert sb.keys("output/acme/landsat.bands/") == []
    # the reference is the stacked GeoTIFF predicted by the same current model: an earlier
    # test of this module may have promoted a version other than data["model"]
    sb.upload(data["small"], "input/acme/landsat-stacked.tif")
    sb.run_until_idle()
    stacked = summary(sb, "output/acme/landsat-stacked/")
    assert summary(sb, "output/acme/landsat/")["model"] == stacked["model"]
    np.testing.assert_array_equal(
        s3_classes(sb, "output/acme/landsat/", tmp_path / "s3"),
        s3_classes(sb, "output/acme/landsat-stacked/", tmp_path / "s3-stacked"),
    )
