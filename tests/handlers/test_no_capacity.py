"""A job cancelled in RUNNABLE by the queue's time limit is emailed as `no_capacity`."""

from __future__ import annotations

import pytest
from notify_support import load_event

from rasterdrop_notify.capacity import REASONS, runnable_cancel_reason
from rasterdrop_notify.events import BatchJobStateChangeEvent
from rasterdrop_notify.failures import choose_failure, classify_job

# The reasons the stack's queue cancels on (cdk/compute.py); the statusReason text is
# AWS's, from job_stuck_in_runnable_capacity.html.
STACK_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("reason", STACK_REASONS)
def test_every_reason_the_queue_cancels_on_is_explained(reason: str) -> None:
    text = f"Canceled by JobStateTimeLimit action due to reason: {reason}"
    assert runnable_cancel_reason(text) == reason
    assert reason in REASONS


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Essential container in task exited",
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity",  # waiting
        "Job attempt duration exceeded timeout",
    ],
)
def test_other_texts_are_not_cancellations(text: str | None) -> None:
    assert runnable_cancel_reason(text) is None


def test_cancelled_runnable_job_classifies_as_no_capacity() -> None:
    event = BatchJobStateChangeEvent.model_validate(load_event("batch_failed_no_capacity.json"))
    failure = classify_job(event.detail)
    assert failure.category == "no_capacity"
    assert failure.attempts == 0
    assert failure.exit_code is None
    assert "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" in failure.reason
    assert "vCPU quota" in failure.reason
    # a stale error.json of an earlier upload cannot hide it
    stale = {"category": "internal", "message": "old"}
    assert choose_failure(failure, stale) == failure


def test_no_capacity_email_says_what_to_do(aws, handlers, context) -> None:
    out = handlers["notify"].handler(load_event("batch_failed_no_capacity.json"), context)
    assert out["action"] == "published"
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif failed (no capacity)"
    body = flat(msg["Message"])
    assert "The job never started (CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY)" in body
    for advice in ("vCPU quota", "widen instance_types", "set spot: false", "make doctor"):
        assert advice in body
    assert "4c7599ae-0a82-49aa-ba5a-4727fcce14a8" in body
