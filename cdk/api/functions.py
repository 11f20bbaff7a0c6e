"""The API's four Lambda functions, each with only the permissions its route needs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk import constants as C
from cdk.api import names as N
from cdk.functions import python_handler
from cdk.naming import list_prefix_conditions, object_arns


@dataclass(frozen=True)
class ApiHandlerProps:
    code: lambda_.Code
    layer: lambda_.ILayerVersion
    log_retention: logs.RetentionDays
    environment: dict[str, str]  # the notifier's variables (HandlerSettings.environment())
    model_name: str
    upload_url_seconds: int
    token_parameter_prefix: str


class ApiFunctions(Construct):
    """Authorizer (reads token records), uploads (signs POSTs into input/), results (reads
    input heads, output/, the lease, the link secret) and usage (reads usage plans)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        link_secret: secretsmanager.ISecret,
        props: ApiHandlerProps,
    ) -> None:
        super().__init__(scope, id)
        env = {
            **props.environment,
            "RASTERDROP_MODEL_NAME": props.model_name,
            "RASTERDROP_UPLOAD_URL_SECONDS": str(props.upload_url_seconds),
        }
        self.authorizer = self._fn(
            "Authorizer", N.ID_AUTHORIZER_FUNCTION, N.HANDLER_AUTHORIZER,
            "rasterdrop API: bearer token -> tenant and usage plan key",
            {"RASTERDROP_TOKEN_PARAMETER_PREFIX": props.token_parameter_prefix,
             "POWERTOOLS_SERVICE_NAME": C.POWERTOOLS_SERVICE_NAME},
            props, N.AUTHORIZER_TIMEOUT_SECONDS,
        )  # fmt: skip
        self.uploads = self._fn(
            "Uploads", N.ID_UPLOADS_FUNCTION, N.HANDLER_UPLOADS,
            "rasterdrop API: presigned POST into input/<tenant>/", env, props,
        )  # fmt: skip
        self.results = self._fn(
            "Results", N.ID_RESULTS_FUNCTION, N.HANDLER_RESULTS,
            "rasterdrop API: status and fresh links of one upload", env, props,
        )  # fmt: skip
        self.usage = self._fn(
            "Usage", N.ID_USAGE_FUNCTION, N.HANDLER_USAGE,
            "rasterdrop API: today's uploads against the quota", env, props,
        )  # fmt: skip
        cfn_role = self.uploads.role.node.default_child  # type: ignore[union-attr]
        cfn_role.role_name = N.uploads_role_name(Stack.of(self).stack_name)
        self._grant(bucket, link_secret, props.token_parameter_prefix)

    def _fn(self, id, logical_id, handler, description, env, props, timeout=None):
        return python_handler(
            self,
            id,
            logical_id=logical_id,
            handler=handler,
            description=description,
            code=props.code,
            layer=props.layer,
            environment=env,
            log_retention=props.log_retention,
            timeout_seconds=timeout or N.API_LAMBDA_TIMEOUT_SECONDS,
        )

    def _grant(self, bucket: s3.IBucket, secret: secretsmanager.ISecret, prefix: str) -> None:
        arn = bucket.bucket_arn
        parameters = (
            f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter/{prefix.strip('/')}/*"
        )
        self.authorizer.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadTokenRecords", actions=["ssm:GetParameter"], resources=[parameters]
            )
        )
        # A presigned POST is signed with the role's credentials: S3 checks PutObject then.
        self.uploads.add_to_role_policy(
            iam.PolicyStatement(
                sid="SignUploadsIntoInput",
                actions=["s3:PutObject"],
                resources=object_arns(arn, C.INPUT_PREFIX),
            )
        )
        self.results.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadUploadsResultsAndLeases",
                actions=["s3:GetObject"],
                resources=[
                    *object_arns(arn, C.INPUT_PREFIX, C.OUTPUT_PREFIX),
                    f"{arn}/{C.PARTIAL_PREFIX}*/lease.json",
                    f"{arn}/{C.MODELS_PREFIX}*/current.json",
                ],
            )
        )
        self.results.add_to_role_policy(
            iam.PolicyStatement(
                sid="ListSoMissingObjectsAre404",
                actions=["s3:ListBucket"],
                resources=[arn],
                conditions=list_prefix_conditions(
                    C.INPUT_PREFIX, C.OUTPUT_PREFIX, C.PARTIAL_PREFIX, C.MODELS_PREFIX
                ),
            )
        )
        secret.grant_read(self.results)
        self.usage.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadUsagePlansAndUsage",
                actions=["apigateway:GET"],
                resources=[
                    f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/usageplans/*",
                    f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/usageplans/*/usage",
                ],
            )
        )

    @property
    def all(self) -> dict[str, lambda_.IFunction]:
        return {
            "ApiAuthorizer": self.authorizer,
            "ApiUploads": self.uploads,
            "ApiResults": self.results,
            "ApiUsage": self.usage,
        }
