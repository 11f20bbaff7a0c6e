"""The two handlers that publish to the topic: notify (job finished) and reject (oversize)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.functions import python_handler
from cdk.naming import list_prefix_conditions, object_arns
from cdk.notifications.environment import HandlerRuntime, HandlerSettings


class NotificationSenders(Construct):
    """Notify and reject functions (async, retried, dead-lettered) and least-privilege grants:
    notify reads results, run reports and its markers and signs links; reject only its markers.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        topic: sns.ITopic,
        secret: secretsmanager.ISecret,
        link_url: str,
        runtime: HandlerRuntime,
        settings: HandlerSettings,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, id)
        environment = {
            **settings.environment(),
            "RASTERDROP_TOPIC_ARN": topic.topic_arn,
            "RASTERDROP_LINK_BASE_URL": link_url,
        }

        def sender(id_: str, logical_id: str, handler: str, description: str) -> lambda_.Function:
            return python_handler(
                self, id_, logical_id=logical_id, handler=handler, description=description,
                code=runtime.code, layer=runtime.layer, environment=environment,
                log_retention=runtime.log_retention, async_dead_letter_queue=dead_letter_queue,
            )  # fmt: skip

        self.notify_function = sender(
            "Notify",
            C.ID_NOTIFY_FUNCTION,
            C.HANDLER_NOTIFY,
            "rasterdrop: Batch job finished -> one SNS message with signed links",
        )
        self.reject_function = sender(
            "Reject",
            C.ID_REJECT_FUNCTION,
            C.HANDLER_REJECT,
            "rasterdrop: oversize upload -> rejection notice, no compute",
        )
        self._grant(bucket.bucket_arn, topic, secret)

    def _grant(self, arn: str, topic: sns.ITopic, secret: secretsmanager.ISecret) -> None:
        notify, reject = self.notify_function, self.reject_function
        notify.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadResultsRunReportsAndMarkers",
                actions=["s3:GetObject"],
                resources=[
                    *object_arns(arn, C.OUTPUT_PREFIX, C.NOTIFIED_PREFIX),
                    f"{arn}/{C.MODELS_PREFIX}*/{C.RUNS_SEGMENT}*",
                ],
            )
        )
        notify.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListSoMissingObjectsAre404",
                actions=["s3:ListBucket"],
                resources=[arn],
                conditions=list_prefix_conditions(
                    C.OUTPUT_PREFIX, C.MODELS_PREFIX, C.NOTIFIED_PREFIX
                ),
            )
        )
        # reject: only its exactly-once markers (no results, no models).
        reject.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadMarkers",
                actions=["s3:GetObject"],
                resources=object_arns(arn, C.NOTIFIED_PREFIX),
            )
        )
        reject.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListMarkersSoMissingOnesAre404",
                actions=["s3:ListBucket"],
                resources=[arn],
                conditions=list_prefix_conditions(C.NOTIFIED_PREFIX),
            )
        )
        for fn in (notify, reject):
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="WriteAndReleaseMarkers",
                    actions=["s3:PutObject", "s3:DeleteObject"],
                    resources=object_arns(arn, C.NOTIFIED_PREFIX),
                )
            )
            topic.grant_publish(fn)
        secret.grant_read(notify)  # reject signs no links
