"""Lambda function URL (payload 2.0): signed link token → 302 to a fresh presigned GET URL."""

import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from rasterdrop_notify import linkserve, runtime
from rasterdrop_notify.keyring import load_keys

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # the response holds a presigned URL
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    try:
        request = parse(event=event, model=LambdaFunctionUrlModel)
    except ValidationError:
        metrics.add_metric(name="Link400", unit=MetricUnit.Count, value=1)
        return linkserve.bad_request()
    settings, clients = runtime.settings(), runtime.clients()
    settings.require("bucket", "link_secret_arn")
    response = linkserve.answer(
        method=request.requestContext.http.method,
        token=(request.queryStringParameters or {}).get("t"),
        s3=clients.s3,
        settings=settings,
        keys=load_keys(clients.secrets, settings.link_secret_arn),
        now=time.time(),
    )
    metrics.add_metric(name=f"Link{response['statusCode']}", unit=MetricUnit.Count, value=1)
    return response
