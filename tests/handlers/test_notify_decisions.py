"""The notifier's one decision table, row by row, driven by the Batch events of each outcome.

Every row of ``rasterdrop_notify.decisions.DECISIONS`` has a scenario here (the job's
documents in S3 + the Batch "Job State Change" events its jobs end with); the test runs
the real handler on moto and checks the row's decision: how many emails, with which
subject and advice. A new row without a scenario fails ``test_every_row_has_a_scenario``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from notify_support import error_doc, load_event, summary_doc

from rasterdrop_notify.decisions import DECISIONS, decide, failure_decision

KEY = "input/acme/field-7.tif"
RESULTS = "output/acme/field-7/"
VERSION = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"
JOB = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"


SAMPLE_FAILED = "batch_failed_invalid_input.json"


def ended(exit_code: int | None, *, job_id: str = JOB, sample: str = SAMPLE_FAILED,
          status: str = "FAILED") -> dict[str, Any]:  # fmt: skip
    """The Batch event of a job whose last attempt ended with ``exit_code``."""
    event = copy.deepcopy(load_event(sample))
    event["detail"]["jobId"] = job_id
    event["detail"]["status"] = status
    last = event["detail"]["attempts"][-1]["container"]
    if exit_code is None:
        last.pop("exitCode", None)
    else:
        last["exitCode"] = exit_code
    last.pop("reason", None)
    event["detail"].get("container", {}).pop("reason", None)
    return event


def succeeded(job_id: str = JOB) -> dict[str, Any]:
    event = load_event("batch_succeeded.json")
    event["detail"]["jobId"] = job_id
    return event


def _rejected_name() -> dict[str, Any]:
    """An upload whose key EventBridge cannot carry to a job (a double quote in it)."""
    event = load_event("s3_object_created_oversize.json")
    event["detail"]["object"]["key"] = 'input/acme/field "7".tif'
    event["detail"]["object"]["size"] = 1000
    return event


def part(event: dict[str, Any], name: str, shards: int = 3) -> dict[str, Any]:
    """The same event as one of a sharded run's jobs (Batch parameters ``part``/``shards``)."""
    event["detail"]["parameters"] = {
        **event["detail"]["parameters"],
        "part": name,
        "shards": str(shards),
    }
    return event


def with_job(doc: dict[str, Any], job_id: str) -> dict[str, Any]:
    return {**doc, "job": {"id": job_id, "attempt": 1}}


@dataclass
class Scenario:
    """Documents in place, the events that arrive, and what must come out."""

    docs: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    emails: int  # exactly this many messages (0 or 1)
    subject: str | None = None
    says: tuple[str, ...] = ()
    rejection: bool = False
    attrs: dict[str, str] = field(default_factory=dict)


def _scenarios() -> dict[str, Scenario]:
    ok = with_job(summary_doc(), JOB)
    newer = summary_doc(version="v-newer")
    reused = {
        **with_job(summary_doc(), JOB),
        "reused_from": {"version_id": "v-before", "run_id": "r0", "created_at": "x"},
    }
    err = lambda category, code, msg: error_doc(category, code, msg)  # noqa: E731
    return {
        "succeeded": Scenario({"summary.json": ok}, [succeeded()], 1,
                              "rasterdrop: field-7.tif ready", attrs={"status": "succeeded"}),
        # the computing job and a duplicate job (other id) both end SUCCEEDED: one email
        "duplicate": Scenario({"summary.json": with_job(summary_doc(), "the-original")},
                              [succeeded(), succeeded("the-original")], 1,
                              "rasterdrop: field-7.tif ready"),
        "reused": Scenario({"summary.json": reused}, [succeeded()], 1,
                           "rasterdrop: field-7.tif ready (reused)",
                           ("results were reused", "the results of version v-before")),
        # exit 4 (the job saw a newer version), or success whose summary is a newer one's
        "superseded": Scenario({"summary.json": newer}, [ended(4), succeeded()], 0),
        # exit 5: a live job holds the lease, or the job planned a sharded run; the array
        # job's parent (any end) and its children that succeeded: the assemble job reports.
        # Even a stale error.json does not make an email
        "in_progress": Scenario(
            {"error.json": err("internal", "unexpected", "old attempt")},
            [ended(5), part(succeeded("arr:0"), "shard"), part(succeeded("arr"), "shard"),
             part(ended(1, job_id="arr"), "shard")],
            0,
        ),
        "invalid_input": Scenario(
            {"error.json": err("invalid_input", "not_a_tiff", "field-7.tif is not a GeoTIFF")},
            [ended(2)], 1, "rasterdrop: field-7.tif failed (invalid input)",
            ("field-7.tif is not a GeoTIFF", "Fix the file"),
        ),
        "model_error": Scenario({}, [ended(3)], 1, "rasterdrop: field-7.tif failed (model error)",
                                ("the model or the configuration",)),
        "scratch_full": Scenario(
            {"error.json": err("scratch_full", "volume_too_small",
                               "field-7.tif needs about 120.0 GiB of scratch space")},
            [ended(3)], 1, "rasterdrop: field-7.tif failed (disk full)",
            ("larger instance volume or job size",),
        ),
        "out_of_memory": Scenario({}, [load_event("batch_failed_oom.json")], 1,
                                  "rasterdrop: field-7.tif failed (out of memory)"),
        "instance_reclaimed": Scenario({}, [load_event("batch_failed_spot.json")], 1,
                                       "rasterdrop: field-7.tif failed (interrupted)"),
        "timeout": Scenario({}, [load_event("batch_failed_timeout.json")], 1,
                            "rasterdrop: field-7.tif failed (timed out)"),
        "image_pull": Scenario({}, [load_event("batch_failed_image_pull.json")], 1,
                               "rasterdrop: field-7.tif failed (could not start)"),
        "internal": Scenario({}, [ended(1), ended(1)], 1,
                             "rasterdrop: field-7.tif failed (internal error)",
                             ("Upload the file again",)),
        "no_capacity": Scenario({}, [load_event("batch_failed_no_capacity.json")], 1,
                                says=("vCPU quota",)),
        "unsupported_name": Scenario({}, [_rejected_name()], 1, rejection=True,
                                     says=("Rename the file",)),
        "too_large": Scenario({}, [load_event("s3_object_created_oversize.json")], 1,
                              rejection=True, says=("larger than the upload size limit",)),
    }  # fmt: skip


SCENARIOS = _scenarios()


def test_every_row_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(DECISIONS)


@pytest.mark.parametrize("outcome", sorted(SCENARIOS))
def test_each_outcome_gets_its_one_decision(aws, handlers, context, outcome: str) -> None:
    sc = SCENARIOS[outcome]
    for name, doc in sc.docs.items():
        aws.put_json(RESULTS + name, doc)
    handler = handlers["reject" if sc.rejection else "notify"].handler
    results = [handler(copy.deepcopy(e), context) for e in sc.events]
    messages = aws.messages()
    decision = decide(outcome)
    assert len(messages) == sc.emails == int(decision.send), (outcome, results)
    if not decision.send:
        assert all(r["action"] == "skipped" for r in results), results
        assert any(decision.why in r["reason"] for r in results), results
        return
    [msg] = messages
    if sc.subject:
        assert msg["Subject"] == sc.subject
    assert decision.label in msg["Subject"]
    body = " ".join(msg["Message"].split())
    for text in sc.says:
        assert text in body, (text, body)
    if decision.status in ("failed", "rejected"):
        assert " ".join(decision.advice.split()) in body
    attrs = {k: v["Value"] for k, v in msg.get("MessageAttributes", {}).items()}
    assert attrs["status"] == decision.status
    for k, v in sc.attrs.items():
        assert attrs[k] == v


def test_unknown_categories_still_email_as_internal() -> None:
    assert failure_decision("no_such_category") is DECISIONS["internal"]
    assert failure_decision(None) is DECISIONS["internal"]
    assert failure_decision("succeeded") is DECISIONS["internal"]  # not a failure category
    assert decide("no_such_outcome").send


def test_only_the_table_decides() -> None:
    """No other notifier module holds labels or advice of its own."""
    import pathlib

    import rasterdrop_notify

    root = pathlib.Path(rasterdrop_notify.__file__).parent
    advice = DECISIONS["out_of_memory"].advice[:40]
    holders = [p.name for p in root.glob("*.py") if advice in p.read_text()]
    assert holders == ["decisions.py"]


def test_a_sharded_run_emails_once_from_its_assemble_job_or_its_first_final_failure(
    aws, handlers, context
) -> None:
    notify = handlers["notify"].handler
    # success: the planner (exit 5), the children, the array parent, then the assemble job
    compute = {"vcpus": 4, "job_vcpu_s": 60.0, "shards": 3, "vcpu_s": 4500.0}
    aws.put_json(RESULTS + "summary.json", {**with_job(summary_doc(), "asm"), "compute": compute})
    events = [
        ended(5),
        *(part(succeeded(f"arr:{i}"), "shard") for i in range(3)),
        part(succeeded("arr"), "shard"),
        part(succeeded("asm"), "assemble"),
    ]
    results = [notify(copy.deepcopy(e), context) for e in events]
    assert [r["action"] for r in results] == ["skipped"] * 5 + ["published"]
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif ready"
    body = " ".join(msg["Message"].split())
    assert "Compute used 1.25 vCPU-hours (3 shards in parallel)" in body


def test_a_failed_child_is_the_one_failure_email_of_its_sharded_run(aws, handlers, context) -> None:
    notify = handlers["notify"].handler
    aws.put_json(
        RESULTS + "error.json",
        error_doc("invalid_input", "unreadable", "field-7.tif is corrupt or truncated"),
    )
    # child 1 out of attempts; the parent fails with it; the assemble job's dependency failed
    events = [
        part(succeeded("arr:0"), "shard"),
        part(ended(2, job_id="arr:1"), "shard"),
        part(ended(2, job_id="arr"), "shard"),
        part(ended(None, job_id="asm"), "assemble"),
    ]
    results = [notify(copy.deepcopy(e), context) for e in events]
    assert [r["action"] for r in results] == ["skipped", "published", "skipped", "duplicate"]
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: field-7.tif failed (invalid input)"
    assert "field-7.tif is corrupt or truncated" in " ".join(msg["Message"].split())
