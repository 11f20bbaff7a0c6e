"""Why a Batch job failed, from the job's own record when it wrote nothing.

A job that dies before writing ``error.json`` (killed for memory, Spot host reclaimed on the
last attempt, attempt timeout, image pull failure) is still reported with a useful category,
read from the last attempt's container exit code and reason and the status reasons
(``detail.attempts[-1].container.exitCode/reason``, ``attempts[-1].statusReason``,
``detail.statusReason``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rasterdrop_notify.capacity import NO_CAPACITY, no_capacity_reason, runnable_cancel_reason
from rasterdrop_notify.events import BatchJobDetail

#: Categories that describe how the last attempt died; they win over an older error.json.
INFRASTRUCTURE = frozenset(
    {"out_of_memory", "instance_reclaimed", "timeout", "image_pull", NO_CAPACITY}
)
#: The job's exit codes (docs/contracts.md).
EXIT_CATEGORIES = {2: "invalid_input", 3: "model_error"}


@dataclass(frozen=True)
class JobFailure:
    category: str
    reason: str
    exit_code: int | None
    attempts: int
    code: str | None = None


def classify_job(detail: BatchJobDetail) -> JobFailure:
    """The failure category of a FAILED job from its Batch record alone."""
    last = detail.attempts[-1] if detail.attempts else None
    container_reason = last.container.reason if last else None
    exit_code = last.container.exitCode if last else None
    if last is None and detail.container is not None:
        container_reason = detail.container.reason
        exit_code = detail.container.exitCode
    attempt_reason = last.statusReason if last else None
    texts = [t for t in (container_reason, attempt_reason, detail.statusReason) if t]
    attempts = len(detail.attempts)

    def first(pred: Callable[[str], bool]) -> str | None:
        return next((t for t in texts if pred(t)), None)

    cancelled = runnable_cancel_reason(detail.statusReason)
    if cancelled:  # never placed: cancelled in RUNNABLE by the queue's time limit
        return JobFailure(NO_CAPACITY, no_capacity_reason(cancelled), exit_code, attempts)

    checks = (
        ("out_of_memory", lambda t: t.startswith("OutOfMemoryError")),
        ("image_pull", lambda t: "CannotPullContainerError" in t),
        ("instance_reclaimed", lambda t: t.startswith("Host EC2") and "terminated" in t),
        ("timeout", lambda t: "exceeded timeout" in t),
    )
    for category, pred in checks:
        hit = first(pred)
        if hit:
            return JobFailure(category, hit, exit_code, attempts)
    if exit_code in EXIT_CATEGORIES:
        reason = f"The job stopped with exit code {exit_code} but left no error report."
        return JobFailure(EXIT_CATEGORIES[exit_code], reason, exit_code, attempts)
    reason = container_reason or attempt_reason or detail.statusReason
    if exit_code == 137 and not container_reason:
        reason = "The container was killed (exit code 137, SIGKILL)."
    if not reason or reason == "Essential container in task exited":
        reason = (
            f"The job stopped with exit code {exit_code}."
            if exit_code is not None
            else (reason or "The job failed without a reason.")
        )
    return JobFailure("internal", reason, exit_code, attempts)


def choose_failure(job: JobFailure, error_doc: dict[str, Any] | None) -> JobFailure:
    """Combine the job's record with its ``error.json``.

    The way the last attempt died (memory, Spot, timeout, image) wins: an error.json may be
    left over from an earlier attempt. Otherwise the job's own categorized report wins.
    """
    if job.category in INFRASTRUCTURE or not error_doc:
        return job
    category = str(error_doc.get("category") or job.category)
    message = str(error_doc.get("message") or job.reason)
    code = error_doc.get("code")
    return JobFailure(category, message, job.exit_code, job.attempts, str(code) if code else None)
