"""``GET /v1/results?key=…``: status and fresh links (logic: rasterdrop_api.status)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from rasterdrop_api import responses, runtime, status
from rasterdrop_api.request import BadRequest, query, tenant_of

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=APIGatewayProxyEvent)
def handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict:
    try:
        key = query(event, "key")
    except BadRequest as exc:
        return responses.error(400, exc.code, str(exc))
    return status.result(
        key,
        tenant_of(event),
        s3=runtime.client("s3"),
        secrets=runtime.client("secretsmanager"),
        settings=runtime.settings(),
        now=runtime.clock()(),
    )
