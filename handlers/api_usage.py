"""``GET /v1/usage``: today's upload requests against the quota (logic: rasterdrop_api.usage)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from rasterdrop_api import runtime, usage
from rasterdrop_api.request import authorizer_value, tenant_of

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=APIGatewayProxyEvent)
def handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict:
    return usage.usage(
        tenant_of(event),
        authorizer_value(event, "uploads_plan_id"),
        authorizer_value(event, "uploads_key_id"),
        apigateway=runtime.client("apigateway"),
        now=runtime.clock()(),
    )
