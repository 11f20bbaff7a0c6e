"""Lambda: S3 "Object Created" of an input TIFF or VRT → one rejection message if no job can
run on it.

The rules send every such upload (EventBridge cannot compare sizes above 5e9); ``notify_rejection``
rejects keys the event cannot carry to the job (``"``, ``\\``, control characters) and sizes
over ``RASTERDROP_MAX_INPUT_BYTES``, and returns ``skipped`` for everything else.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rasterdrop_notify import runtime
from rasterdrop_notify.events import S3ObjectCreatedEvent
from rasterdrop_notify.service import notify_rejection

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_parser(model=S3ObjectCreatedEvent)
def handler(event: S3ObjectCreatedEvent, context: LambdaContext) -> dict:
    result = notify_rejection(event, runtime.clients(), runtime.settings(), clock=runtime.clock())
    metrics.add_metric(name=f"Rejections{result.action.title()}", unit=MetricUnit.Count, value=1)
    logger.info(result.action, key=event.detail.object.key, marker=result.marker)
    return result.response()
