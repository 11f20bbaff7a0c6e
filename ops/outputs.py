"""The deployed stack's outputs (`BucketName`, `TopicArn`, ...), read from CloudFormation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class StackNotFound(LookupError):
    """The stack is not deployed in this account and region."""


@dataclass(frozen=True)
class StackOutputs:
    bucket: str
    topic_arn: str
    ops_topic_arn: str
    job_queue_arn: str | None = None
    link_url: str | None = None

    @classmethod
    def from_mapping(cls, outputs: Mapping[str, str]) -> StackOutputs:
        """From `{"BucketName": ..., "TopicArn": ..., ...}` (the stack's CfnOutputs)."""
        return cls(
            bucket=outputs["BucketName"],
            topic_arn=outputs["TopicArn"],
            ops_topic_arn=outputs["OpsTopicArn"],
            job_queue_arn=outputs.get("JobQueueArn"),
            link_url=outputs.get("LinkUrl"),
        )


def stack_outputs(cloudformation: Any, stack_name: str) -> StackOutputs:
    """DescribeStacks of `stack_name`; `StackNotFound` when it is not deployed."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:
        if "does not exist" in str(exc):
            raise StackNotFound(stack_name) from None
        raise
    if not stacks:
        raise StackNotFound(stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackOutputs.from_mapping(outputs)
