"""A fresh stack's first use through the sandbox (the synthesized template on moto's server):
`make smoke` fails without a model and says why, `make bootstrap-model` fixes it, smoke then
passes and cleans up; a job that can get no instance waits RUNNABLE, is cancelled by the
queue's time limit and ends in a `no_capacity` email (and the blocked-queue event reaches
the audit queue behind the ops alarm); keys the event cannot carry get one rejection each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.bootstrap import bootstrap
from ops.outputs import StackOutputs
from ops.smoke import SmokeFailed, sample_scene, smoke
from sandbox.batch import NO_CAPACITY, Job
from sandbox.core import Options, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-first-deploy")]

CONTEXT = {
    "notification_emails": ["me@example.com"],
    "ops_email": "ops@example.com",
    "model_name": "demo",
}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("first-deploy")
    with Sandbox(Options(context=CONTEXT, work_dir=work)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_scene(tmp_path_factory.mktemp("smoke-scene"))


def outputs_of(sb: Sandbox) -> StackOutputs:
    """The template's Outputs as the sandbox resolves them: what DescribeStacks would say."""
    values = {k: sb.resolver.resolve(v["Value"]) for k, v in sb.template["Outputs"].items()}
    return StackOutputs.from_mapping(values)


def keys_under(sb: Sandbox, prefix: str) -> list[str]:
    pages = sb.s3.get_paginator("list_object_versions").paginate(Bucket=sb.bucket, Prefix=prefix)
    return [v["Key"] for page in pages for v in page.get("Versions", [])]


def test_first_use_smoke_bootstrap_smoke(sb: Sandbox, scene: Path) -> None:
    outputs = outputs_of(sb)
    assert outputs.bucket == sb.bucket
    subs_before = sb.sns.list_subscriptions_by_topic(TopicArn=outputs.topic_arn)["Subscriptions"]

    def pump(_seconds: float) -> None:
        sb.run_until_idle()

    # 1. a fresh stack has no model: the job fails and smoke says why, non-zero
    with pytest.raises(SmokeFailed, match="the job failed: model_error"):
        smoke(sb.s3, sb.sns, sb.sqs, outputs, scene, wait=pump, run_id="nomodel")
    # 2. make bootstrap-model: a sample model trained here, published, pointed at
    first = bootstrap(sb.s3, sb.bucket, "demo")
    assert first.published and first.promoted
    pointer = json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key="models/demo/current.json")["Body"].read()
    )
    assert pointer["version"] == first.version
    card = json.loads(
        sb.s3.get_object(Bucket=sb.bucket, Key=f"models/demo/{first.version}/model.json")[
            "Body"
        ].read()
    )
    assert card["version"] == first.version
    assert f"models/demo/{first.version}/reserved.json" not in sb.keys("models/demo/")
    # 3. smoke passes: result and message, then nothing of it is left
    result = smoke(sb.s3, sb.sns, sb.sqs, outputs, scene, wait=pump, run_id="first")
    assert result.subject == "rasterdrop: smoke-first.tif ready"
    assert result.summary["status"] == "succeeded"
    assert result.summary["model"]["version"] == first.version
    assert 0 <= result.result_s <= result.message_s + 60
    print(result.report())
    for prefix in ("input/smoke/", "output/smoke/"):
        assert keys_under(sb, prefix) == []
    subs_after = sb.sns.list_subscriptions_by_topic(TopicArn=outputs.topic_arn)["Subscriptions"]
    assert len(subs_after) == len(subs_before)
    assert not [u for u in sb.sqs.list_queues().get("QueueUrls", []) if "smoke" in u]


def upload_held(sb: Sandbox, scene: Path, key: str, status_reason: str) -> tuple[Job, list]:
    """Upload with no instance to be had: the job, and the blocked-queue events of it."""
    sb.runner.hold_runnable = status_reason
    try:
        sb.upload(scene, key)
        sb.run_until_idle()
    finally:
        sb.runner.hold_runnable = None
    (job,) = [j for j in sb.jobs if j.parameters.get("key") == key]
    got = sb.sqs.receive_message(QueueUrl=sb.names["BlockedJobsQueue"], MaxNumberOfMessages=10)
    events = [json.loads(m["Body"]) for m in got.get("Messages", [])]
    return job, [e for e in events if e["detail"]["jobId"] == job.job_id]


def test_job_held_in_runnable_ends_in_a_no_capacity_email(sb: Sandbox, scene: Path) -> None:
    job, blocked = upload_held(sb, scene, "input/acme/held.tif", NO_CAPACITY)
    assert job.status == "FAILED"
    assert job.attempts == []
    assert job.status_reason == (
        "Canceled by JobStateTimeLimit action due to reason: "
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
    )
    mails = [m for m in sb.messages() if "held.tif" in m.subject]
    assert [m.subject for m in mails] == ["rasterdrop: held.tif failed (no capacity)"]
    body = flat(mails[0].body)
    print(mails[0].subject, "\n", mails[0].body)
    assert "The job never started (CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY)" in body
    assert "raise the region's EC2 vCPU quota" in body
    assert "widen instance_types" in body and "set spot: false" in body
    assert sb.recipients(mails[0]) == ["me@example.com"]
    # the blocked queue was reported to the audit queue the ops alarm counts
    assert [e["detail-type"] for e in blocked] == ["Batch Job Queue Blocked"]
    assert blocked[0]["detail"]["statusReason"] == NO_CAPACITY


def test_reason_the_time_limit_cannot_cancel_waits_without_email(sb: Sandbox, scene: Path) -> None:
    """SERVICE_ROLE_PERMISSIONS is not cancellable (AWS): the job stays RUNNABLE, as in Batch,
    and only the blocked-queue alarm tells ops."""
    reason = "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS - Batch service role"
    job, blocked = upload_held(sb, scene, "input/acme/role.tif", reason)
    assert job.status == "RUNNABLE"
    assert not [m for m in sb.messages() if "role.tif" in m.subject]
    assert [e["detail"]["statusReason"] for e in blocked] == [reason]


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ('input/acme/say "hi".tif', 'a double quote (")'),
        ("input/acme/C:\\scans\\a.tif", "a backslash (\\)"),
        ("input/acme/tab\there.tif", "a tab"),
        ('input/acme/say "hi".vrt', 'a double quote (")'),  # VRT keys are checked too
    ],
)
def test_key_the_event_cannot_carry_gets_one_rejection(
    sb: Sandbox, scene: Path, key: str, named: str
) -> None:
    before = len(sb.messages())
    sb.upload(scene, key)
    sb.run_until_idle()
    new = sb.messages()[before:]
    assert len(new) == 1, [m.subject for m in new]
    assert new[0].subject.endswith(" rejected (unsupported name)")
    assert f"The file name contains {named}" in flat(new[0].body)
    assert new[0].attributes["status"] == "rejected"


def test_sandbox_reads_the_queue_time_limits_from_the_template(sb: Sandbox) -> None:
    (limits,) = sb.runner.time_limits.values()
    assert limits == {
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY": 3600,
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": 3600,
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": 3600,
    }
