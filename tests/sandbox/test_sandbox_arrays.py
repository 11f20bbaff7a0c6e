"""The local SubmitJob of jobs that submit jobs: array jobs (children, their index and
retries, the parent's end), dependsOn, and what Batch refuses; through boto3's Batch client."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.arrays import DEPENDENT_FAILED, BatchApiServer, JobScheduler
from sandbox.batch import BatchRunner, Job, job_state_event
from sandbox.retry import RetryStrategy
from sandbox.stack import JobDefinition

QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/Rasterdrop-JobQueue"
# child i exits with EXIT_<i> (default 0) on each attempt: "1,0" fails once, then succeeds
SCRIPT = """
import os, sys
index = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX", "x")
attempt = int(os.environ["AWS_BATCH_JOB_ATTEMPT"])
codes = os.environ.get(f"EXIT_{index}", "0").split(",")
sys.exit(int(codes[min(attempt, len(codes)) - 1]))
"""


def _definition(env: dict[str, str]) -> JobDefinition:
    return JobDefinition(
        logical_id="PredictJobDefinition",
        arn="arn:aws:batch:eu-west-1:123456789012:job-definition/Rasterdrop-predict:1",
        name="Rasterdrop-predict",
        command=("predict",),
        environment=env,
        parameters={"part": ""},
        retry=RetryStrategy.from_template({"Attempts": 2}),
        timeout_s=None,
        image="x",
    )


class World:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        script = tmp / "entry.py"
        script.write_text(SCRIPT)
        self.events: list[dict[str, Any]] = []
        self.runner = BatchRunner(
            entrypoint=[sys.executable, str(script)],
            workdir=tmp,
            aws_env={},
            base_env={},
            log_dir=tmp / "logs",
            scratch_dir=tmp / "scratch",
            region="eu-west-1",
            account="123456789012",
            on_state=lambda job: self.events.append(
                job_state_event(job, region="eu-west-1", account="123456789012")
            ),
        )
        self.pool = ThreadPoolExecutor(2)
        self.futures: list[Future[Any]] = []
        self.jobs: list[Job] = []
        self.scheduler = JobScheduler(
            self.runner,
            {"PredictJobDefinition": _definition(env)},
            [QUEUE],
            self.pool,
            self.futures.append,
            self.jobs,
        )
        self.api = BatchApiServer(self.scheduler.submit).start()
        self.batch = boto3.client(
            "batch",
            endpoint_url=self.api.endpoint,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def settle(self) -> None:
        deadline = time.monotonic() + 60
        while not all(f.done() for f in self.futures):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for f in self.futures:
            f.result()

    def job(self, job_id: str) -> Job:
        return next(j for j in self.jobs if j.job_id == job_id)

    def statuses(self, job_id: str) -> list[str]:
        return [e["detail"]["status"] for e in self.events if e["detail"]["jobId"] == job_id]

    def close(self) -> None:
        self.api.stop()
        self.scheduler.close()
        self.pool.shutdown()


@pytest.fixture
def make(tmp_path: Path):
    worlds: list[World] = []

    def build(**env: str) -> World:
        worlds.append(World(tmp_path, env))
        return worlds[-1]

    yield build
    for w in worlds:
        w.close()


def test_an_array_runs_its_children_then_its_dependent_job(make) -> None:
    w = make(EXIT_1="1,0")  # child 1 fails its first attempt: retried by the strategy
    array = w.batch.submit_job(
        jobName="shards",
        jobQueue=QUEUE,
        jobDefinition="Rasterdrop-predict",
        arrayProperties={"size": 3},
        parameters={"part": "shard"},
    )
    after = w.batch.submit_job(
        jobName="assemble",
        jobQueue="Rasterdrop-JobQueue",
        jobDefinition="arn:aws:batch:eu-west-1:123456789012:job-definition/Rasterdrop-predict:1",
        dependsOn=[{"jobId": array["jobId"]}],
        parameters={"part": "assemble"},
    )
    w.settle()
    parent = w.job(array["jobId"])
    children = [w.job(f"{parent.job_id}:{i}") for i in range(3)]
    assert [c.environment["AWS_BATCH_JOB_ARRAY_INDEX"] for c in children] == ["0", "1", "2"]
    assert [len(c.attempts) for c in children] == [1, 2, 1]
    assert all(c.status == "SUCCEEDED" for c in children)
    assert parent.status == "SUCCEEDED" and parent.attempts == []
    assert w.statuses(parent.job_id) == ["SUBMITTED", "PENDING", "SUCCEEDED"]
    last = [e for e in w.events if e["detail"]["jobId"] == parent.job_id][-1]["detail"]
    assert last["arrayProperties"] == {"size": 3, "statusSummary": {"SUCCEEDED": 3}}
    child_event = [e for e in w.events if e["detail"]["jobId"] == children[1].job_id][-1]
    assert child_event["detail"]["arrayProperties"] == {"index": 1}
    assert child_event["detail"]["parameters"]["part"] == "shard"
    dependent = w.job(after["jobId"])
    assert dependent.status == "SUCCEEDED" and len(dependent.attempts) == 1
    assert dependent.attempts[0].started_ms >= max(c.stopped_ms or 0 for c in children)
    assert dependent.parameters == {"part": "assemble"}


def test_a_child_out_of_attempts_fails_the_array_and_its_dependent_without_an_attempt(
    make,
) -> None:
    w = make(EXIT_0="1,1")
    array = w.batch.submit_job(
        jobName="s", jobQueue=QUEUE, jobDefinition="Rasterdrop-predict",
        arrayProperties={"size": 2},
    )  # fmt: skip
    after = w.batch.submit_job(
        jobName="a", jobQueue=QUEUE, jobDefinition="Rasterdrop-predict",
        dependsOn=[{"jobId": array["jobId"]}],
    )  # fmt: skip
    w.settle()
    assert w.job(f"{array['jobId']}:0").status == "FAILED"
    assert w.job(array["jobId"]).status == "FAILED"
    dependent = w.job(after["jobId"])
    assert (dependent.status, dependent.status_reason) == ("FAILED", DEPENDENT_FAILED)
    assert dependent.attempts == []
    assert w.statuses(after["jobId"]) == ["SUBMITTED", "PENDING", "FAILED"]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"jobDefinition": "someone-elses"}, "job definition"),
        ({"jobQueue": "arn:aws:batch:eu-west-1:123456789012:job-queue/other"}, "job queue"),
        ({"arrayProperties": {"size": 1}}, "array size"),
        ({"dependsOn": [{"jobId": "nope"}]}, "unknown jobs"),
    ],
)
def test_what_batch_refuses_is_refused(make, kwargs: dict, says: str) -> None:
    w = make()
    request = {"jobName": "x", "jobQueue": QUEUE, "jobDefinition": "Rasterdrop-predict", **kwargs}
    with pytest.raises(ClientError) as err:
        w.batch.submit_job(**request)
    assert err.value.response["Error"]["Code"] == "ClientException"
    assert says in err.value.response["Error"]["Message"]
    assert w.jobs == []
