"""The one stack: storage, network, compute, notifications, rules, monitoring."""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk import constants as C
from cdk.api import Api
from cdk.api import names as API
from cdk.api.functions import ApiHandlerProps
from cdk.assessment import labelling_environment, postprocess_environment
from cdk.compute import Compute, JobSize, job_environment, root_volume_gib
from cdk.config import RasterdropConfig
from cdk.monitoring import Monitoring
from cdk.naming import fix_logical_id
from cdk.network import Network
from cdk.notifications import Notifications
from cdk.notifications.environment import HandlerSettings
from cdk.queues import DeadLetterQueues
from cdk.rules import Rules
from cdk.storage import Storage

_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
    30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
    150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS", 1827: "FIVE_YEARS",
}  # fmt: skip


def retention_days(days: int) -> logs.RetentionDays:
    """CloudWatch Logs retention enum for a validated number of days."""
    return getattr(logs.RetentionDays, _RETENTION[days])


class RasterdropStack(Stack):
    """Everything rasterdrop needs in one account and region."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: RasterdropConfig,
        handlers_directory: str,
        batch_image_directory: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        Tags.of(self).add("project", C.PROJECT)
        cfg = config
        removal = RemovalPolicy.DESTROY if cfg.destroy_on_delete else RemovalPolicy.RETAIN
        retention = retention_days(cfg.log_retention_days)

        self.storage = Storage(
            self,
            "Storage",
            removal_policy=removal,
            auto_delete_objects=cfg.destroy_on_delete,
            partial_retention_days=cfg.partial_retention_days,
            notified_retention_days=cfg.notified_retention_days,
            output_retention_days=cfg.output_retention_days,
            access_log_retention_days=cfg.access_log_retention_days,
            allowed_uploader_arns=(
                # the API's presigned POSTs are signed by its uploads role: let them through
                (*cfg.allowed_uploader_arns, API.uploads_role_arn(cfg.stack_name))
                if cfg.allowed_uploader_arns and cfg.api
                else cfg.allowed_uploader_arns
            ),
        )
        bucket = self.storage.bucket
        self.dead_letters = DeadLetterQueues(self, "DeadLetters")
        self.network = Network(
            self,
            "Network",
            vpc_id=cfg.vpc_id,
            subnet_type=cfg.vpc_subnet_type,
            log_retention=retention,
        )
        large = (
            JobSize(cfg.large_job_vcpus, cfg.large_job_memory_mib, cfg.job_timeout_minutes)
            if cfg.large_jobs_enabled
            else None
        )
        self.compute = Compute(
            self,
            "Compute",
            vpc=self.network.vpc,
            subnets=self.network.subnets,
            security_group=self.network.security_group,
            bucket=bucket,
            image_directory=batch_image_directory,
            instance_types=cfg.instance_types,
            spot=cfg.spot,
            max_vcpus=cfg.max_vcpus,
            standard=JobSize(cfg.job_vcpus, cfg.job_memory_mib, cfg.job_timeout_minutes),
            large=large,
            train=JobSize(cfg.train_vcpus, cfg.train_memory_mib, cfg.train_timeout_minutes),
            attempts=cfg.job_attempts,
            environment=job_environment(
                bucket_name=bucket.bucket_name,
                model_name=cfg.model_name,
                max_input_bytes=cfg.max_input_bytes,
                max_pixels=cfg.max_pixels,
                attempts=cfg.job_attempts,
            )
            | postprocess_environment(
                mmu_pixels=cfg.mmu_pixels,
                mmu_connectivity=cfg.mmu_connectivity,
                class_polygons=cfg.class_polygons,
                accuracy_sample_n=cfg.accuracy_sample_n,
                probabilities=cfg.probabilities,
            )
            | labelling_environment(
                review_points=cfg.review_points,
                train_promote=cfg.train_promote,
                promote_tolerance=cfg.promote_tolerance,
            ),
            log_retention=retention,
            runnable_timeout_minutes=cfg.runnable_timeout_minutes,
            shard_pixels=cfg.shard_pixels,
            root_volume_size_gib=root_volume_gib(
                max_vcpus=cfg.max_vcpus,
                smallest_job_vcpus=min(cfg.job_vcpus, cfg.large_job_vcpus, cfg.train_vcpus),
                max_input_bytes=cfg.max_input_bytes,
                max_pixels=cfg.max_pixels,
            ),
        )
        self.topic_key = kms.Key(
            self,
            "TopicKey",
            description="rasterdrop: encrypts the notification and ops SNS topics",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        fix_logical_id(self.topic_key, C.ID_TOPIC_KEY)
        # CloudWatch alarms publish to the encrypted ops topic.
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.notifications = Notifications(
            self,
            "Notifications",
            bucket=bucket,
            key=self.topic_key,
            handlers_directory=handlers_directory,
            job_queues=self.compute.queues,
            dead_letter_queues=(self.dead_letters.events, self.dead_letters.handlers),
            emails=cfg.notification_emails,
            tenant_routing=cfg.notification_routing,
            link_ttl_days=cfg.link_ttl_days,
            max_input_bytes=cfg.max_input_bytes,
            output_retention_days=cfg.output_retention_days,
            log_retention=retention,
            powertools_layer_version=cfg.powertools_layer_version,
            removal_policy=removal,
            link_reserved_concurrency=cfg.link_reserved_concurrency,
        )
        self.rules = Rules(
            self,
            "Rules",
            bucket_name=bucket.bucket_name,
            job_queue=self.compute.job_queue,
            predict_job=self.compute.predict_job,
            predict_large_job=self.compute.predict_large_job,
            train_job=self.compute.train_job,
            assess_job=self.compute.assess_job,
            reject_function=self.notifications.reject_function,
            dead_letter_queue=self.dead_letters.events,
            max_input_bytes=cfg.max_input_bytes,
            large_threshold_bytes=cfg.large_job_threshold_bytes,
        )
        self.api = self._api(cfg, handlers_directory, retention) if cfg.api else None
        api_functions = self.api.functions.all if self.api else {}
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            key=self.topic_key,
            ops_email=cfg.ops_email,
            dead_letter_queues=self.dead_letters.all,
            events_dead_letter_queue=self.dead_letters.events,
            functions={**self.notifications.functions, **api_functions},
            job_queues=self.compute.queues,
            failed_jobs_threshold=cfg.failed_jobs_alarm_threshold,
            runnable_timeout_minutes=cfg.runnable_timeout_minutes,
        )
        CfnOutput(self, "BucketName", value=bucket.bucket_name, description="Upload bucket")
        CfnOutput(
            self,
            "UploadCommand",
            value=f"aws s3 cp scene.tif s3://{bucket.bucket_name}/{C.INPUT_PREFIX}",
            description="Example: upload a GeoTIFF to get a prediction by email",
        )
        CfnOutput(
            self,
            "TopicArn",
            value=self.notifications.topic.topic_arn,
            description="Notification topic (subscribe more addresses here)",
        )
        CfnOutput(self, "OpsTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "LinkUrl", value=self.notifications.link_url.url)
        CfnOutput(self, "JobQueueArn", value=self.compute.job_queue.job_queue_arn)

    def _api(self, cfg: RasterdropConfig, handlers_directory: str, retention) -> Api:
        """The tenants' API (`cdk/api/`): the handlers' code and layer, the notifier's env."""
        settings = HandlerSettings(
            bucket_name=self.storage.bucket.bucket_name,
            secret_arn=self.notifications.secret.secret_arn,
            link_ttl_days=cfg.link_ttl_days,
            max_input_bytes=cfg.max_input_bytes,
            output_retention_days=cfg.output_retention_days,
        )
        return Api(
            self,
            "Api",
            bucket=self.storage.bucket,
            link_secret=self.notifications.secret,
            handlers=ApiHandlerProps(
                code=lambda_.Code.from_asset(
                    handlers_directory, exclude=list(C.HANDLER_ASSET_EXCLUDES)
                ),
                layer=self.notifications.layer,
                log_retention=retention,
                environment={
                    **settings.environment(),
                    "RASTERDROP_LINK_BASE_URL": self.notifications.link_url.url,
                },
                model_name=cfg.model_name,
                upload_url_seconds=cfg.api_upload_url_seconds,
                token_parameter_prefix=API.token_parameter_prefix(cfg.stack_name),
            ),
            tenants=cfg.tenants,
            waf=cfg.api_waf,
            waf_rate_per_5min=cfg.api_waf_rate_per_5min,
        )
