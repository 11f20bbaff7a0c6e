"""The local Batch: command substitution, environment, attempts, retry strategy, timeout, events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sandbox.batch import BatchRunner, job_state_event, substitute
from sandbox.retry import RetryStrategy
from sandbox.stack import JobDefinition

QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/Rasterdrop-JobQueue"

# A stand-in for the image: records its argv and environment, then exits as told.
SCRIPT = """
import json, os, signal, sys, time
attempt = int(os.environ["AWS_BATCH_JOB_ATTEMPT"])
with open(os.environ["RECORD"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "attempt": attempt,
                        "job_id": os.environ["AWS_BATCH_JOB_ID"],
                        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                        "model": os.environ.get("RASTERDROP_MODEL_URI")}) + "\\n")
codes = os.environ["EXIT_CODES"].split(",")
code = codes[min(attempt, len(codes)) - 1]
if code == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if code == "sleep":
    time.sleep(30)
sys.exit(int(code))
"""


def definition(tmp: Path, codes: str, *, timeout: int | None = None) -> JobDefinition:
    return JobDefinition(
        logical_id="PredictJobDefinition",
        arn="arn:aws:batch:eu-west-1:123456789012:job-definition/predict:1",
        name="predict",
        command=("predict", "--key", "Ref::key", "--size", "Ref::size", "--x", "Ref::absent"),
        environment={
            "RASTERDROP_MODEL_URI": "s3://b/models/demo/",
            "EXIT_CODES": codes,
            "RECORD": str(tmp / "record.jsonl"),
        },
        parameters={"bucket": "b", "key": "", "size": "0"},
        retry=RetryStrategy.from_template(
            {
                "Attempts": 3,
                "EvaluateOnExit": [
                    {"Action": "EXIT", "OnExitCode": "2"},
                    {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
                ],
            }
        ),
        timeout_s=timeout,
        image="123.dkr.ecr/x:tag",
        vcpus="4",
        memory_mib="7168",
    )


@pytest.fixture
def runner(tmp_path: Path) -> BatchRunner:
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    return BatchRunner(
        entrypoint=[sys.executable, str(script)],
        workdir=tmp_path,
        aws_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
        base_env={},
        log_dir=tmp_path / "logs",
        scratch_dir=tmp_path / "scratch",
        region="eu-west-1",
        account="123456789012",
    )


def records(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp / "record.jsonl").read_text().splitlines()]


def test_substitute_replaces_whole_arguments_only() -> None:
    assert substitute(["a", "Ref::k", "x-Ref::k", "Ref::none"], {"k": "v w"}) == [
        "a",
        "v w",
        "x-Ref::k",
        "Ref::none",
    ]


def run(runner: BatchRunner, tmp: Path, codes: str, **kw):
    states: list[str] = []
    runner.on_state = lambda job: states.append(job.status)
    job = runner.submit(
        queue_arn=QUEUE,
        definition=definition(tmp, codes, **kw),
        job_name="rasterdrop-predict",
        parameters={"key": "input/a b+c.tif", "size": "42"},
    )
    runner.run(job)
    return job, states


def test_success_first_attempt(runner: BatchRunner, tmp_path: Path) -> None:
    job, states = run(runner, tmp_path, "0")
    assert job.status == "SUCCEEDED"
    assert states == ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    (rec,) = records(tmp_path)
    assert rec["argv"] == [
        "predict",
        "--key",
        "input/a b+c.tif",
        "--size",
        "42",
        "--x",
        "Ref::absent",
    ]
    assert rec["attempt"] == 1 and rec["job_id"] == job.job_id
    assert rec["endpoint"] == "http://127.0.0.1:1"
    assert rec["model"] == "s3://b/models/demo/"
    assert job.parameters == {"bucket": "b", "key": "input/a b+c.tif", "size": "42"}


def test_retries_until_attempts_are_used(runner: BatchRunner, tmp_path: Path) -> None:
    job, states = run(runner, tmp_path, "1")
    assert job.status == "FAILED"
    assert [a.outcome.exit_code for a in job.attempts] == [1, 1, 1]
    assert [r["attempt"] for r in records(tmp_path)] == [1, 2, 3]
    assert states.count("RUNNING") == 3


def test_exit_rule_stops_retries(runner: BatchRunner, tmp_path: Path) -> None:
    job, _ = run(runner, tmp_path, "2")
    assert job.status == "FAILED" and len(job.attempts) == 1


def test_killed_attempt_is_retried_and_reported_as_137(runner: BatchRunner, tmp_path: Path) -> None:
    job, _ = run(runner, tmp_path, "kill,0")
    assert [a.outcome.exit_code for a in job.attempts] == [137, 0]
    assert job.status == "SUCCEEDED"


def test_timeout_kills_the_attempt(runner: BatchRunner, tmp_path: Path) -> None:
    job, _ = run(runner, tmp_path, "sleep,0", timeout=1)
    assert job.attempts[0].outcome.status_reason == "Job attempt duration exceeded timeout"
    assert job.attempts[0].outcome.exit_code == 137
    assert job.status == "SUCCEEDED"


def test_job_state_change_event_shape(runner: BatchRunner, tmp_path: Path) -> None:
    job, _ = run(runner, tmp_path, "1,0")
    event = job_state_event(job, region="eu-west-1", account="123456789012")
    assert event["version"] == "0"
    assert event["detail-type"] == "Batch Job State Change"
    assert event["source"] == "aws.batch"
    assert event["resources"] == [job.arn]
    assert job.arn == f"arn:aws:batch:eu-west-1:123456789012:job/{job.job_id}"
    d = event["detail"]
    assert d["status"] == "SUCCEEDED"
    assert d["jobQueue"] == QUEUE
    assert d["jobName"] == "rasterdrop-predict"
    assert d["parameters"]["key"] == "input/a b+c.tif"
    assert [a["container"]["exitCode"] for a in d["attempts"]] == [1, 0]
    assert d["container"]["exitCode"] == 0
    assert d["statusReason"] == "Essential container in task exited"
    assert d["retryStrategy"]["attempts"] == 3
    assert d["jobDefinition"].endswith("job-definition/predict:1")
    assert d["startedAt"] <= d["stoppedAt"]
    assert {"name": "RASTERDROP_MODEL_URI", "value": "s3://b/models/demo/"} in (
        d["container"]["environment"]
    )


def test_overrides_replace_environment_and_command(runner: BatchRunner, tmp_path: Path) -> None:
    job = runner.submit(
        queue_arn=QUEUE,
        definition=definition(tmp_path, "0"),
        job_name="j",
        parameters={"key": "k"},
        overrides={
            "Environment": [{"Name": "EXIT_CODES", "Value": "0"}],
            "Command": ["x", "Ref::key"],
        },
    )
    assert job.command == ["x", "k"]
    assert job.environment["EXIT_CODES"] == "0"
