"""Lambda: Batch "Job State Change" (SUCCEEDED/FAILED) → one SNS message per input and model."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rasterdrop_notify import runtime
from rasterdrop_notify.events import BatchJobStateChangeEvent
from rasterdrop_notify.service import notify_job

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_parser(model=BatchJobStateChangeEvent)
def handler(event: BatchJobStateChangeEvent, context: LambdaContext) -> dict:
    result = notify_job(event, runtime.clients(), runtime.settings(), clock=runtime.clock())
    metrics.add_metric(name=f"Notifications{result.action.title()}", unit=MetricUnit.Count, value=1)
    logger.info(
        result.action, job_id=event.detail.jobId, reason=result.reason, marker=result.marker
    )
    return result.response()
