"""The event bus on its own: matching, target input, Lambda retries and dead letters, job-state
events, with recording stand-ins for the AWS clients (no server, no template synth)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox import stack as st
from sandbox.batch import BatchRunner, Job
from sandbox.bus import EventBus, async_retries, render_input, summary
from sandbox.errors import SandboxError
from sandbox.lambdas import Invocation
from sandbox.retry import RetryStrategy

DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:handler-dlq"
QUEUE_ARN = "arn:aws:batch:eu-west-1:123456789012:job-queue/q"
EVENT = {
    "id": "e-1",
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {"object": {"key": "in/a.tif", "size": 5}},
}


class RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_message(self, *, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append((QueueUrl, MessageBody))

    def get_queue_url(self, *, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"url/{QueueName}"}


class FailingLambdas:
    """Every invocation raises, as a handler with a bug would."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def invoke(self, fn: st.Function, event: dict[str, Any]) -> Invocation:
        self.calls.append(fn.logical_id)
        return Invocation(fn.logical_id, event, error=RuntimeError("boom"))


def sqs_target(**kw: Any) -> st.Target:
    return st.Target(id="T0", kind="sqs", resource="Audit", arn="arn:aws:sqs:::audit", **kw)


def bus(tmp_path: Path, rules: list[st.Rule], **kw: Any) -> EventBus:
    runner = BatchRunner(
        entrypoint=[sys.executable, "-c", "import sys; sys.exit(0)"],
        workdir=tmp_path,
        aws_env={},
        base_env={},
        log_dir=tmp_path / "logs",
        scratch_dir=tmp_path / "scratch",
        region="eu-west-1",
        account="123456789012",
    )
    defaults: dict[str, Any] = {
        "job_definitions": {},
        "functions": {},
        "retries": {},
        "lambdas": FailingLambdas(),
        "sns": None,
        "sqs": RecordingSqs(),
        "queue_urls": {"Audit": "url/audit"},
        "job_concurrency": 1,
    }
    return EventBus(rules=rules, runner=runner, **{**defaults, **kw})


def test_matching_rules_deliver_and_the_rest_is_traced(tmp_path: Path) -> None:
    rules = [
        st.Rule("Audit", {"source": ["aws.s3"]}, (sqs_target(input_path="$.detail.object"),)),
        st.Rule("Off", {"source": ["aws.s3"]}, (sqs_target(),), enabled=False),
        st.Rule("Batch", {"source": ["aws.batch"]}, (sqs_target(),)),
    ]
    b = bus(tmp_path, rules)
    b.put(EVENT)
    b.put({**EVENT, "id": "e-2", "source": "other", "detail-type": "X"})
    b.run_until_idle(5, poll=lambda: None)
    assert b.sqs.sent == [("url/audit", json.dumps({"key": "in/a.tif", "size": 5}))]
    assert [(d.event_id, d.rule, d.outcome) for d in b.trace] == [
        ("e-1", "Audit", "queued"),
        ("e-2", None, "no rule matched"),
    ]
    assert b.trace[1].summary == "other X"


def test_a_failing_function_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    fn = st.Function("Fn", "S-Fn", "arn:fn", "x.handler", {}, dead_letter_arn=DLQ_ARN)
    target = st.Target(id="T0", kind="lambda", resource="Fn", arn="arn:fn")
    b = bus(tmp_path, [st.Rule("R", {"source": ["aws.s3"]}, (target,))], functions={"Fn": fn})
    b.retries = {"Fn": 1}
    b.put(EVENT)
    b.run_until_idle(5, poll=lambda: None)
    assert b.lambdas.calls == ["Fn", "Fn"]  # one try and MaximumRetryAttempts: 1
    ((url, body),) = b.sqs.sent
    assert url == "url/handler-dlq" and json.loads(body) == EVENT
    assert b.dead_letters == [("R", "T0", "Fn failed 2 time(s): RuntimeError('boom')")]


def test_a_job_reports_its_states_back_to_the_bus(tmp_path: Path) -> None:
    definition = st.JobDefinition(
        logical_id="Job",
        arn="arn:jd",
        name="jd",
        command=("predict",),
        environment={},
        parameters={},
        retry=RetryStrategy.from_template({"Attempts": 1}),
        timeout_s=None,
        image="i",
    )
    target = st.Target(
        id="T0",
        kind="batch",
        resource="Queue",
        arn=QUEUE_ARN,
        job_definition="Job",
        input='{"Parameters": {"key": "k"}}',
    )
    states = st.Rule("States", {"source": ["aws.batch"]}, (sqs_target(),))
    b = bus(
        tmp_path,
        [st.Rule("Submit", {"source": ["aws.s3"]}, (target,)), states],
        job_definitions={"Job": definition},
    )
    b.put(EVENT)
    b.run_until_idle(30, poll=lambda: None)
    (job,) = b.jobs
    assert isinstance(job, Job) and job.status == "SUCCEEDED"
    statuses = [json.loads(body)["detail"]["status"] for _, body in b.sqs.sent]
    assert statuses[-1] == "SUCCEEDED" and "RUNNING" in statuses


def test_a_flow_that_never_settles_is_an_error(tmp_path: Path) -> None:
    b = bus(tmp_path, [])
    with pytest.raises(SandboxError, match="did not settle"):
        b.run_until_idle(0.2, poll=lambda: b.put(EVENT))


def test_target_input_and_async_retries_from_the_template() -> None:
    assert render_input(sqs_target(input='{"fixed": 1}'), EVENT) == '{"fixed": 1}'
    assert render_input(sqs_target(input_path="$.nothing"), EVENT) == "null"
    assert json.loads(render_input(sqs_target(), EVENT)) == EVENT
    transformer = st.Transformer({"k": "$.detail.object.key"}, '{"key": <k>}')
    assert render_input(sqs_target(transformer=transformer), EVENT) == '{"key": "in/a.tif"}'
    template = {
        "Resources": {
            "Cfg": {
                "Type": "AWS::Lambda::EventInvokeConfig",
                "Properties": {"FunctionName": {"Ref": "Fn"}, "MaximumRetryAttempts": 0},
            }
        }
    }
    assert async_retries(template) == {"Fn": 0}
    assert summary(EVENT) == "s3 Object Created in/a.tif"
