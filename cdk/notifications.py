"""SNS topic, the notify / reject / link Lambdas, the link secret and the job-state rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_batch as batch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.functions import python_handler
from cdk.naming import fix_logical_id, list_prefix_conditions, object_arns


def subscriptions_by_email(
    emails: Sequence[str], tenant_routing: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...] | None]:
    """email -> tenants it is limited to (None: every message).

    SNS allows one subscription per topic and endpoint, so an address listed
    for several tenants gets one subscription filtered on all of them, and an
    address in `emails` is not filtered at all.
    """
    result: dict[str, tuple[str, ...] | None] = {email: None for email in emails}
    for tenant, addresses in tenant_routing.items():
        for email in addresses:
            if email in result and result[email] is None:
                continue
            result[email] = (*(result.get(email) or ()), tenant)
    return result


def powertools_layer_arn(version: int) -> str:
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{C.POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{C.POWERTOOLS_LAYER_PYTHON}-{C.POWERTOOLS_LAYER_ARCH}:"
        f"{version}"
    )


def job_state_pattern(queue_arns: Sequence[str], statuses: Sequence[str]) -> events.EventPattern:
    """Batch "Job State Change" of this stack's queues only."""
    return events.EventPattern(
        source=["aws.batch"],
        detail_type=["Batch Job State Change"],
        detail={"status": list(statuses), "jobQueue": list(queue_arns)},
    )


class Notifications(Construct):
    """Topic (customer-key encrypted, TLS only), subscriptions, handlers and their grants."""

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
    ) -> None:
        super().__init__(scope, id)
        events_dlq, handlers_dlq = dead_letter_queues
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="rasterdrop",
            master_key=key,
            enforce_ssl=True,
        )
        fix_logical_id(self.topic, C.ID_TOPIC)
        for email, tenants in subscriptions_by_email(emails, tenant_routing).items():
            policy = (
                None
                if tenants is None
                else {"tenant": sns.SubscriptionFilter.string_filter(allowlist=list(tenants))}
            )
            self.topic.add_subscription(subs.EmailSubscription(email, filter_policy=policy))
        self.secret = secretsmanager.Secret(
            self,
            "LinkSecret",
            description="rasterdrop: HMAC key signing the links in notification emails",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 (JSON template, not a secret)
                generate_string_key="key",
                password_length=64,
                exclude_punctuation=True,
            ),
            removal_policy=removal_policy,
        )
        fix_logical_id(self.secret, C.ID_LINK_SECRET)
        self.layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", powertools_layer_arn(powertools_layer_version)
        )
        code = lambda_.Code.from_asset(handlers_directory, exclude=list(C.HANDLER_ASSET_EXCLUDES))
        common_env = {
            "RASTERDROP_BUCKET": bucket.bucket_name,
            "RASTERDROP_INPUT_PREFIX": C.INPUT_PREFIX,
            "RASTERDROP_OUTPUT_PREFIX": C.OUTPUT_PREFIX,
            "RASTERDROP_LINK_TTL_DAYS": str(link_ttl_days),
            "RASTERDROP_LINK_SECRET_ARN": self.secret.secret_arn,
            "RASTERDROP_MAX_INPUT_BYTES": str(max_input_bytes),
            "RASTERDROP_OUTPUT_RETENTION_DAYS": str(output_retention_days or 0),
            "POWERTOOLS_SERVICE_NAME": C.POWERTOOLS_SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": C.POWERTOOLS_METRICS_NAMESPACE,
        }

        def function(
            id_: str, logical: str, handler: str, description: str, env: dict[str, str], **kw
        ) -> lambda_.Function:
            return python_handler(
                self, id_, logical_id=logical, handler=handler, description=description,
                code=code, layer=self.layer, environment=env, log_retention=log_retention, **kw,
            )  # fmt: skip

        # Link endpoint: a public function URL; the HMAC token in the URL is the auth.
        self.link_function = function(
            "Link",
            C.ID_LINK_FUNCTION,
            C.HANDLER_LINK,
            "rasterdrop: verify a signed link and redirect to a short-lived S3 URL",
            {
                k: common_env[k]
                for k in (
                    "RASTERDROP_BUCKET",
                    "RASTERDROP_OUTPUT_PREFIX",
                    "RASTERDROP_LINK_TTL_DAYS",
                    "RASTERDROP_LINK_SECRET_ARN",
                    "POWERTOOLS_SERVICE_NAME",
                    "POWERTOOLS_METRICS_NAMESPACE",
                )
            },
            timeout_seconds=C.LINK_LAMBDA_TIMEOUT_SECONDS,
        )
        self.link_url = self.link_function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )
        notify_env = {
            **common_env,
            "RASTERDROP_TOPIC_ARN": self.topic.topic_arn,
            "RASTERDROP_LINK_BASE_URL": self.link_url.url,
        }
        self.notify_function = function(
            "Notify",
            C.ID_NOTIFY_FUNCTION,
            C.HANDLER_NOTIFY,
            "rasterdrop: Batch job finished -> one SNS message with signed links",
            notify_env,
            async_dead_letter_queue=handlers_dlq,
        )
        self.reject_function = function(
            "Reject",
            C.ID_REJECT_FUNCTION,
            C.HANDLER_REJECT,
            "rasterdrop: oversize upload -> rejection notice, no compute",
            notify_env,
            async_dead_letter_queue=handlers_dlq,
        )
        self.functions = (self.notify_function, self.reject_function, self.link_function)

        arn = bucket.bucket_arn
        notify, reject, link = self.notify_function, self.reject_function, self.link_function
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
            self.topic.grant_publish(fn)
        link.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadResults",
                actions=["s3:GetObject"],
                resources=object_arns(arn, C.OUTPUT_PREFIX),
            )
        )
        link.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListResultsSoMissingObjectsAre404",
                actions=["s3:ListBucket"],
                resources=[arn],
                conditions=list_prefix_conditions(C.OUTPUT_PREFIX),
            )
        )
        for fn in (notify, link):  # reject signs no links
            self.secret.grant_read(fn)

        self.job_state_rule = events.Rule(
            self,
            "JobState",
            description="rasterdrop: predict/train job SUCCEEDED or FAILED -> notify",
            event_pattern=job_state_pattern(
                [q.job_queue_arn for q in job_queues], ["SUCCEEDED", "FAILED"]
            ),
        )
        self.job_state_rule.add_target(
            targets.LambdaFunction(
                self.notify_function,
                dead_letter_queue=events_dlq,
                retry_attempts=C.EVENT_RETRY_ATTEMPTS,
                max_event_age=Duration.hours(C.EVENT_MAX_AGE_HOURS),
            )
        )
        fix_logical_id(self.job_state_rule, C.ID_JOB_STATE_RULE)
