"""Jobs that never started: cancelled in RUNNABLE by the job queue's time limit.

The stack's job queue cancels a job left RUNNABLE for `runnable_timeout_minutes` when Batch
says why it cannot be placed (quota, instance types, `max_vcpus`); Batch then marks it FAILED
with ``statusReason`` "Canceled by JobStateTimeLimit action due to reason: <REASON>" and no
attempts. This module turns that text into the ``no_capacity`` failure and says, per reason,
what the operators can change. https://docs.aws.amazon.com/batch/latest/userguide/
job_stuck_in_runnable_time_limit_actions.html and job_stuck_in_runnable_capacity.html
"""

from __future__ import annotations

import re

NO_CAPACITY = "no_capacity"

_CANCELLED = re.compile(
    r"cancel+ed by jobstatetimelimit action due to reason:\s*(?P<reason>[A-Z0-9_:]+)",
    re.IGNORECASE,
)

#: Batch's reason -> what it means for this stack (config keys named as in cdk.json).
REASONS: dict[str, str] = {
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": (
        "AWS could not start an instance for the job: usually the region's EC2 vCPU quota "
        "(Spot, or On-Demand with spot: false) is below what the job needs, or the instance "
        "types listed in instance_types have no capacity right now."
    ),
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": (
        "The job needs more vCPUs than the compute environment's max_vcpus allows."
    ),
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": (
        "No instance type in instance_types has the vCPUs and memory the job asks for."
    ),
    "MISCONFIGURATION:EC2_INSTANCE_CONFIGURATION_UNSUPPORTED": (
        "The compute environment's instance configuration (AMI or instance type) is not "
        "supported for the job."
    ),
}
_UNKNOWN = "AWS Batch could not place the job on any instance."


def runnable_cancel_reason(text: str | None) -> str | None:
    """Batch's reason if ``text`` says the time limit cancelled a RUNNABLE job, else None."""
    match = _CANCELLED.search(text or "")
    return match.group("reason").upper() if match else None


def no_capacity_reason(reason: str) -> str:
    """One line for the email: why the job never started, in this stack's terms."""
    return f"The job never started ({reason}). {REASONS.get(reason, _UNKNOWN)}"
