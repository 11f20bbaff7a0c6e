"""Names of the API's parts: handlers, routes, logical ids, outputs (one place)."""

from __future__ import annotations

STAGE = "api"
ROUTE_UPLOADS = ("v1", "uploads")
ROUTE_RESULTS = ("v1", "results")
ROUTE_USAGE = ("v1", "usage")

HANDLER_AUTHORIZER = "api_authorizer.handler"
HANDLER_UPLOADS = "api_uploads.handler"
HANDLER_RESULTS = "api_results.handler"
HANDLER_USAGE = "api_usage.handler"

ID_REST_API = "TenantApi"
ID_AUTHORIZER_FUNCTION = "ApiAuthorizerFunction"
ID_UPLOADS_FUNCTION = "ApiUploadsFunction"
ID_RESULTS_FUNCTION = "ApiResultsFunction"
ID_USAGE_FUNCTION = "ApiUsageFunction"
ID_WEB_ACL = "ApiWebAcl"

OUTPUT_URL = "ApiUrl"
OUTPUT_TENANTS = "ApiTenants"
OUTPUT_TOKEN_PREFIX = "ApiTokenParameterPrefix"  # noqa: S105 (an output name)

#: the stage's own cap over all tenants (each tenant's usage plan is below it)
STAGE_RATE_PER_S = 100
STAGE_BURST = 200
AUTHORIZER_TIMEOUT_SECONDS = 5
API_LAMBDA_TIMEOUT_SECONDS = 10


def uploads_role_name(stack_name: str) -> str:
    """A fixed name for the uploads function's role (IAM is global: the region is in it), so
    the bucket's ``allowed_uploader_arns`` deny can let the presigned POSTs through."""
    from aws_cdk import Aws

    return f"{stack_name[:24]}-api-uploads-{Aws.REGION}"


def uploads_role_arn(stack_name: str) -> str:
    from aws_cdk import Aws

    return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{uploads_role_name(stack_name)}"


def token_parameter_prefix(stack_name: str) -> str:
    """SSM path of the token records: ``/rasterdrop/<stack>/api/tokens/``."""
    return f"/rasterdrop/{stack_name}/api/tokens/"


#: API Gateway refuses (401) an Authorization header not of this shape before invoking the
#: authorizer; the handlers' ``rasterdrop_api.credentials.HEADER_REGEX`` (a test pins them equal)
TOKEN_HEADER_REGEX = r"^Bearer rdt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$"  # noqa: S105 (a pattern)
