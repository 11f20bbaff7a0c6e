"""The rule that hands every finished Batch job of this stack to the notify function."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_batch as batch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id
from cdk.patterns import job_state_pattern

FINISHED = ("SUCCEEDED", "FAILED")


class JobStateRule(Construct):
    """SUCCEEDED/FAILED of the given queues -> `function`, retried, then dead-lettered."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        job_queues: Sequence[batch.IJobQueue],
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, id)
        # "Default": the rule's Lambda permission and DLQ policy statement keep their ids.
        self.rule = events.Rule(
            self,
            "Default",
            description="rasterdrop: predict/train job SUCCEEDED or FAILED -> notify",
            event_pattern=job_state_pattern([q.job_queue_arn for q in job_queues], FINISHED),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=C.EVENT_RETRY_ATTEMPTS,
                max_event_age=Duration.hours(C.EVENT_MAX_AGE_HOURS),
            )
        )
        fix_logical_id(self.rule, C.ID_JOB_STATE_RULE)
