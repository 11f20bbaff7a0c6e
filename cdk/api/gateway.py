"""The REST API (regional): routes, Lambda authorizer, validation, access logs, plans, WAF.

| route | handler | API key (usage plan) |
| --- | --- | --- |
| `POST /v1/uploads` | `api_uploads` | the tenant's uploads plan (rate, burst, daily quota) |
| `GET /v1/results?key=` | `api_results` | the tenant's reads plan (rate, burst) |
| `GET /v1/usage` | `api_usage` | the tenant's reads plan |

Every method: the TOKEN authorizer (no result cache: each request is authorized, so a
revoked token stops within the authorizer's own 30 s record cache), an API key required
(from the authorizer), request validation (body model / required query string).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk.api import names as N
from cdk.api.functions import ApiFunctions, ApiHandlerProps
from cdk.api.models import GATEWAY_RESPONSES, UPLOAD_REQUEST_SCHEMA, response_template
from cdk.api.plans import TenantPlans
from cdk.api.waf import ApiFirewall
from cdk.config import TenantPlan


class Api(Construct):
    """The tenants' HTTPS front door (see the module docstring)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        link_secret: secretsmanager.ISecret,
        handlers: ApiHandlerProps,
        tenants: Mapping[str, TenantPlan],
        waf: bool,
        waf_rate_per_5min: int,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.functions = ApiFunctions(
            self, "Functions", bucket=bucket, link_secret=link_secret, props=handlers
        )
        self.rest_api = self._rest_api(stack.stack_name, handlers.log_retention)
        self._routes()
        self._gateway_responses()
        self.plans = TenantPlans(
            self, "Plans", api=self.rest_api, tenants=tenants, name_prefix=stack.stack_name
        )
        self.firewall = (
            ApiFirewall(
                self,
                "Firewall",
                stage_arn=self.rest_api.deployment_stage.stage_arn,
                rate_per_5min=waf_rate_per_5min,
            )
            if waf
            else None
        )
        CfnOutput(stack, N.OUTPUT_URL, value=self.rest_api.url, description="RASTERDROP_API_URL")
        CfnOutput(
            stack,
            N.OUTPUT_TENANTS,
            value=stack.to_json_string(self.plans.ids),
            description="tenant -> usage plans and API key ids (read by the token admin)",
        )
        CfnOutput(stack, N.OUTPUT_TOKEN_PREFIX, value=handlers.token_parameter_prefix)

    # ---------------------------------------------------------------- the API
    def _rest_api(self, stack_name: str, retention: logs.RetentionDays) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.authorizer = apigw.TokenAuthorizer(
            self,
            "Authorizer",
            handler=self.functions.authorizer,
            identity_source=apigw.IdentitySource.header("Authorization"),
            validation_regex=N.TOKEN_HEADER_REGEX,
            results_cache_ttl=Duration.seconds(0),
            authorizer_name=f"{stack_name}-tokens",
        )
        api = apigw.RestApi(
            self,
            "Default",
            rest_api_name=f"{stack_name}-api",
            description="rasterdrop: tenants submit GeoTIFFs and fetch results",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name=N.STAGE,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log bodies: they hold upload forms
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=N.STAGE_RATE_PER_S,
                throttling_burst_limit=N.STAGE_BURST,
            ),
            default_method_options=apigw.MethodOptions(
                authorizer=self.authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                api_key_required=True,
            ),
        )
        api.node.default_child.override_logical_id(N.ID_REST_API)
        return api

    def _routes(self) -> None:
        api, fns = self.rest_api, self.functions
        v1 = api.root.add_resource("v1")
        validator = api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        model = api.add_model(
            "UploadRequest", content_type="application/json", schema=UPLOAD_REQUEST_SCHEMA
        )
        v1.add_resource("uploads").add_method(
            "POST",
            _proxy(fns.uploads),
            request_validator=validator,
            request_models={"application/json": model},
        )
        v1.add_resource("results").add_method(
            "GET",
            _proxy(fns.results),
            request_validator=validator,
            request_parameters={"method.request.querystring.key": True},
        )
        v1.add_resource("usage").add_method("GET", _proxy(fns.usage), request_validator=validator)

    def _gateway_responses(self) -> None:
        headers = {"Content-Type": "'application/json'", "Cache-Control": "'no-store'"}
        for kind, status, code, message in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                f"Response{code.title().replace('_', '')}{status}{kind.response_type}",
                type=kind,
                status_code=status,
                response_headers=headers,
                templates={"application/json": response_template(code, message)},
            )


def _proxy(fn: lambda_.IFunction) -> apigw.LambdaIntegration:
    return apigw.LambdaIntegration(fn, proxy=True)


ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "time": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "tenant": "$context.authorizer.tenant",
    "tokenId": "$context.authorizer.token_id",
    "error": "$context.error.responseType",
    "authorizerError": "$context.authorizer.error",
}
