"""Ops topic and alarms: dead letters, failed jobs, Lambda errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id
from cdk.patterns import failed_job_pattern
from cdk.queues import encrypted_queue


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
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "OpsTopic", display_name="rasterdrop ops", master_key=key, enforce_ssl=True
        )
        fix_logical_id(self.topic, C.ID_OPS_TOPIC)
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
        # Failed jobs: every FAILED job of our queues is copied to an audit queue
        # (ops can read the reasons there); the alarm counts them per hour.
        self.failed_jobs_queue = encrypted_queue(
            self, "FailedJobsQueue", logical_id="FailedJobsQueue"
        )
        self.failed_jobs_rule = events.Rule(
            self,
            "JobFailed",
            description="rasterdrop: predict/train job FAILED -> audit queue and alarm",
            event_pattern=failed_job_pattern([q.job_queue_arn for q in job_queues]),
        )
        self.failed_jobs_rule.add_target(
            targets.SqsQueue(
                self.failed_jobs_queue,
                dead_letter_queue=events_dead_letter_queue,
                retry_attempts=C.EVENT_RETRY_ATTEMPTS,
                max_event_age=Duration.hours(C.EVENT_MAX_AGE_HOURS),
            )
        )
        fix_logical_id(self.failed_jobs_rule, C.ID_JOB_FAILED_RULE)
        alarm(
            "FailedJobs",
            self.failed_jobs_queue.metric_number_of_messages_sent(
                period=Duration.minutes(C.FAILED_JOBS_PERIOD_MINUTES), statistic="Sum"
            ),
            failed_jobs_threshold,
            f"rasterdrop: {failed_jobs_threshold}+ Batch jobs failed within an hour",
        )
