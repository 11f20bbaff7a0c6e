"""The link endpoint: a public function URL that turns a signed link into a short S3 URL."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk import constants as C
from cdk.functions import python_handler
from cdk.naming import fix_logical_id, list_prefix_conditions, object_arns
from cdk.notifications.environment import HandlerRuntime, HandlerSettings


class LinkEndpoint(Construct):
    """Link function + its URL (auth NONE: the HMAC token in the link is the authorization);
    it may read `output/` and the link secret, nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        secret: secretsmanager.ISecret,
        runtime: HandlerRuntime,
        settings: HandlerSettings,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        # "Default": the URL and the invoke permissions (children of the function) keep
        # the logical ids they had under `Notifications`; `_keep_sibling_ids` does the rest.
        self.function = python_handler(
            self,
            "Default",
            logical_id=C.ID_LINK_FUNCTION,
            handler=C.HANDLER_LINK,
            description="rasterdrop: verify a signed link and redirect to a short-lived S3 URL",
            code=runtime.code,
            layer=runtime.layer,
            environment=settings.link_environment(),
            log_retention=runtime.log_retention,
            timeout_seconds=C.LINK_LAMBDA_TIMEOUT_SECONDS,
            reserved_concurrency=reserved_concurrency,
        )
        self._keep_sibling_ids()
        self.url = self.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )
        self._grant(bucket.bucket_arn, secret)

    def _keep_sibling_ids(self) -> None:
        """Role, policy and log group are siblings of the function (`python_handler`), so
        "Default" cannot hide this level for them: their old ids are pinned instead."""
        role = self.node.find_child("DefaultRole")
        fix_logical_id(role, C.ID_LINK_ROLE)
        fix_logical_id(role.node.find_child("DefaultPolicy"), C.ID_LINK_ROLE_POLICY)
        fix_logical_id(self.node.find_child("DefaultLogs"), C.ID_LINK_LOGS)

    def _grant(self, arn: str, secret: secretsmanager.ISecret) -> None:
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadResults",
                actions=["s3:GetObject"],
                resources=object_arns(arn, C.OUTPUT_PREFIX),
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListResultsSoMissingObjectsAre404",
                actions=["s3:ListBucket"],
                resources=[arn],
                conditions=list_prefix_conditions(C.OUTPUT_PREFIX),
            )
        )
        secret.grant_read(self.function)
