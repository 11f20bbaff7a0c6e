"""The local Batch with no instance to be had: blocked-queue event, then the queue's time
limit (read from the template) cancels the job; without a matching limit it stays RUNNABLE."""

from __future__ import annotations

from pathlib import Path

from sandbox.batch import NO_CAPACITY, BatchRunner, job_state_event, queue_time_limits
from tests.sandbox.test_sandbox_batch import QUEUE, definition
from tests.sandbox.test_sandbox_batch import runner as runner  # the fixture

TEMPLATE = {
    "Resources": {
        "JobQueue": {
            "Type": "AWS::Batch::JobQueue",
            "Properties": {
                "JobStateTimeLimitActions": [
                    {
                        "Action": "CANCEL",
                        "MaxTimeSeconds": 600,
                        "State": "RUNNABLE",
                        "Reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
                    },
                    {
                        "Action": "CANCEL",
                        "MaxTimeSeconds": 900,
                        "State": "RUNNABLE",
                        "Reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
                    },
                ]
            },
        },
        "Other": {"Type": "AWS::Batch::JobQueue", "Properties": {}},
    }
}


def held(runner: BatchRunner, tmp: Path, reason: str):
    states, events = [], []
    runner.on_state = lambda job: states.append((job.status, job.status_reason))
    runner.on_event = events.append
    runner.hold_runnable = reason
    runner.time_limits = queue_time_limits(
        TEMPLATE, lambda v: QUEUE if v == {"Ref": "JobQueue"} else "other"
    )
    job = runner.submit(
        queue_arn=QUEUE, definition=definition(tmp, "0"), job_name="j", parameters={"key": "k"}
    )
    runner.run(job)
    return job, states, events


def test_limits_are_read_from_the_template() -> None:
    limits = queue_time_limits(TEMPLATE, lambda v: v["Ref"])
    assert limits == {
        "JobQueue": {
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": 600,
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": 900,
        }
    }


def test_capacity_hold_is_cancelled_by_the_time_limit(runner: BatchRunner, tmp_path: Path) -> None:
    job, states, events = held(runner, tmp_path, NO_CAPACITY)
    cancelled = (
        "Canceled by JobStateTimeLimit action due to reason: "
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    )
    assert states[-2:] == [("RUNNABLE", NO_CAPACITY), ("FAILED", cancelled)]
    assert job.attempts == []
    assert not (tmp_path / "record.jsonl").exists()  # the container never ran
    (blocked,) = events
    assert blocked["detail-type"] == "Batch Job Queue Blocked"
    assert blocked["resources"] == [job.arn, QUEUE]
    assert blocked["detail"]["status"] == "RUNNABLE"
    assert blocked["detail"]["statusReason"] == NO_CAPACITY
    final = job_state_event(job, region="eu-west-1", account="123456789012")
    assert final["detail"]["status"] == "FAILED"
    assert final["detail"]["statusReason"] == cancelled
    assert final["detail"]["attempts"] == []


def test_reason_without_a_limit_waits(runner: BatchRunner, tmp_path: Path) -> None:
    reason = "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS - the service role lacks permissions"
    job, states, events = held(runner, tmp_path, reason)
    assert job.status == "RUNNABLE"
    assert states[-1] == ("RUNNABLE", reason)
    assert [e["detail"]["statusReason"] for e in events] == [reason]
