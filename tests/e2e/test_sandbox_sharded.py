"""A sharded run end to end through the sandbox: the planner the rule starts submits an array
job and an assemble job through Batch's SubmitJob (sandbox.arrays, from the synthesized
template's queue and job definition), the children run concurrently with their own
retries, the assemble job publishes; one email, the unsharded pixels, no partials left.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sandbox.core import Options, Sandbox
from tests.conftest import make_model, make_scene
from tests.e2e.test_sandbox_e2e import local_classes, s3_classes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-e2e")]

WIDTH, HEIGHT = 150, 120  # 18,000 pixels
CONTEXT = {
    "max_input_bytes": 400_000,
    "large_job_threshold_bytes": 60_000,  # the scene takes the large definition's route
    "job_attempts": 3,
    "model_name": "demo",
    "notification_emails": ["ops@example.com"],
    "shard_pixels": 5_000,  # -> ceil(18,000 / 5,000) = 4 children
}
# 32 × 32 windows (about 18 of them), one checkpoint object per window
SMALL_WINDOWS = {
    "Environment": [
        {"Name": "RASTERDROP_WINDOW_PIXELS", "Value": "1024"},
        {"Name": "RASTERDROP_CHECKPOINT_PIXELS", "Value": "1024"},
    ]
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("sharded-data")
    small, truth = make_scene(tmp, width=45, height=37, seed=1)
    (tmp / "big").mkdir()
    big, _ = make_scene(tmp / "big", width=WIDTH, height=HEIGHT, seed=2)
    model = make_model(tmp, small, truth, name="demo")
    reference = local_classes(big, model, tmp / "reference")
    return {"big": big, "model": model, "reference": reference}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def sb(data: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("sharded-sandbox")
    with Sandbox(Options(context=CONTEXT, work_dir=work)) as sandbox:
        sandbox.publish_model(data["model"], "demo")
        sandbox.run_until_idle()
        sandbox.container_overrides = SMALL_WINDOWS
        yield sandbox


def _jobs_of(sb: Sandbox, key: str) -> list:
    return [j for j in sb.jobs if j.parameters.get("key") == key]


def _assert_one_clean_result(sb: Sandbox, data: dict, key: str, out: str, tmp: Path) -> None:
    np.testing.assert_array_equal(s3_classes(sb, out, tmp), data["reference"])
    assert sb.keys("partial/") == []
    messages = [m for m in sb.messages() if key.rsplit("/", 1)[-1] in m.subject]
    assert [m.attributes["status"] for m in messages] == ["succeeded"]
    assert "ready" in messages[0].subject


def test_a_huge_input_is_planned_sharded_and_assembled_once(
    sb: Sandbox, data: dict, tmp_path: Path
) -> None:
    key, out = "input/acme/mosaic.tif", "output/acme/mosaic/"
    event = sb.upload(data["big"], key)
    sb.run_until_idle()
    jobs = _jobs_of(sb, key)
    planner = jobs[0]
    assert planner.parameters["part"] == "" and planner.status == "FAILED"
    assert [a.outcome.exit_code for a in planner.attempts] == [5]  # planned: no email
    parts = {j.parameters["part"] for j in jobs[1:]}
    assert parts == {"shard", "assemble"}
    (parent,) = [j for j in jobs if j.array_size]
    assert parent.array_size == 4 and parent.status == "SUCCEEDED"
    children = [j for j in jobs if j.array_index is not None]
    assert sorted(c.array_index for c in children) == [0, 1, 2, 3]
    assert all(c.job_id == f"{parent.job_id}:{c.array_index}" for c in children)
    assert all(c.status == "SUCCEEDED" and len(c.attempts) == 1 for c in children)
    assert all(c.definition.logical_id == "PredictLargeJobDefinition" for c in jobs)
    (assemble,) = [j for j in jobs if j.parameters["part"] == "assemble"]
    assert assemble.depends_on == [parent.job_id] and assemble.status == "SUCCEEDED"
    # the children ran concurrently (2 job slots here): some overlap in time
    spans = sorted((c.attempts[0].started_ms, c.attempts[0].stopped_ms) for c in children)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))
    summary = json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key=out + "summary.json")["Body"].read()
    )
    assert summary["resumed_windows"] == summary["windows"] > 4
    assert summary["job"]["id"] == assemble.job_id
    _assert_one_clean_result(sb, data, key, out, tmp_path)
    # a duplicate of the upload's event: done already, nothing new, no second email
    before = len(sb.jobs)
    sb.put_event(event)
    sb.run_until_idle()
    (dup,) = sb.jobs[before:]
    assert dup.status == "SUCCEEDED" and dup.parameters["part"] == ""
    _assert_one_clean_result(sb, data, key, out, tmp_path)


def test_a_child_killed_mid_run_is_retried_and_the_pixels_are_identical(
    sb: Sandbox, data: dict, tmp_path: Path
) -> None:
    key, out = "input/acme/killed-mosaic.tif", "output/acme/killed-mosaic/"
    sb.faults[1] = {
        "RASTERDROP_SANDBOX_KILL_AFTER_PUTS": "2",
        "RASTERDROP_SANDBOX_KILL_KEYS": "partial/*/chunks/*",
    }
    sb.runner.fault_jobs = lambda job: job.array_index == 2  # child 2's first attempt dies
    try:
        sb.upload(data["big"], key)
        sb.run_until_idle()
    finally:
        sb.faults.clear()
        sb.runner.fault_jobs = None
    children = {j.array_index: j for j in _jobs_of(sb, key) if j.array_index is not None}
    assert [a.outcome.exit_code for a in children[2].attempts] == [137, 0]  # SIGKILL, retry
    assert all(len(children[i].attempts) == 1 for i in (0, 1, 3))
    retry_log = children[2].attempts[1].log_path.read_text()
    assert "checkpoint object(s) from an earlier attempt" in retry_log  # resumed, not redone
    assert "restored" in retry_log and ", 0 restored" not in retry_log
    _assert_one_clean_result(sb, data, key, out, tmp_path)
