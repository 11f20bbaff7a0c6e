"""Notifications: topic and link secret, link endpoint, notify/reject senders, job-state rule.

`Notifications` only composes the four units; each is a construct of its own
(`topic`, `link`, `senders`, `job_state`) that can be built in a bare `Stack()`.

Logical ids: the units were children of this construct before they became
constructs themselves. CDK's hashed ids skip path parts named "Default", so
the senders sit at "Default" and each unit's main resource is its "Default"
child; the link function's role, policy and log group, which cannot keep their
ids that way, are pinned (`cdk.constants.ID_LINK_*`). The template is the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_batch as batch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.notifications.environment import HandlerRuntime, HandlerSettings, powertools_layer_arn
from cdk.notifications.job_state import JobStateRule
from cdk.notifications.link import LinkEndpoint
from cdk.notifications.senders import NotificationSenders
from cdk.notifications.topic import NotificationTopic


class Notifications(Construct):
    """Everything between "a job finished" (or "an upload is too big") and an email."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        handlers_directory: str,
        job_queues: Sequence[batch.IJobQueue],
        dead_letter_queues: tuple[sqs.IQueue, sqs.IQueue],
        emails: Sequence[str],
        tenant_routing: Mapping[str, Sequence[str]],
        link_ttl_days: int,
        max_input_bytes: int,
        output_retention_days: int | None,
        log_retention: logs.RetentionDays,
        powertools_layer_version: int,
        removal_policy: RemovalPolicy,
        link_reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        events_dlq, handlers_dlq = dead_letter_queues
        topic = NotificationTopic(
            self,
            "Topic",
            key=key,
            emails=emails,
            tenant_routing=tenant_routing,
            removal_policy=removal_policy,
        )
        self.topic, self.secret = topic.topic, topic.secret
        self.layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", powertools_layer_arn(self, powertools_layer_version)
        )
        runtime = HandlerRuntime(
            code=lambda_.Code.from_asset(
                handlers_directory, exclude=list(C.HANDLER_ASSET_EXCLUDES)
            ),
            layer=self.layer,
            log_retention=log_retention,
        )
        settings = HandlerSettings(
            bucket_name=bucket.bucket_name,
            secret_arn=self.secret.secret_arn,
            link_ttl_days=link_ttl_days,
            max_input_bytes=max_input_bytes,
            output_retention_days=output_retention_days,
        )
        link = LinkEndpoint(
            self,
            "Link",
            bucket=bucket,
            secret=self.secret,
            runtime=runtime,
            settings=settings,
            reserved_concurrency=link_reserved_concurrency,
        )
        self.link_function, self.link_url = link.function, link.url
        senders = NotificationSenders(
            self,
            "Default",  # keeps the ids of the functions' roles, logs and permissions
            bucket=bucket,
            topic=self.topic,
            secret=self.secret,
            link_url=self.link_url.url,
            runtime=runtime,
            settings=settings,
            dead_letter_queue=handlers_dlq,
        )
        self.notify_function = senders.notify_function
        self.reject_function = senders.reject_function
        # name -> function: the alarms are named after these (NotifyErrors, ...).
        self.functions: dict[str, lambda_.IFunction] = {
            "Notify": self.notify_function,
            "Reject": self.reject_function,
            "Link": self.link_function,
        }
        self.job_state_rule = JobStateRule(
            self,
            "JobState",
            job_queues=job_queues,
            function=self.notify_function,
            dead_letter_queue=events_dlq,
        ).rule
