"""Encrypted SQS dead-letter queues for EventBridge targets and async Lambda invocations."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id


def encrypted_queue(scope: Construct, id: str, *, logical_id: str) -> sqs.Queue:
    """SSE-SQS encrypted queue, TLS enforced, 14 days retention.

    SQS-managed SSE (not a customer key) so EventBridge and Lambda can deliver
    without a key policy; the queues only ever hold event envelopes.
    """
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(C.DLQ_RETENTION_DAYS),
        removal_policy=RemovalPolicy.DESTROY,
    )
    fix_logical_id(queue, logical_id)
    return queue


class DeadLetterQueues(Construct):
    """`events`: undeliverable EventBridge events; `handlers`: failed async Lambda invocations."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.events = encrypted_queue(self, "Events", logical_id=C.ID_EVENTS_DLQ)
        self.handlers = encrypted_queue(self, "Handlers", logical_id=C.ID_HANDLER_DLQ)
        self.all = (self.events, self.handlers)
