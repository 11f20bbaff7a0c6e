"""Lambda: oversize upload (S3 "Object Created" via its own rule) → one rejection message."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rasterdrop_notify import runtime
from rasterdrop_notify.events import S3ObjectCreatedEvent
from rasterdrop_notify.service import notify_rejection, utcnow

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_parser(model=S3ObjectCreatedEvent)
def handler(event: S3ObjectCreatedEvent, context: LambdaContext) -> dict:
    settings = runtime.settings()
    settings.require("topic_arn")
    result = notify_rejection(event, runtime.clients(), settings, now=utcnow())
    metrics.add_metric(name=f"Rejections{result.action.title()}", unit=MetricUnit.Count, value=1)
    logger.info(result.action, key=event.detail.object.key, marker=result.marker)
    return {"action": result.action, "reason": result.reason, "message_id": result.message_id}
