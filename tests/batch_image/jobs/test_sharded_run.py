"""Sharded runs against moto's server: the planner submits an array job and an assemble
job (a recording stand-in for Batch), the children and the assemble job run as the job
would; the result's pixels equal an unsharded run's, exactly once.

Faults tried: duplicate events before, during and after the run, a child killed mid-run
and retried, a share computed by nobody (the assemble job computes it), a child's
duplicate while the share is leased.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest

from batch_image.errors import ConfigError
from batch_image.jobs import predict_job, shards
from batch_image.jobs.request import PART_ASSEMBLE, PART_SHARD, JobRequest
from batch_image.jobs.settings import Settings, from_env
from batch_image.predict.pipeline import share
from tests.batch_image.jobs import test_predict_job as base
from tests.batch_image.jobs.test_predict_job import CHUNKY, MODEL, OUTPUTS, ROOT, World

assets = base.assets  # the fixtures: the scenes, their unsharded references, a bucket
world = base.world

pytestmark = pytest.mark.xdist_group("moto_server_job")

KEY = "input/huge/mosaic.tif"
OUT = "output/huge/mosaic/"
BIG_PIXELS = 1100 * 1150  # the assets' big scene
SHARD_PIXELS = 450_000  # -> 3 children


@dataclass
class FakeBatch:
    """SubmitJob recorded; job ids are ``array-<n>`` and ``assemble-<n>``."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def submit_job(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        kind = "array" if "arrayProperties" in kwargs else "assemble"
        return {"jobId": f"{kind}-{len(self.calls)}"}


def _settings(w: World, **kw: Any) -> Settings:
    base = dict(
        model_uri=f"s3://{w.bucket}/models/{MODEL}/",
        scratch_dir=w.tmp / "scratch",
        window_pixels=int(CHUNKY["RASTERDROP_WINDOW_PIXELS"]),
        checkpoint_pixels=int(CHUNKY["RASTERDROP_CHECKPOINT_PIXELS"]),
        shard_pixels=SHARD_PIXELS,
        job_queue="arn:aws:batch:us-east-1:123456789012:job-queue/q",
        job_definition="rasterdrop-predict",
        lease_seconds=30,
        job_vcpus=4,
    )
    base.update(kw)
    return Settings(**base)


def _plan(w: World, put: dict[str, Any], batch: FakeBatch) -> predict_job.Outcome:
    req = JobRequest(w.bucket, KEY, put["VersionId"], put["ETag"].strip('"'), put["size"])
    submitter = shards.Submitter(batch, "q-arn", "rasterdrop-predict")
    settings = _settings(w, job_id="planner-1", attempt=1)
    return predict_job.run(req, settings, s3=w.s3, workers=1, submitter=submitter)


def _part(w: World, params: dict[str, str], index: int | None = None, **kw: Any) -> Any:
    req = JobRequest.from_cli(
        params["bucket"],
        params["key"],
        params["version"],
        params["etag"],
        params["size"],
        params["part"],
        params["shards"],
    )
    job_id = f"array-1:{index}" if index is not None else "assemble-2"
    settings = _settings(w, job_id=job_id, attempt=1, array_index=index, **kw)
    return predict_job.run(req, settings, s3=w.s3, workers=1)


def _chunks(w: World) -> list[str]:
    return sorted(k for k in w.objects("partial/") if "/chunks/" in k)


def test_a_sharded_run_plans_once_and_assembles_the_unsharded_pixels(world: World) -> None:
    a = world.assets
    put = world.put(KEY, a.big)
    batch = FakeBatch()
    # the planner: checks, submits the array (3 children) and the assemble job after it
    planned = _plan(world, put, batch)
    assert (planned.status, planned.exit_code) == ("planned", 5)
    array, assemble = batch.calls
    assert array["arrayProperties"] == {"size": 3}
    assert array["jobQueue"] == "q-arn" and array["jobDefinition"] == "rasterdrop-predict"
    assert array["parameters"] == {
        "bucket": world.bucket,
        "key": KEY,
        "version": put["VersionId"],
        "etag": put["ETag"].strip('"'),
        "size": str(put["size"]),
        "part": PART_SHARD,
        "shards": "3",
    }
    assert assemble["dependsOn"] == [{"jobId": "array-1"}]
    assert assemble["parameters"] == {**array["parameters"], "part": PART_ASSEMBLE}
    assert "arrayProperties" not in assemble
    run_id = planned.message and world.json(_plan_key(world))["assemble_job_id"]
    assert run_id == "assemble-2"
    assert world.objects(OUT) == {}
    # a duplicate event finds the plan: nothing submitted, nothing written
    again = _plan(world, put, batch)
    assert (again.status, again.exit_code) == ("planned", 5)
    assert len(batch.calls) == 2
    # the children: each its share of the windows, into chunks only
    for index in range(3):
        done = _part(world, array["parameters"], index)
        assert (done.status, done.exit_code) == ("shard_done", 0), done.message
    assert world.objects(OUT) == {}
    dones = [world.json(k) for k in world.objects("partial/") if k.endswith("/done.json")]
    assert sorted(d["index"] for d in dones) == [0, 1, 2]
    assert all(d["restored"] == 0 and d["computed"] == d["windows"] > 0 for d in dones)
    windows = sum(d["windows"] for d in dones)
    # the assemble job restores every window and publishes as an unsharded run
    result = _part(world, assemble["parameters"])
    assert (result.status, result.exit_code) == ("succeeded", 0), result.message
    np.testing.assert_array_equal(world.classes(OUT + "classes.tif"), a.ref_big)
    summary = world.json(OUT + "summary.json")
    assert summary["windows"] == summary["resumed_windows"] == windows
    assert summary["job"] == {"id": "assemble-2", "attempt": 1}
    # compute: the assemble job's vCPU-seconds plus every child's (4 vCPUs x its wall time)
    compute = summary["compute"]
    assert (compute["vcpus"], compute["shards"]) == (4, 3)
    assert all(d["vcpu_s"] == pytest.approx(4 * d["wall_s"], abs=0.01) for d in dones)
    assert compute["shards_vcpu_s"] == pytest.approx(sum(d["vcpu_s"] for d in dones), abs=0.1)
    assert compute["vcpu_s"] == pytest.approx(
        compute["job_vcpu_s"] + compute["shards_vcpu_s"], abs=0.1
    )
    for name in OUTPUTS:
        assert world.versions(OUT + name) == 1, name
    assert world.objects("partial/") == {}
    # a late duplicate of the planner's event: done already
    late = _plan(world, put, batch)
    assert (late.status, late.exit_code) == ("duplicate", 0)
    assert len(batch.calls) == 2
    # the same scene unsharded: the same review points (their margins came with the chunks)
    whole_key = "input/huge/whole.tif"
    whole_put = world.put(whole_key, a.big)
    req = JobRequest(world.bucket, whole_key, whole_put["VersionId"])
    whole = predict_job.run(req, _settings(world, shard_pixels=0), s3=world.s3, workers=1)
    assert whole.status == "succeeded"
    unsharded = world.json("output/huge/whole/summary.json")["review"]
    review = {k: v for k, v in summary["review"].items() if k != "file"}
    assert review and review == {k: v for k, v in unsharded.items() if k != "file"}
    sharded_points = world.s3.get_object(Bucket=world.bucket, Key=OUT + "review.gpkg")
    whole_points = world.s3.get_object(Bucket=world.bucket, Key="output/huge/whole/review.gpkg")
    assert _points(sharded_points["Body"].read()) == _points(whole_points["Body"].read())


def _points(gpkg: bytes) -> list[tuple[Any, ...]]:
    """The review points of a ``review.gpkg``: their geometries and attributes, in order."""
    import fiona

    with fiona.io.MemoryFile(gpkg) as mem, mem.open() as layer:
        return [
            (tuple(f.geometry["coordinates"]), tuple(sorted(f.properties.items()))) for f in layer
        ]


def _plan_key(w: World) -> str:
    (key,) = [k for k in w.objects("partial/") if k.endswith(shards.PLAN_NAME)]
    return key


def _run_prefix(w: World) -> str:
    """``partial/<run-id>/`` of the planned run."""
    return _plan_key(w)[: -len(shards.PLAN_NAME)]


def test_a_share_nobody_computed_is_computed_by_the_assemble_job(world: World) -> None:
    a = world.assets
    put = world.put(KEY, a.big)
    batch = FakeBatch()
    _plan(world, put, batch)
    array, assemble = batch.calls
    _part(world, array["parameters"], 0)
    _part(world, array["parameters"], 2)  # share 1 never ran (a run planned twice)
    result = _part(world, assemble["parameters"])
    assert result.status == "succeeded"
    np.testing.assert_array_equal(world.classes(OUT + "classes.tif"), a.ref_big)
    summary = world.json(OUT + "summary.json")
    assert 0 < summary["resumed_windows"] < summary["windows"]
    assert world.objects("partial/") == {}


def test_a_share_leased_by_a_live_job_ends_its_duplicate_at_once(world: World) -> None:
    put = world.put(KEY, world.assets.big)
    batch = FakeBatch()
    _plan(world, put, batch)
    params = batch.calls[0]["parameters"]
    run = _run_prefix(world)
    world.s3.put_object(
        Bucket=world.bucket,
        Key=shards.shard_prefix(run, 1) + "lease.json",
        Body=b'{"owner": "x", "job_id": "other", "attempt": 1, "ttl_s": 300}',
    )
    dup = _part(world, params, 1)
    assert (dup.status, dup.exit_code) == ("in_progress", 0)
    assert _chunks(world) == []


def test_a_child_killed_mid_run_resumes_on_retry_and_the_pixels_are_identical(
    world: World,
) -> None:
    a = world.assets
    put = world.put(KEY, a.big)
    batch = FakeBatch()
    _plan(world, put, batch)
    array, assemble = batch.calls
    params = array["parameters"]
    args = [*world.args(KEY, put), "--part", PART_SHARD, "--shards", "3"]
    env = {
        **CHUNKY,
        "RASTERDROP_CHECKPOINT_PIXELS": "20000",
        "AWS_BATCH_JOB_ID": "array-1:1",
        "AWS_BATCH_JOB_ARRAY_INDEX": "1",
        "RASTERDROP_MAX_ATTEMPTS": "3",
    }
    proc = subprocess.Popen(
        world.cmd(args),
        env=world.env(AWS_BATCH_JOB_ATTEMPT="1", **env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(_chunks(world)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the child finished before the kill"
    left = len(_chunks(world))
    # Batch retries the child: attempt 2 of the same job takes its share's lease at once
    again = world.run(args, AWS_BATCH_JOB_ATTEMPT="2", **env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("shard_done"), again.stdout
    done = world.json(shards.shard_prefix(_run_prefix(world), 1) + "done.json")
    assert done["restored"] >= left - 1 > 0
    for index in (0, 2):
        _part(world, params, index)
    result = _part(world, assemble["parameters"])
    assert result.status == "succeeded"
    np.testing.assert_array_equal(world.classes(OUT + "classes.tif"), a.ref_big)
    assert world.objects("partial/") == {}


def test_small_inputs_are_not_sharded_and_no_queue_means_one_job(world: World) -> None:
    a = world.assets
    put = world.put("input/small.tif", a.scene)
    batch = FakeBatch()
    req = JobRequest(world.bucket, "input/small.tif", put["VersionId"])
    submitter = shards.Submitter(batch, "q", "d")
    out = predict_job.run(req, _settings(world), s3=world.s3, workers=1, submitter=submitter)
    assert out.status == "succeeded" and batch.calls == []
    # over shard_pixels but nowhere to submit: predicted whole, as before
    big = world.put(KEY, a.big)
    settings = _settings(world, job_queue=None, shard_pixels=1000)
    whole = predict_job.run(JobRequest(world.bucket, KEY, big["VersionId"]), settings, s3=world.s3)
    assert whole.status == "succeeded"
    np.testing.assert_array_equal(world.classes(OUT + "classes.tif"), a.ref_big)


def test_shard_count_and_shares_cover_every_window_once() -> None:
    assert shards.shard_count(BIG_PIXELS, SHARD_PIXELS) == 3
    assert shards.shard_count(SHARD_PIXELS, SHARD_PIXELS) == 0
    assert shards.shard_count(10, 0) == 0
    assert shards.shard_count(10**12, 1) == shards.MAX_SHARDS
    assert shards.shard_count(SHARD_PIXELS + 1, SHARD_PIXELS) == 2
    for windows, count in ((77, 3), (5, 3), (2, 5), (1000, 7)):
        covered = [i for k in range(count) for i in share(windows, k, count)]
        assert covered == list(range(windows))
        sizes = {len(share(windows, k, count)) for k in range(count)}
        assert max(sizes) - min(sizes) <= 1


def test_parts_and_settings_are_parsed_and_refused() -> None:
    req = JobRequest.from_cli("b", "input/a.tif", "", "", "", "shard", "4")
    assert (req.part, req.shards) == (PART_SHARD, 4)
    plain = JobRequest.from_cli("b", "input/a.tif", "", "", "", "Ref::part", "Ref::shards")
    assert (plain.part, plain.shards) == (None, None)
    for part, count in (("shards", "4"), ("shard", "1"), ("assemble", ""), ("shard", "x")):
        with pytest.raises(ConfigError):
            JobRequest.from_cli("b", "input/a.tif", "", "", "", part, count)
    env = {
        "RASTERDROP_SHARD_PIXELS": "5000000",
        "RASTERDROP_JOB_QUEUE": "arn:q",
        "RASTERDROP_JOB_DEFINITION": "rasterdrop-predict",
        "AWS_BATCH_JOB_ARRAY_INDEX": "7",
    }
    settings = from_env(env)
    assert (settings.shard_pixels, settings.array_index, settings.can_shard) == (5_000_000, 7, True)
    assert not replace(settings, job_definition=None).can_shard
    assert not from_env({}).can_shard


def test_compute_used_is_the_billed_vcpu_seconds_of_the_job_and_its_shards() -> None:
    from batch_image.predict.documents import compute_used

    assert compute_used(4, 10.0, 31.26) == {
        "vcpus": 4, "job_vcpu_s": 40.0, "cpu_s": 31.3, "vcpu_s": 40.0
    }  # fmt: skip
    sharded = compute_used(4, 10.0, 5.0, {"shards": 3, "vcpu_s": 1200.0, "cpu_s": 1100.0})
    assert sharded == {
        "vcpus": 4, "job_vcpu_s": 40.0, "cpu_s": 5.0, "shards": 3,
        "shards_vcpu_s": 1200.0, "shards_cpu_s": 1100.0, "vcpu_s": 1240.0,
    }  # fmt: skip
