"""Lambda function URL (payload 2.0): signed link token → 302 to a fresh presigned GET URL."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rasterdrop_notify import linkserve, runtime

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # the response holds a presigned URL
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    response = linkserve.serve(event, runtime.clients(), runtime.settings(), clock=runtime.clock())
    metrics.add_metric(name=f"Link{response['statusCode']}", unit=MetricUnit.Count, value=1)
    return response
