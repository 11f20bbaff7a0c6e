"""S3 mode end to end: ``python -m batch_image predict --bucket … --key …`` against
moto's server over real HTTP (one server per module, one bucket per test).

Faults tried: duplicate events, two jobs at once, SIGKILL at random points and
reruns, SIGTERM, held and stale leases, bad keys, oversize and corrupt inputs,
missing model, internal errors on a middle and on the last attempt.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from batch_image.errors import (
    ConfigError,
    InternalError,
    InvalidInputError,
    ScratchFull,
    ScratchTooSmall,
)
from batch_image.jobs import predict_job
from batch_image.jobs.request import JobRequest
from batch_image.jobs.settings import Settings
from batch_image.predict.documents import InputRef
from batch_image.predict.pipeline import PredictOptions, predict_file
from tests.conftest import make_model, make_scene, s3_client

pytestmark = pytest.mark.xdist_group("moto_server_job")

ROOT = Path(__file__).resolve().parents[3]
MODEL = "test-model"
OUTPUTS = (
    "classes.tif", "confidence.tif", "preview.png", "classes.qml", "review.gpkg", "summary.json",
)  # fmt: skip
# small windows and checkpoints so the big scene has many of both
CHUNKY = {"RASTERDROP_WINDOW_PIXELS": "16384", "RASTERDROP_CHECKPOINT_PIXELS": "70000"}


@dataclass(frozen=True)
class Assets:
    scene: Path
    model: Path
    big: Path
    ref_small: np.ndarray
    ref_big: np.ndarray


def _reference(scene: Path, model: Path, out: Path) -> np.ndarray:
    predict_file(scene, model, out, PredictOptions(workers=1))
    with rasterio.open(out / "classes.tif") as src:
        return src.read(1)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    tmp = tmp_path_factory.mktemp("assets")
    scene, truth = make_scene(tmp)
    model = make_model(tmp, scene, truth, name=MODEL)
    bigdir = tmp / "big"
    bigdir.mkdir()
    # > 10 MB uncompressed: a 2-part multipart upload, ~70 windows at 16k pixels
    big, _ = make_scene(bigdir, width=1100, height=1150, seed=3, holes=True)
    return Assets(
        scene,
        model,
        big,
        _reference(scene, model, tmp / "ref-small"),
        _reference(big, model, tmp / "ref-big"),
    )


@dataclass
class World:
    endpoint: str
    s3: Any
    bucket: str
    tmp: Path
    assets: Assets
    scratches: list[Path] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "RASTERDROP_")) and k != "PYTHONPATH"
        }
        scratch = self.tmp / f"scratch-{len(self.scratches)}"
        self.scratches.append(scratch)
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            RASTERDROP_MODEL_URI=f"s3://{self.bucket}/models/{MODEL}/",
            RASTERDROP_WORKERS="2",
            RASTERDROP_SCRATCH_DIR=str(scratch),
        )
        env.update(extra)
        return env

    def args(self, key: str, put: dict[str, Any] | None = None, **override: str) -> list[str]:
        put = put or {}
        values = {
            "--bucket": self.bucket,
            "--key": key,
            "--version-id": put.get("VersionId", ""),
            "--etag": put.get("ETag", ""),
            "--size": str(put.get("size", "")),
        }
        values.update({f"--{k.replace('_', '-')}": v for k, v in override.items()})
        return [x for kv in values.items() for x in kv]

    def cmd(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "batch_image", "predict", *args]

    def run(self, args: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
        env = self.env(**extra)
        proc = subprocess.run(
            self.cmd(args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
        )
        scratch = Path(env["RASTERDROP_SCRATCH_DIR"])
        # temporary files are removed on every exit path that is not SIGKILL
        assert not scratch.is_dir() or not any(scratch.iterdir()), list(scratch.iterdir())
        return proc

    def put(self, key: str, path: Path, *, multipart: bool = False) -> dict[str, Any]:
        if multipart:
            cfg = TransferConfig(multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2)
            self.s3.upload_file(str(path), self.bucket, key, Config=cfg)
            resp = self.s3.head_object(Bucket=self.bucket, Key=key)
        else:
            resp = self.s3.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return {**resp, "size": path.stat().st_size}

    def objects(self, prefix: str) -> dict[str, tuple[str, Any]]:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for o in page.get("Contents", []):
                out[o["Key"]] = (o["ETag"], o["LastModified"])
        return out

    def versions(self, key: str) -> int:
        resp = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        return sum(1 for v in resp.get("Versions", []) if v["Key"] == key)

    def json(self, key: str) -> dict[str, Any]:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError:
            return False

    def classes(self, key: str) -> np.ndarray:
        data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        with rasterio.MemoryFile(data) as mem, mem.open() as src:
            return src.read(1)


def _new_bucket(endpoint: str, tmp: Path, assets: Assets, *, versioned: bool) -> World:
    s3 = s3_client(endpoint)
    bucket = f"rd-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for f in assets.model.iterdir():
        s3.upload_file(str(f), bucket, f"models/{MODEL}/v1/{f.name}")
    s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/current.json", Body=b'{"version": "v1"}')
    return World(endpoint, s3, bucket, tmp, assets)


@pytest.fixture
def world(endpoint: str, tmp_path: Path, assets: Assets) -> World:
    return _new_bucket(endpoint, tmp_path, assets, versioned=True)


@pytest.fixture
def plain_world(endpoint: str, tmp_path: Path, assets: Assets) -> World:
    return _new_bucket(endpoint, tmp_path, assets, versioned=False)


def assert_input_intact(w: World, key: str, put: dict[str, Any], path: Path) -> None:
    head = w.s3.head_object(Bucket=w.bucket, Key=key)
    assert head["ETag"] == put["ETag"]
    assert head.get("VersionId") == put.get("VersionId")
    assert w.s3.get_object(Bucket=w.bucket, Key=key)["Body"].read() == path.read_bytes()
    if put.get("VersionId"):
        assert w.versions(key) == 1


# --- success and duplicates ------------------------------------------------------------------


@pytest.mark.slow
def test_key_with_spaces_plus_and_unicode_then_duplicate(world: World) -> None:
    a = world.assets
    key = "input/tenant a/ß+x ü 1 (copy).TIF"
    put = world.put(key, a.scene)
    # When the job runs for the event of that upload
    proc = world.run(world.args(key, put))
    # Then it succeeds and writes every output under output/<path>/ (extension dropped)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("succeeded:")
    out = "output/tenant a/ß+x ü 1 (copy)/"
    assert sorted(world.objects(out)) == sorted(out + n for n in OUTPUTS)
    summary = world.json(out + "summary.json")
    assert summary["status"] == "succeeded"
    assert summary["input"]["key"] == key
    assert summary["input"]["version_id"] == put["VersionId"]
    assert summary["input"]["etag"] == put["ETag"].strip('"')
    assert summary["input"]["size_bytes"] == a.scene.stat().st_size
    assert summary["model"]["name"] == MODEL
    assert summary["model"]["uri"] == f"s3://{world.bucket}/models/{MODEL}/v1/"
    assert summary["outputs"]["classes"] == out + "classes.tif"
    np.testing.assert_array_equal(world.classes(out + "classes.tif"), a.ref_small)
    assert world.objects("partial/") == {}
    assert_input_intact(world, key, put, a.scene)

    # When the same event is delivered again
    before = world.objects(out)
    again = world.run(world.args(key, put))
    # Then it exits 0 without computing or rewriting anything
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("duplicate:")
    assert world.objects(out) == before
    for name in OUTPUTS:
        assert world.versions(out + name) == 1


@pytest.mark.slow
@pytest.mark.parametrize("version", ["", "null", "Ref::version"])
def test_unversioned_bucket_with_empty_or_null_version_and_no_size(
    plain_world: World, version: str
) -> None:
    w = plain_world
    key = "input/plain+ünversioned.tiff"
    put = w.put(key, w.assets.scene)
    proc = w.run(w.args(key, put, version_id=version, size="", etag="null"))
    assert proc.returncode == 0, proc.stderr
    summary = w.json("output/plain+ünversioned/summary.json")
    assert summary["input"]["version_id"] is None
    assert summary["input"]["etag"] == put["ETag"].strip('"')
    np.testing.assert_array_equal(
        w.classes("output/plain+ünversioned/classes.tif"), w.assets.ref_small
    )


@pytest.mark.slow
def test_multipart_uploaded_input(world: World) -> None:
    a = world.assets
    key = "input/multi part.tif"
    put = world.put(key, a.big, multipart=True)
    assert "-" in put["ETag"]  # a multipart ETag: <md5 of part md5s>-<parts>
    proc = world.run(world.args(key, put), **CHUNKY)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(world.classes("output/multi part/classes.tif"), a.ref_big)
    assert world.json("output/multi part/summary.json")["windows"] > 20
    assert world.objects("partial/") == {}


# --- concurrency and leases ------------------------------------------------------------------


@pytest.mark.slow
def test_two_jobs_at_once_compute_once(world: World) -> None:
    a = world.assets
    key = "input/twice.tif"
    put = world.put(key, a.big)
    procs = [
        subprocess.Popen(
            world.cmd(world.args(key, put)),
            env=world.env(AWS_BATCH_JOB_ID=f"job-{i}", RASTERDROP_LEASE_SECONDS="10", **CHUNKY),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in procs]
    # One computed (exit 0); the other found the run done (duplicate, exit 0) or leased
    # by the live one and ended at once (in_progress, exit 5: final, no email)
    ended = sorted((out.split(":")[0], rc) for rc, out, _ in results)
    assert ended in (
        [("duplicate", 0), ("succeeded", 0)],
        [("in_progress", 5), ("succeeded", 0)],
    ), results
    # and there is one set of outputs: every output object was written once
    for name in OUTPUTS:
        assert world.versions(f"output/twice/{name}") == 1
    np.testing.assert_array_equal(world.classes("output/twice/classes.tif"), a.ref_big)
    assert world.objects("partial/") == {}


def _summary_run_id(w: World, key: str, put: dict[str, Any]) -> str:
    from batch_image.jobs.request import run_id

    return run_id(w.bucket, key, put["VersionId"], MODEL, "20261126T000000Z")


def _wait_for_line(path: Path, text: str, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 120
    while text not in path.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in path.read_text(), path.read_text()


@pytest.mark.slow
def test_a_live_lease_holder_ends_the_duplicate_at_once_and_writes_nothing(world: World) -> None:
    key = "input/leased.tif"
    put = world.put(key, world.assets.scene)
    rid = _summary_run_id(world, key, put)
    lease_key = f"partial/{rid}/lease.json"
    body = {"owner": "x", "job_id": "other-job", "attempt": 1, "ttl_s": 3600}
    world.s3.put_object(Bucket=world.bucket, Key=lease_key, Body=json.dumps(body).encode())
    chunk = f"partial/{rid}/chunks/p/00000000-00000007.npz"
    world.s3.put_object(Bucket=world.bucket, Key=chunk, Body=b"holder's checkpoint")
    # When a duplicate job finds the run leased by a live job
    first = world.run(world.args(key, put), AWS_BATCH_JOB_ID="this-job")
    # Then it ends at once with exit 5 (final, no email), touching nothing
    assert first.returncode == 5, first.stderr
    assert first.stdout.startswith("in_progress:")
    assert world.json(lease_key)["job_id"] == "other-job"
    assert world.exists(chunk)
    assert world.objects("output/") == {}
    # And once the holder's summary.json exists (killed before its cleanup)
    done = {"status": "succeeded", "run_id": rid}
    world.s3.put_object(
        Bucket=world.bucket, Key="output/leased/summary.json", Body=json.dumps(done).encode()
    )
    before = world.objects("output/")
    again = world.run(world.args(key, put), AWS_BATCH_JOB_ID="third-job")
    # Then a later job is a duplicate (exit 0) that writes no result and removes the
    # leftover partials the holder could not
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("duplicate:")
    assert world.objects("output/") == before
    assert world.objects("partial/") == {}


@pytest.mark.slow
def test_lease_of_a_dead_job_is_taken_over_after_it_expires(world: World) -> None:
    key = "input/stale.tif"
    put = world.put(key, world.assets.scene)
    lease_key = f"partial/{_summary_run_id(world, key, put)}/lease.json"
    body = json.dumps({"owner": "x", "job_id": "dead-job", "attempt": 1, "ttl_s": 1}).encode()
    world.s3.put_object(Bucket=world.bucket, Key=lease_key, Body=body)
    time.sleep(2.5)  # S3's clock: Date − LastModified > ttl_s (second resolution)
    run = world.run(world.args(key, put), AWS_BATCH_JOB_ID="successor")
    assert run.returncode == 0, run.stderr
    assert "took over the lease of an expired job dead-job" in run.stderr
    assert run.stdout.startswith("succeeded:")
    np.testing.assert_array_equal(world.classes("output/stale/classes.tif"), world.assets.ref_small)
    assert world.objects("partial/") == {}


# --- kills and resume ------------------------------------------------------------------------


def _partials(w: World) -> int:
    return sum(1 for k in w.objects("partial/") if k.endswith(".npz"))


def _assert_one_clean_result(w: World, out: str, ref: np.ndarray) -> dict[str, Any]:
    np.testing.assert_array_equal(w.classes(out + "classes.tif"), ref)
    for name in OUTPUTS:
        assert w.versions(out + name) == 1, name
    assert w.objects("partial/") == {}
    return w.json(out + "summary.json")


@pytest.mark.slow
def test_sigkill_after_random_checkpoints_then_rerun_resumes(world: World) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    a = world.assets
    key = "input/killed/scene.tif"
    put = world.put(key, a.big)
    env = {**CHUNKY, "AWS_BATCH_JOB_ID": "job-k", "RASTERDROP_MAX_ATTEMPTS": "3"}
    target = rng.randint(1, 8)
    proc = subprocess.Popen(
        world.cmd(world.args(key, put)),
        env=world.env(AWS_BATCH_JOB_ATTEMPT="1", **env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _partials(world) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, f"seed {seed}: finished before the kill"
    left = _partials(world)
    assert left >= target
    assert not world.exists("output/killed/scene/summary.json")

    # Batch retries the job: attempt 2 of the same job id takes the lease over at once
    again = world.run(world.args(key, put), AWS_BATCH_JOB_ATTEMPT="2", **env)
    assert again.returncode == 0, again.stderr
    summary = _assert_one_clean_result(world, "output/killed/scene/", a.ref_big)
    assert summary["resumed_windows"] >= left, f"seed {seed}"
    assert summary["resumed_windows"] < summary["windows"]


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_rerun_gives_one_clean_result(world: World) -> None:
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(0.2, 7.0)
    a = world.assets
    key = "input/random kill.tif"
    put = world.put(key, a.big)
    env = {**CHUNKY, "AWS_BATCH_JOB_ID": "job-r"}
    proc = subprocess.Popen(
        world.cmd(world.args(key, put)),
        env=world.env(AWS_BATCH_JOB_ATTEMPT="1", **env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    again = world.run(world.args(key, put), AWS_BATCH_JOB_ATTEMPT="2", **env)
    assert again.returncode == 0, f"seed {seed} delay {delay:.2f}: {again.stderr}"
    _assert_one_clean_result(world, "output/random kill/", a.ref_big)


@pytest.mark.slow
def test_sigterm_exits_retryable_and_cleans_scratch(world: World) -> None:
    key = "input/termed.tif"
    put = world.put(key, world.assets.big)
    env = world.env(**CHUNKY, AWS_BATCH_JOB_ID="job-t")
    scratch = Path(env["RASTERDROP_SCRATCH_DIR"])
    proc = subprocess.Popen(
        world.cmd(world.args(key, put)),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _partials(world) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    assert rc == 143, proc.stderr.read()
    assert not any(scratch.iterdir())
    assert not world.exists("output/termed/summary.json")
    assert not world.exists("output/termed/error.json")  # a retry follows
    saved = _partials(world)
    assert saved >= 1
    # the lease was released on the way out: nobody waits out its ttl
    assert not [k for k in world.objects("partial/") if k.endswith("/lease.json")]
    # so even another job (not only the retry) starts at once and resumes from what the
    # terminated attempt saved
    again = world.run(world.args(key, put), **CHUNKY, AWS_BATCH_JOB_ID="job-u")
    assert again.returncode == 0, again.stderr
    summary = _assert_one_clean_result(world, "output/termed/", world.assets.ref_big)
    assert summary["resumed_windows"] >= saved


# --- the same bytes again: reuse ------------------------------------------------------------


def test_same_bytes_and_model_again_reuse_the_result_at_no_compute(world: World) -> None:
    key = "input/again.tif"
    settings = Settings(model_uri=f"s3://{world.bucket}/models/{MODEL}/",
                        scratch_dir=world.tmp / "s")  # fmt: skip
    first_put = world.put(key, world.assets.scene)
    first = predict_job.run(JobRequest(world.bucket, key, first_put["VersionId"]), settings,
                            s3=world.s3, workers=1)  # fmt: skip
    assert first.status == "succeeded"
    # When the same bytes are uploaded again under the same key (a new version)
    second_put = world.put(key, world.assets.scene)
    s3 = Recorder(world.s3)
    second = predict_job.run(JobRequest(world.bucket, key, second_put["VersionId"]), settings,
                             s3=s3, workers=1)  # fmt: skip
    # Then the result in place is reused: exit 0, nothing downloaded or recomputed,
    # the result files untouched, summary.json names the new version and the old one
    assert (second.status, second.exit_code) == ("reused", 0)
    assert s3.reads_of(key) == []
    for name in OUTPUTS:
        assert world.versions(f"output/again/{name}") == (2 if name == "summary.json" else 1)
    summary = world.json("output/again/summary.json")
    assert summary["input"]["version_id"] == second_put["VersionId"]
    assert summary["reused_from"]["version_id"] == first_put["VersionId"]
    assert summary["reused_from"]["run_id"] == first.summary["run_id"]
    assert summary["run_id"] != first.summary["run_id"]
    assert summary["created_at"] == first.summary["created_at"]  # the files' age
    np.testing.assert_array_equal(world.classes("output/again/classes.tif"), world.assets.ref_small)
    assert world.objects("partial/") == {}
    # And a duplicate event of the new version is a plain duplicate
    third = predict_job.run(JobRequest(world.bucket, key, second_put["VersionId"]), settings,
                            s3=world.s3, workers=1)  # fmt: skip
    assert (third.status, third.exit_code) == ("duplicate", 0)


def test_the_reuse_rule_needs_same_bytes_and_same_model_version() -> None:
    card: Any = SimpleNamespace(name=MODEL, version="v1")  # reusable reads name and version
    done = {
        "status": "succeeded",
        "input": {"version_id": "a", "etag": "e1", "size_bytes": 10},
        "model": {"name": MODEL, "version": "v1"},
    }
    same = InputRef(version_id="b", etag="e1", size_bytes=10)
    assert predict_job.reusable(done, same, card) is done
    for other in (
        InputRef(version_id="b", etag="e2", size_bytes=10),  # other bytes
        InputRef(version_id="b", etag="e1", size_bytes=11),
        InputRef(version_id="a", etag="e1", size_bytes=10),  # the same version: done_by's job
        InputRef(version_id="b", etag=None, size_bytes=10),
    ):
        assert predict_job.reusable(done, other, card) is None, other
    assert predict_job.reusable({**done, "status": "failed"}, same, card) is None
    newer_model = {**done, "model": {"name": MODEL, "version": "v0"}}
    assert predict_job.reusable(newer_model, same, card) is None  # a new model recomputes
    assert predict_job.reusable(None, same, card) is None
    # the stack now asks for a file the result does not have: recomputed
    done["outputs"] = {"classes": "output/x/classes.tif", "review": "output/x/review.gpkg"}
    assert predict_job.reusable(done, same, card, frozenset({"review"})) is done
    assert predict_job.reusable(done, same, card, frozenset({"review", "probabilities"})) is None


def test_the_optional_files_a_run_is_asked_for_come_from_the_settings() -> None:
    classes: Any = SimpleNamespace(is_regression=False)
    values: Any = SimpleNamespace(is_regression=True)
    asked = Settings(model_uri="s3://b/m/", probabilities=True, review_points=0)
    assert predict_job.optional_outputs(asked, classes) == {"probabilities"}
    everything = Settings(model_uri="s3://b/m/", probabilities=True, class_polygons=True,
                          accuracy_sample_n=5, review_points=10)  # fmt: skip
    assert predict_job.optional_outputs(everything, classes) == {
        "probabilities", "review", "polygons", "accuracy_sample"
    }  # fmt: skip
    assert predict_job.optional_outputs(everything, values) == frozenset()


# --- scratch space ---------------------------------------------------------------------------


def test_input_bigger_than_the_scratch_volume_is_final_and_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(predict_job.shutil, "disk_usage", lambda p: usage(10**6, 0, 10**6))
    key = "input/huge for the disk.tif"
    world.put(key, world.assets.scene)
    settings = _settings(world, max_attempts=3, attempt=1)
    with pytest.raises(ScratchTooSmall) as info:
        predict_job.run(JobRequest(world.bucket, key), settings, s3=world.s3, workers=1)
    # final (exit 3, not retried) even on attempt 1, with error.json saying scratch_full
    assert info.value.exit_code == 3 and info.value.final
    err = world.json("output/huge for the disk/error.json")
    assert (err["category"], err["code"]) == ("scratch_full", "volume_too_small")
    assert "huge for the disk.tif" in err["message"] and "/tmp" not in err["message"]
    assert world.objects("partial/") == {}  # a final error ends the run


def test_scratch_taken_by_other_jobs_is_retried_with_its_category(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(predict_job.shutil, "disk_usage", lambda p: usage(10**12, 10**12, 10))
    key = "input/busy disk.tif"
    world.put(key, world.assets.scene)
    with pytest.raises(ScratchFull) as info:
        predict_job.run(JobRequest(world.bucket, key), _settings(world, max_attempts=3,
                        attempt=1), s3=world.s3, workers=1)  # fmt: skip
    assert info.value.exit_code == 1 and info.value.category == "scratch_full"
    assert not world.exists("output/busy disk/error.json")  # a retry follows
    assert not [k for k in world.objects("partial/") if k.endswith("lease.json")]


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_key_exits_2_and_touches_nothing(world: World) -> None:
    put = world.put("input/../escape.tif", world.assets.scene)
    before = world.objects("")
    proc = world.run(world.args("input/../escape.tif", put))
    assert proc.returncode == 2
    assert "invalid_input/bad_key" in proc.stderr
    assert world.objects("") == before  # no error.json: no safe place for one


@pytest.mark.slow
def test_corrupt_file_exits_2_with_error_json_and_input_intact(
    world: World, tmp_path: Path
) -> None:
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00" + b"\x08\x00\x00\x00" + os.urandom(5000))
    key = "input/corrupt.tif"
    put = world.put(key, bad)
    proc = world.run(world.args(key, put))
    assert proc.returncode == 2, proc.stderr
    err = world.json("output/corrupt/error.json")
    assert err["category"] == "invalid_input"
    assert err["code"] == "unreadable"
    assert err["input"]["key"] == key
    assert err["input"]["version_id"] == put["VersionId"]
    assert not world.exists("output/corrupt/summary.json")
    assert_input_intact(world, key, put, bad)
    assert world.objects("partial/") == {}


@pytest.mark.slow
def test_truncated_file_is_caught_after_download(world: World, tmp_path: Path) -> None:
    data = world.assets.scene.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) * 2 // 3])
    key = "input/cut.tif"
    put = world.put(key, cut)
    proc = world.run(world.args(key, put))
    assert proc.returncode == 2, proc.stderr
    assert world.json("output/cut/error.json")["code"] in ("truncated", "unreadable")
    assert_input_intact(world, key, put, cut)
    assert world.objects("partial/") == {}  # lease released: a re-run need not wait


@pytest.mark.slow
def test_missing_model_exits_3(world: World) -> None:
    key = "input/nomodel.tif"
    put = world.put(key, world.assets.scene)
    proc = world.run(world.args(key, put), RASTERDROP_MODEL_URI=f"s3://{world.bucket}/models/nope/")
    assert proc.returncode == 3, proc.stderr
    err = world.json("output/nomodel/error.json")
    assert (err["category"], err["code"]) == ("model_error", "model_missing")
    assert_input_intact(world, key, put, world.assets.scene)


@pytest.mark.slow
def test_internal_error_writes_error_json_only_on_the_last_attempt(
    world: World, tmp_path: Path
) -> None:
    key = "input/internal.tif"
    put = world.put(key, world.assets.scene)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    env = {"RASTERDROP_SCRATCH_DIR": str(not_a_dir), "RASTERDROP_MAX_ATTEMPTS": "3"}
    first = world.run(world.args(key, put), AWS_BATCH_JOB_ATTEMPT="1", **env)
    assert first.returncode == 1, first.stderr
    assert not world.exists("output/internal/error.json")
    last = world.run(world.args(key, put), AWS_BATCH_JOB_ATTEMPT="3", **env)
    assert last.returncode == 1, last.stderr
    err = world.json("output/internal/error.json")
    assert (err["category"], err["code"]) == ("internal", "unexpected")


# --- in-process: what a bad input costs -------------------------------------------------------


class Recorder:
    """An S3 client proxy that records every call."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._s3, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, {"args": args, **kwargs}))
            return attr(*args, **kwargs)

        return call

    def reads_of(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (n, kw)
            for n, kw in self.calls
            if kw.get("Key") == key or key in kw.get("args", ())
            if n in ("get_object", "download_file")
        ]


def _settings(w: World, **kw: Any) -> Settings:
    return Settings(
        model_uri=f"s3://{w.bucket}/models/{MODEL}/", scratch_dir=w.tmp / "scratch", **kw
    )


def test_oversize_input_is_refused_from_head_alone(world: World) -> None:
    key = "input/huge.tif"
    put = world.put(key, world.assets.scene)
    rec = Recorder(world.s3)
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(
            JobRequest(world.bucket, key), _settings(world, max_input_bytes=1000), s3=rec
        )
    assert info.value.code == "too_large"
    assert rec.reads_of(key) == []  # HEAD only: not one byte of the input was read
    err = world.json("output/huge/error.json")
    assert (err["category"], err["code"]) == ("invalid_input", "too_large")
    assert_input_intact(world, key, put, world.assets.scene)


def test_pixel_cap_and_wrong_bands_cost_one_ranged_read(world: World, tmp_path: Path) -> None:
    key = "input/big pixels.tif"
    world.put(key, world.assets.big)
    rec = Recorder(world.s3)
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(JobRequest(world.bucket, key), _settings(world, max_pixels=10_000), s3=rec)
    assert info.value.code == "too_many_pixels"
    reads = rec.reads_of(key)
    assert [n for n, _ in reads] == ["get_object"]
    assert reads[0][1]["Range"] == "bytes=0-65535"

    two_band, _ = make_scene(tmp_path, bands=2)
    world.put("input/two.tif", two_band)
    rec = Recorder(world.s3)
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(JobRequest(world.bucket, "input/two.tif"), _settings(world), s3=rec)
    assert info.value.code == "band_count_mismatch"
    assert all("Range" in kw for _, kw in rec.reads_of("input/two.tif"))


def test_renamed_png_is_refused_by_its_signature(world: World) -> None:
    key = "input/photo.tif"
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(JobRequest(world.bucket, key), _settings(world), s3=world.s3)
    assert info.value.code == "not_a_tiff"
    assert world.json("output/photo/error.json")["message"].endswith("(renamed file?)")


def test_missing_input_version_is_invalid_input(world: World) -> None:
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(
            JobRequest(world.bucket, "input/never.tif", "nope"), _settings(world), s3=world.s3
        )
    assert info.value.code == "input_missing"


def test_missing_model_uri_is_a_configuration_error(world: World) -> None:
    world.put("input/x.tif", world.assets.scene)
    settings = Settings(model_uri=None, scratch_dir=world.tmp / "s")
    with pytest.raises(ConfigError) as info:
        predict_job.run(JobRequest(world.bucket, "input/x.tif"), settings, s3=world.s3)
    assert info.value.code == "config_invalid"


def test_older_version_of_a_key_is_superseded(world: World) -> None:
    key = "input/twice uploaded.tif"
    old = world.put(key, world.assets.scene)
    world.put(key, world.assets.scene)
    outcome = predict_job.run(
        JobRequest(world.bucket, key, old["VersionId"]), _settings(world), s3=world.s3
    )
    assert (outcome.status, outcome.exit_code) == ("superseded", 4)
    assert world.objects("output/") == {}


def test_in_process_success_with_local_model_dir(world: World) -> None:
    key = "input/local model.tif"
    world.put(key, world.assets.scene)
    settings = Settings(model_uri=str(world.assets.model), scratch_dir=world.tmp / "s")
    outcome = predict_job.run(JobRequest(world.bucket, key), settings, s3=world.s3, workers=1)
    assert outcome.status == "succeeded"
    assert outcome.summary is not None
    assert outcome.summary["model"]["uri"] == str(world.assets.model)
    np.testing.assert_array_equal(
        world.classes("output/local model/classes.tif"), world.assets.ref_small
    )


def test_newer_version_arriving_mid_run_is_not_overwritten(world: World) -> None:
    key = "input/racing.tif"
    old = world.put(key, world.assets.scene)

    class UploadDuringDownload(Recorder):
        def download_file(self, *args: Any, **kwargs: Any) -> Any:
            result = self._s3.download_file(*args, **kwargs)
            world.put(key, world.assets.scene)  # the user uploads again meanwhile
            return result

    s3 = UploadDuringDownload(world.s3)
    outcome = predict_job.run(
        JobRequest(world.bucket, key, old["VersionId"]), _settings(world), s3=s3, workers=1
    )
    assert (outcome.status, outcome.exit_code) == ("superseded", 4)
    assert world.objects("output/") == {}  # the newer version's job owns output/racing/
    assert world.objects("partial/") == {}


def test_a_failed_cleanup_after_publishing_keeps_the_result(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the partials cannot be deleted once the result is published (S3 throttling)
    def refuse(*args: Any, **kwargs: Any) -> int:
        raise InternalError("SlowDown", code="delete_failed")

    monkeypatch.setattr(predict_job.s3io, "delete_prefix", refuse)
    key = "input/cleanup fails.tif"
    world.put(key, world.assets.scene)
    settings = Settings(model_uri=str(world.assets.model), scratch_dir=world.tmp / "s")
    # When the (last) attempt ends
    outcome = predict_job.run(JobRequest(world.bucket, key), settings, s3=world.s3, workers=1)
    # Then it succeeded and its result stands: summary.json, no error.json
    assert outcome.status == "succeeded" and outcome.exit_code == 0
    assert "output/cleanup fails/summary.json" in world.objects("output/")
    assert "output/cleanup fails/error.json" not in world.objects("output/")
