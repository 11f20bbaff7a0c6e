"""``POST /v1/uploads``: a presigned POST into ``input/<tenant>/`` (rasterdrop_api.uploads)."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from rasterdrop_api import responses, runtime, uploads
from rasterdrop_api.request import BadRequest, json_body, tenant_of

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
@event_source(data_class=APIGatewayProxyEvent)
def handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict:
    try:
        body = json_body(event)
    except BadRequest as exc:
        return responses.error(400, exc.code, str(exc))
    answer = uploads.presign(
        body, tenant_of(event), runtime.client("s3"), runtime.settings(), runtime.clock()()
    )
    metrics.add_metric(name=f"Upload{answer['statusCode']}", unit=MetricUnit.Count, value=1)
    return answer
