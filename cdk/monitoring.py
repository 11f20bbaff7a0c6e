"""Ops topic and alarms: dead letters, failed jobs, Lambda errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id
from cdk.patterns import job_queue_blocked_pattern, job_state_pattern
from cdk.queues import encrypted_queue


def allow_alarms_to_publish(topic: sns.Topic) -> None:
    """Let this account's CloudWatch alarms publish to `topic`.

    `enforce_ssl` gives the topic a policy of its own (the TLS-only deny), which replaces
    SNS's default policy; without this statement no alarm action can publish ("the topic
    policy must allow cloudwatch.amazonaws.com to publish", scoped with aws:SourceAccount and
    aws:SourceArn as the confused-deputy guidance asks).
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
    https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
    """
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowThisAccountsAlarmsToPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:"
                    f"{Aws.ACCOUNT_ID}:alarm:*"
                },
            },
        )
    )


class Monitoring(Construct):
    """Every alarm notifies the ops topic (customer-key encrypted, TLS only)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        ops_email: str | None,
        dead_letter_queues: Sequence[sqs.IQueue],
        events_dead_letter_queue: sqs.IQueue,
        functions: Mapping[str, lambda_.IFunction],
        job_queues: Sequence[batch.IJobQueue],
        failed_jobs_threshold: int,
        runnable_timeout_minutes: int = 60,
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "OpsTopic", display_name="rasterdrop ops", master_key=key, enforce_ssl=True
        )
        fix_logical_id(self.topic, C.ID_OPS_TOPIC)
        allow_alarms_to_publish(self.topic)
        if ops_email:
            self.topic.add_subscription(subs.EmailSubscription(ops_email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []

        def alarm(id_: str, metric: cw.IMetric, threshold: int, description: str) -> None:
            a = cw.Alarm(
                self,
                id_,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            self.alarms.append(a)

        period = Duration.minutes(C.ALARM_PERIOD_MINUTES)
        for queue in dead_letter_queues:
            name = queue.node.id
            alarm(
                f"{name}DeadLetters",
                queue.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
                1,
                f"rasterdrop: messages in the {name} dead-letter queue (lost events/invocations)",
            )
        for name, fn in functions.items():
            alarm(
                f"{name}Errors",
                fn.metric_errors(period=period, statistic="Sum"),
                1,
                f"rasterdrop: {name} Lambda raised errors",
            )
        arns = [q.job_queue_arn for q in job_queues]
        # Failed jobs: every FAILED job of our queues is copied to an audit queue
        # (ops can read the reasons there); the alarm counts them per hour.
        self.failed_jobs_queue, self.failed_jobs_rule = self._audit(
            "FailedJobsQueue", "FailedJobsQueue", "JobFailed", C.ID_JOB_FAILED_RULE,
            "rasterdrop: predict/train job FAILED -> audit queue and alarm",
            job_state_pattern(arns, ["FAILED"]), events_dead_letter_queue,
        )  # fmt: skip
        alarm(
            "FailedJobs",
            self.failed_jobs_queue.metric_number_of_messages_sent(
                period=Duration.minutes(C.FAILED_JOBS_PERIOD_MINUTES), statistic="Sum"
            ),
            failed_jobs_threshold,
            f"rasterdrop: {failed_jobs_threshold}+ Batch jobs failed within an hour",
        )
        # Jobs waiting in RUNNABLE: Batch emits "Batch Job Queue Blocked" when the job at the
        # head of a queue cannot be placed (quota, instance types, max_vcpus, service role),
        # the reason in `statusReason`. Each event is kept in an audit queue and alarms ops:
        # the reasons the queue's time limit cannot cancel (SERVICE_ROLE_PERMISSIONS, ...)
        # would otherwise wait forever, the others warn before the job is cancelled.
        # https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html
        self.blocked_jobs_queue, self.blocked_jobs_rule = self._audit(
            "BlockedJobsQueue", C.ID_BLOCKED_JOBS_QUEUE, "JobQueueBlocked",
            C.ID_JOB_QUEUE_BLOCKED_RULE,
            "rasterdrop: a job is stuck RUNNABLE at the head of a queue -> alarm",
            job_queue_blocked_pattern(arns), events_dead_letter_queue,
        )  # fmt: skip
        alarm(
            "BlockedJobs",
            self.blocked_jobs_queue.metric_number_of_messages_sent(period=period, statistic="Sum"),
            1,
            "rasterdrop: a Batch job is stuck RUNNABLE (vCPU quota, instance types, max_vcpus "
            "or the Batch service role); capacity reasons are cancelled after "
            f"{runnable_timeout_minutes} min, the uploader gets a no_capacity email. Read the "
            "reason in the BlockedJobsQueue messages or run `make doctor`.",
        )

    def _audit(
        self,
        queue_id: str,
        queue_logical_id: str,
        rule_id: str,
        rule_logical_id: str,
        description: str,
        pattern: events.EventPattern,
        dead_letter_queue: sqs.IQueue,
    ) -> tuple[sqs.Queue, events.Rule]:
        """An encrypted audit queue fed by a rule (retried, then dead-lettered)."""
        queue = encrypted_queue(self, queue_id, logical_id=queue_logical_id)
        rule = events.Rule(self, rule_id, description=description, event_pattern=pattern)
        rule.add_target(
            targets.SqsQueue(
                queue,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=C.EVENT_RETRY_ATTEMPTS,
                max_event_age=Duration.hours(C.EVENT_MAX_AGE_HOURS),
            )
        )
        fix_logical_id(rule, rule_logical_id)
        return queue, rule
