"""The data bucket (EventBridge notifications on) and its access-log bucket."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id


def lifecycle_rules(
    *,
    partial_retention_days: int,
    notified_retention_days: int,
    output_retention_days: int | None,
) -> list[s3.LifecycleRule]:
    """Abort stale multipart uploads, expire checkpoints, markers and old versions."""
    rules = [
        s3.LifecycleRule(
            id="abort-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload_after=Duration.days(C.ABORT_MULTIPART_DAYS),
        ),
        s3.LifecycleRule(
            id="expire-noncurrent-versions",
            noncurrent_version_expiration=Duration.days(C.NONCURRENT_VERSION_DAYS),
            expired_object_delete_marker=True,
        ),
        s3.LifecycleRule(
            id="expire-partial-checkpoints",
            prefix=C.PARTIAL_PREFIX,
            expiration=Duration.days(partial_retention_days),
            noncurrent_version_expiration=Duration.days(1),
        ),
        s3.LifecycleRule(
            id="expire-notified-markers",
            prefix=C.NOTIFIED_PREFIX,
            expiration=Duration.days(notified_retention_days),
            noncurrent_version_expiration=Duration.days(1),
        ),
    ]
    if output_retention_days is not None:
        rules.append(
            s3.LifecycleRule(
                id="expire-outputs",
                prefix=C.OUTPUT_PREFIX,
                expiration=Duration.days(output_retention_days),
            )
        )
    return rules


class Storage(Construct):
    """One versioned, encrypted, private bucket plus a separate server-access-log bucket."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: RemovalPolicy,
        auto_delete_objects: bool,
        partial_retention_days: int,
        notified_retention_days: int,
        output_retention_days: int | None,
        access_log_retention_days: int,
        allowed_uploader_arns: Sequence[str],
    ) -> None:
        super().__init__(scope, id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery requires SSE-S3
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,  # bucket policy, no ACL
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(access_log_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
        )
        fix_logical_id(self.access_logs, C.ID_ACCESS_LOG_BUCKET)
        self.bucket = s3.Bucket(
            self,
            "Data",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=lifecycle_rules(
                partial_retention_days=partial_retention_days,
                notified_retention_days=notified_retention_days,
                output_retention_days=output_retention_days,
            ),
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
        )
        fix_logical_id(self.bucket, C.ID_DATA_BUCKET)
        # EventBridge notifications set directly on the bucket resource: the L2's
        # event_bridge_enabled=True would add a custom-resource Lambda to do the same.
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        if allowed_uploader_arns:
            self.bucket.add_to_resource_policy(
                upload_restriction(self.bucket.bucket_arn, allowed_uploader_arns)
            )


def upload_restriction(bucket_arn: str, allowed: Sequence[str]) -> iam.PolicyStatement:
    """Deny writes to `input/` by anyone whose principal ARN is not in `allowed`."""
    return iam.PolicyStatement(
        sid="OnlyAllowedUploadersWriteInput",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["s3:PutObject"],
        resources=[f"{bucket_arn}/{C.INPUT_PREFIX}*"],
        conditions={"ArnNotLike": {"aws:PrincipalArn": list(allowed)}},
    )
