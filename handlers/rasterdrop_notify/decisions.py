"""Every job outcome → exactly one notification decision: the notifier's ONE table.

A finished job (a Batch "Job State Change" to SUCCEEDED or FAILED) or an oversize upload
has exactly one *outcome*, named by :func:`job_outcome` from the Batch record and the job's
own documents (``summary.json`` / ``error.json``), and that outcome has exactly one row in
:data:`DECISIONS`: send or stay silent, the SNS ``status`` attribute, the subject's label
and what the email tells the user to do. Nothing else in the package decides whether an
email goes out or what it advises (``render`` reads the labels and advice from here;
``tests/handlers/test_notify_decisions.py`` drives every row with the Batch events of that
outcome and fails for a row it has no events for).

The rows
--------
* ``succeeded``: the result exists → "ready", with links.
* ``duplicate``: another job of the same input version and model computed it → the same
  "ready" message; the marker (``markers``) is the same, so whichever of the two jobs'
  events comes first sends it and the other finds the marker: one email.
* ``reused``: same bytes and model version as the result in place (the job's rule,
  ``batch_image.jobs.predict_job.reusable``) → "ready (reused)", saying no compute was spent.
* ``superseded``: a newer version of the file was uploaded (job exit code 4, or the
  report in place names a newer version) → silent: the newer version's email covers the path.
* ``in_progress`` ("another job owns the email"): a duplicate of a live run ended at once,
  or a huge input was planned as a sharded run (job exit code 5 for both), or an event of a
  sharded run's array job (its parent, or a child that succeeded: Batch parameter
  ``part=shard``) → silent: the live run's own job, or the sharded run's assemble job,
  sends exactly one email, its result or its failure. A child that *failed* (out of
  attempts) is a failure row: the first final failure of a sharded run emails, and the
  assemble job's own failure (its dependency failed) finds the same marker.
* each failure category (``invalid_input``, ``model_error``, ``scratch_full``,
  ``out_of_memory``, ``instance_reclaimed``, ``timeout``, ``image_pull``, ``no_capacity``
  (cancelled while RUNNABLE), ``internal``) → "failed (<label>)" with advice that can
  actually help.
* ``too_large`` and ``unsupported_name`` (rejections: no job ran) → "rejected (<label>)".

Adding a category (e.g. ``no_capacity`` for jobs cancelled while RUNNABLE): one row here,
the rule that recognizes it in ``failures.classify_job`` (add it to ``INFRASTRUCTURE`` there
if it describes how the last attempt died), and its Batch events in the decisions test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasterdrop_notify.absent import optional

#: The job's exit codes (batch_image.errors; parity: tests/test_defaults_agree.py).
EXIT_INVALID_INPUT = 2
EXIT_MODEL_ERROR = 3
EXIT_SUPERSEDED = 4
EXIT_IN_PROGRESS = 5  # in progress elsewhere, or planned: another job owns the email
#: Batch parameter ``part`` of a sharded run's array job (batch_image.jobs.request.PART_SHARD)
PART_SHARD = "shard"

SUCCEEDED = "succeeded"
DUPLICATE = "duplicate"
REUSED = "reused"
SUPERSEDED = "superseded"
IN_PROGRESS = "in_progress"
INTERNAL = "internal"


@dataclass(frozen=True)
class Decision:
    """What the notifier does for one outcome."""

    outcome: str
    send: bool
    status: str | None = None  # the SNS ``status`` attribute: succeeded | failed | rejected
    label: str = ""  # the subject's status words: "ready", "failed (<label>)", ...
    advice: str = ""  # "What to do" (failures) or the note of a reused result
    why: str = ""  # why: logged, and returned by the handler when silent


def _failure(outcome: str, label: str, advice: str) -> Decision:
    return Decision(outcome, True, "failed", label, advice, f"failure category {outcome}")


#: outcome → decision. THE table (see the module docstring).
DECISIONS: dict[str, Decision] = {
    d.outcome: d
    for d in (
        Decision(SUCCEEDED, True, "succeeded", "ready", why="the result exists"),
        Decision(
            DUPLICATE,
            True,
            "succeeded",
            "ready",
            why="another job computed this input and model version: the same message and "
            "marker, so at most one of the two jobs sends it",
        ),
        Decision(
            REUSED,
            True,
            "succeeded",
            "ready (reused)",
            "The same file was processed before with the same model version, so its results "
            "were reused: no new processing was spent. A new model version processes it again.",
            why="same bytes and model version as the result in place",
        ),
        Decision(
            SUPERSEDED,
            False,
            why="a newer version of the file was uploaded: its own email covers the path",
        ),
        Decision(
            IN_PROGRESS,
            False,
            why="another job owns the email: a live job computing this input version, or "
            "the assemble job of its sharded run",
        ),
        _failure(
            "invalid_input",
            "invalid input",
            "Fix the file and upload it again; a new upload starts a new job.",
        ),
        _failure(
            "model_error",
            "model error",
            "Your file is not the problem: the model or the configuration is. Ask the "
            "operators to fix it (quote the job id), then upload the file again.",
        ),
        _failure(
            "scratch_full",
            "disk full",
            "Your file is fine, but the job's scratch disk is too small for it. Ask the "
            "operators for a larger instance volume or job size (quote the job id), or split "
            "the raster into smaller tiles and upload those.",
        ),
        _failure(
            "out_of_memory",
            "out of memory",
            "The job ran out of memory. Split the raster into smaller tiles and upload those, "
            "or ask the operators for more job memory.",
        ),
        _failure(
            "instance_reclaimed",
            "interrupted",
            "The machine running the job was taken back by AWS (Spot) on its last attempt. "
            "Nothing is wrong with your file: upload it again to retry.",
        ),
        _failure(
            "timeout",
            "timed out",
            "The job ran longer than its time limit. Split the raster into smaller tiles, "
            "or ask the operators to raise the limit.",
        ),
        _failure(
            "image_pull",
            "could not start",
            "The job's container image could not be pulled: a deployment problem, not your "
            "file. Tell the operators (quote the job id) and upload again once it is fixed.",
        ),
        _failure(
            "no_capacity",
            "no capacity",
            "Nothing is wrong with your file: no machine could be started for the job before "
            "its waiting time ran out. Operators: raise the region's EC2 vCPU quota (Spot, or "
            "On-Demand with spot: false) to at least max_vcpus, widen instance_types, or set "
            "spot: false; `make doctor` shows which. Then upload the file again.",
        ),
        Decision(
            "unsupported_name",
            True,
            "rejected",
            "unsupported name",
            'Rename the file without double quotes ("), backslashes (\\) or control '
            "characters (such as tabs) and upload it again.",
            why="the key cannot be carried to a job: no job was started",
        ),
        _failure(
            INTERNAL,
            "internal error",
            "Something broke on our side. Upload the file again; if it fails again, tell the "
            "operators and quote the job id.",
        ),
        Decision(
            "too_large",
            True,
            "rejected",
            "too large",
            "Split the raster into tiles under the limit (or compress it) and upload those.",
            why="the upload is over the size limit: no job was started",
        ),
    )
}

#: Outcomes that are not failure categories (every other row is one).
NOT_FAILURES = frozenset({SUCCEEDED, DUPLICATE, REUSED, SUPERSEDED, IN_PROGRESS})
#: The exit codes that name an outcome by themselves, whatever the documents say.
EXIT_OUTCOMES = {EXIT_SUPERSEDED: SUPERSEDED, EXIT_IN_PROGRESS: IN_PROGRESS}


def part_outcome(parameters: dict[str, str], job_id: str, status: str) -> str | None:
    """``in_progress`` for an event of a sharded run's array job that does not own the
    email: the array's parent (any state; its children report) or a child that
    succeeded (the assemble job reports). A failed child (``<parent>:<index>``) is None:
    its failure is the run's first final failure and is emailed as such."""
    if parameters.get("part") != PART_SHARD:
        return None
    child = ":" in job_id
    return None if child and status == "FAILED" else IN_PROGRESS


def decide(outcome: str) -> Decision:
    """The row for ``outcome``; a category this notifier does not know is ``internal``
    (it still emails: nothing fails silently)."""
    return DECISIONS.get(outcome) or DECISIONS[INTERNAL]


def failure_decision(category: str | None) -> Decision:
    """The row of a failure category (unknown or absent: ``internal``)."""
    if not category or category in NOT_FAILURES:
        return DECISIONS[INTERNAL]
    return decide(category)


def succeeded_outcome(summary: dict[str, Any], job_id: str | None) -> str:
    """``reused``, ``duplicate`` or ``succeeded`` for a summary of this input version."""
    if isinstance(summary.get("reused_from"), dict):
        return REUSED
    job = summary.get("job")
    producer = job.get("id") if isinstance(job, dict) else None
    if optional(producer) and job_id and producer != job_id:
        return DUPLICATE
    return SUCCEEDED


__all__ = [
    "DECISIONS",
    "EXIT_OUTCOMES",
    "Decision",
    "decide",
    "failure_decision",
    "part_outcome",
    "succeeded_outcome",
]
