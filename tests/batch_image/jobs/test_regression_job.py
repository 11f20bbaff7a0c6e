"""The S3 predict job with a regression model: the same lease, checkpoints, resume and result
protocol as a class map, with ``prediction.tif`` and ``uncertainty.tif`` as its layers; and
class probabilities switched on by the stack's setting."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio

from batch_image.predict.pipeline import PredictOptions, predict_file
from tests.batch_image.jobs.test_predict_job import CHUNKY, MODEL, ROOT, Assets, World
from tests.conftest import make_model, make_regression_model, make_scene, s3_client

pytestmark = pytest.mark.xdist_group("moto_server_job")

REGRESSION_OUTPUTS = ("prediction.tif", "uncertainty.tif", "preview.png", "prediction.qml")


def _read(data: bytes) -> np.ndarray:
    with rasterio.MemoryFile(data) as mem, mem.open() as src:
        return src.read()


def _world(endpoint: str, tmp: Path, model: Path, scene: Path) -> World:
    s3 = s3_client(endpoint)
    bucket = f"rd-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for f in model.iterdir():
        s3.upload_file(str(f), bucket, f"models/{MODEL}/v1/{f.name}")
    s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/current.json", Body=b'{"version": "v1"}')
    empty = np.zeros((1, 1), np.uint8)
    return World(endpoint, s3, bucket, tmp, Assets(scene, model, scene, empty, empty))


def _partials(w: World) -> int:
    return sum(1 for k in w.objects("partial/") if k.endswith(".npz"))


@pytest.mark.slow
def test_regression_job_killed_after_checkpoints_resumes_to_the_exact_result(
    endpoint: str, tmp_path: Path
) -> None:
    scene, _ = make_scene(tmp_path, width=700, height=650, seed=3)
    model = make_regression_model(tmp_path, scene, name=MODEL)
    ref = tmp_path / "ref"
    predict_file(scene, model, ref, PredictOptions(workers=1))
    w = _world(endpoint, tmp_path, model, scene)
    key = "input/plots/scene.tif"
    put = w.put(key, scene)
    env = {**CHUNKY, "AWS_BATCH_JOB_ID": "job-r", "RASTERDROP_MAX_ATTEMPTS": "3"}
    proc = subprocess.Popen(
        w.cmd(w.args(key, put)),
        env=w.env(AWS_BATCH_JOB_ATTEMPT="1", **env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _partials(w) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "finished before the kill"
    assert not w.exists("output/plots/scene/summary.json")

    again = w.run(w.args(key, put), AWS_BATCH_JOB_ATTEMPT="2", **env)
    assert again.returncode == 0, again.stderr
    out = "output/plots/scene/"
    summary = w.json(out + "summary.json")
    assert summary["resumed_windows"] >= 2 and summary["task"] == "regression"
    assert summary["outputs"] == {
        "preview": out + "preview.png",
        "qgis_style": out + "prediction.qml",
        "prediction": out + "prediction.tif",
        "uncertainty": out + "uncertainty.tif",
    }
    for name in ("prediction.tif", "uncertainty.tif"):
        got = _read(w.s3.get_object(Bucket=w.bucket, Key=out + name)["Body"].read())
        with rasterio.open(ref / name) as src:
            want = src.read()
        assert np.array_equal(got, want, equal_nan=True), name
    local = (ref / "summary.json").read_text()
    assert summary["values"] == json.loads(local)["values"]
    for name in REGRESSION_OUTPUTS:
        assert w.versions(out + name) == 1, name
    assert not w.exists(out + "classes.tif")
    assert w.objects("partial/") == {}


def test_probabilities_setting_adds_the_layer_in_the_job(endpoint: str, tmp_path: Path) -> None:
    scene, truth = make_scene(tmp_path)
    model = make_model(tmp_path, scene, truth, name=MODEL)
    ref = tmp_path / "ref"
    predict_file(scene, model, ref, PredictOptions(workers=1, probabilities=True))
    w = _world(endpoint, tmp_path, model, scene)
    key = "input/p/scene.tif"
    put = w.put(key, scene)
    done = w.run(w.args(key, put), RASTERDROP_PROBABILITIES="true")
    assert done.returncode == 0, done.stderr
    summary = w.json("output/p/scene/summary.json")
    assert summary["outputs"]["probabilities"] == "output/p/scene/probabilities.tif"
    got = _read(
        w.s3.get_object(Bucket=w.bucket, Key="output/p/scene/probabilities.tif")["Body"].read()
    )
    with rasterio.open(ref / "probabilities.tif") as src:
        assert np.array_equal(got, src.read())
