"""`make smoke`: one real upload through the deployed stack, timed, then cleaned up.

1. A temporary SQS queue is subscribed to the notification topic (the only way a script can
   read what the emails say; raw delivery off, so the SNS envelope carries the subject).
2. A small sample scene is uploaded to `input/smoke/<run>.tif`.
3. It waits for `output/smoke/<run>/summary.json` (or `error.json`) and for the message.
4. It prints the time from upload to result and to the message, and removes everything it
   made: the input (every version), the outputs, the subscription and the queue.

Exit status 0 only when the result is `succeeded` and its message arrived; otherwise the
reason (`error.json`'s message, the failure email's subject, or what timed out).
The clock and the wait are arguments, so the tests drive it against the sandbox.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.outputs import StackOutputs

SMOKE_PREFIX = "input/smoke/"


class SmokeFailed(RuntimeError):
    """The smoke test did not end in a succeeded result and its message."""


@dataclass
class SmokeResult:
    key: str
    result_s: float
    message_s: float
    subject: str
    summary: dict[str, Any] = field(default_factory=dict)

    def report(self) -> str:
        return (
            f"smoke OK: {self.key} -> summary.json in {self.result_s:.1f} s, "
            f"message in {self.message_s:.1f} s ({self.subject!r})"
        )


@dataclass
class Probe:
    """A temporary queue subscribed to the topic: what the email subscribers receive."""

    sns: Any
    sqs: Any
    topic_arn: str
    queue_url: str = ""
    subscription_arn: str = ""

    def open(self, name: str) -> Probe:
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(
            QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)}
        )
        self.subscription_arn = self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        return self

    def messages(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        out = []
        for m in got:
            out.append(json.loads(m["Body"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return out

    def close(self) -> None:
        if self.subscription_arn:
            self.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
        if self.queue_url:
            self.sqs.delete_queue(QueueUrl=self.queue_url)


def sample_scene(path: Path, *, size: int = 256) -> Path:
    """A small scene shaped like the default model's input (4 bands, uint16)."""
    from batch_image.synthetic.scene import make_sample

    return Path(make_sample(path, width=size, height=size, seed=7).scene)


def smoke(
    s3: Any,
    sns: Any,
    sqs: Any,
    outputs: StackOutputs,
    scene: Path,
    *,
    timeout_s: float = 1800.0,
    wait: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    run_id: str | None = None,
) -> SmokeResult:
    """Upload `scene`, wait for its result and message, clean up; `SmokeFailed` otherwise."""
    run = run_id or uuid.uuid4().hex[:12]
    name = f"smoke-{run}"
    key = f"{SMOKE_PREFIX}{name}.tif"
    results = f"output/smoke/{name}/"
    probe = Probe(sns, sqs, outputs.topic_arn).open(f"rasterdrop-{name}")
    try:
        start = clock()
        s3.put_object(Bucket=outputs.bucket, Key=key, Body=Path(scene).read_bytes())
        return _wait(s3, probe, outputs.bucket, key, results, start, timeout_s, wait, clock)
    finally:
        probe.close()
        _clean(s3, outputs.bucket, [key, results])


def _wait(s3, probe, bucket, key, results, start, timeout_s, wait, clock) -> SmokeResult:
    result_s = message_s = None
    summary: dict[str, Any] = {}
    subject = ""
    file_name = key.rsplit("/", 1)[-1]
    while clock() - start < timeout_s:
        if result_s is None:
            summary_doc = _get_json(s3, bucket, results + "summary.json")
            error_doc = _get_json(s3, bucket, results + "error.json")
            if error_doc is not None:
                raise SmokeFailed(
                    f"the job failed: {error_doc.get('category')}/{error_doc.get('code')}: "
                    f"{error_doc.get('message')}"
                )
            if summary_doc is not None:
                result_s, summary = clock() - start, summary_doc
        for envelope in probe.messages():
            if file_name in (envelope.get("Subject") or ""):
                subject = envelope["Subject"]
                message_s = clock() - start
        if subject and not subject.endswith(" ready"):
            raise SmokeFailed(f"the notification says: {subject}")
        if result_s is not None and message_s is not None:
            return SmokeResult(key, result_s, message_s, subject, summary)
        wait(5.0)
    missing = "summary.json" if result_s is None else "the notification"
    raise SmokeFailed(f"timed out after {timeout_s:.0f} s waiting for {missing} of {key}")


def _get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:
        return None
    return json.loads(body)


def _clean(s3: Any, bucket: str, prefixes: list[str]) -> None:
    """Every version of what this run made: the input and its outputs. (Its exactly-once
    marker under `notified/` is named by a hash and expires with the lifecycle rule.)"""
    for prefix in prefixes:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
