"""EventBridge rules from S3 "Object Created" to Batch jobs and the rejection handler."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_batch as batch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.assessment import sample_key_wildcards
from cdk.naming import fix_logical_id
from cdk.patterns import tiff_key_wildcards, vrt_key_wildcards
from cdk.transformer import batch_parameters_template


class BatchParametersInput(events.RuleTargetInput):
    """InputTransformer producing `{"Parameters": {bucket, key, version, etag, size}}`.

    Written out by hand (not `RuleTargetInput.from_object`) because the size
    must be a quoted string for Batch while the other values are inserted as
    JSON strings; see `cdk.transformer`.
    """

    def __init__(self) -> None:
        super().__init__()

    def bind(self, rule: events.IRule) -> events.RuleTargetInputProperties:
        paths, template = batch_parameters_template()
        return events.RuleTargetInputProperties(input_paths_map=paths, input_template=template)


def object_created_pattern(
    bucket_name: str, *, key: list[Any], size: list[Any] | None = None
) -> events.EventPattern:
    """S3 "Object Created" in our bucket, with conditions on key and size."""
    obj: dict[str, Any] = {"key": key}
    if size is not None:
        obj["size"] = size
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={"bucket": {"name": [bucket_name]}, "object": obj},
    )


def size_ranges(
    max_input_bytes: int, large_threshold: int | None
) -> dict[str, list[dict[str, list[Any]]]]:
    """Numeric conditions on detail.object.size for the job routes (bounds inclusive as named).

    EventBridge numeric matching stops at 5e9 (`C.EVENTBRIDGE_NUMERIC_MAX`): bounds
    beyond it are refused and bigger objects match no numeric condition. So the
    job routes end at `max_input_bytes` (validated <= 5e9) and the rejection
    route carries no size condition at all (see `Rules`).
    """
    for bound in (max_input_bytes, large_threshold or 0):
        if bound > C.EVENTBRIDGE_NUMERIC_MAX:
            raise ValueError(f"size bound {bound} is beyond EventBridge numeric matching (5e9)")
    if large_threshold is None:
        return {"standard": [{"numeric": [">=", 0, "<=", max_input_bytes]}]}
    return {
        "standard": [{"numeric": [">=", 0, "<=", large_threshold]}],
        "large": [{"numeric": [">", large_threshold, "<=", max_input_bytes]}],
    }


class Rules(Construct):
    """predict (by size: standard, large, oversize; VRTs), train rules, with retries and a DLQ."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        job_queue: batch.IJobQueue,
        predict_job: batch.IJobDefinition,
        predict_large_job: batch.IJobDefinition | None,
        train_job: batch.IJobDefinition,
        reject_function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        max_input_bytes: int,
        large_threshold_bytes: int | None,
        assess_job: batch.IJobDefinition | None = None,
    ) -> None:
        super().__init__(scope, id)
        retry = {
            "dead_letter_queue": dead_letter_queue,
            "retry_attempts": C.EVENT_RETRY_ATTEMPTS,
            "max_event_age": Duration.hours(C.EVENT_MAX_AGE_HOURS),
        }
        keys = [{"wildcard": w} for w in tiff_key_wildcards()]
        ranges = size_ranges(max_input_bytes, large_threshold_bytes)

        def batch_target(job: batch.IJobDefinition, job_name: str) -> targets.BatchJob:
            return targets.BatchJob(
                job_queue.job_queue_arn,
                job_queue,
                job.job_definition_arn,
                job,
                job_name=job_name,
                event=BatchParametersInput(),
                **retry,
            )

        def rule(id_: str, logical: str, description: str, pattern: events.EventPattern, target):
            r = events.Rule(self, id_, description=description, event_pattern=pattern)
            r.add_target(target)
            fix_logical_id(r, logical)
            return r

        self.predict = rule(
            "Predict",
            C.ID_PREDICT_RULE,
            "rasterdrop: GeoTIFF uploaded under input/ -> predict job",
            object_created_pattern(bucket_name, key=keys, size=ranges["standard"]),
            batch_target(predict_job, C.JOB_NAME_PREDICT),
        )
        # A VRT is a few KiB whatever the size of the band files it stacks: no size
        # routing; the job sums the band files' sizes and refuses them over the limit.
        self.predict_vrt = rule(
            "PredictVrt",
            C.ID_PREDICT_VRT_RULE,
            "rasterdrop: VRT (band files beside it) uploaded under input/ -> predict job",
            object_created_pattern(bucket_name, key=[{"wildcard": w} for w in vrt_key_wildcards()]),
            batch_target(predict_job, C.JOB_NAME_PREDICT),
        )
        self.predict_large = None
        if predict_large_job is not None and "large" in ranges:
            self.predict_large = rule(
                "PredictLarge",
                C.ID_PREDICT_LARGE_RULE,
                "rasterdrop: large GeoTIFF under input/ -> predict job on a bigger instance",
                object_created_pattern(bucket_name, key=keys, size=ranges["large"]),
                batch_target(predict_large_job, C.JOB_NAME_PREDICT_LARGE),
            )
        # Every GeoTIFF upload also goes to the reject handler, which sends a notice
        # only when the object is over max_input_bytes: a numeric "> max" condition
        # would never match objects over 5e9 bytes (EventBridge's numeric range),
        # which would then be dropped silently.
        self.oversize = rule(
            "Oversize",
            C.ID_OVERSIZE_RULE,
            "rasterdrop: GeoTIFF under input/ -> size check, rejection notice if over the limit",
            object_created_pattern(bucket_name, key=keys),
            targets.LambdaFunction(reject_function, **retry),
        )
        # VRT keys reach the reject handler too (no size check applies to a few KiB), so a VRT
        # whose key the input transformer cannot carry (a `"`, `\\`, control characters) gets
        # its rejection email instead of a dead-lettered job submission.
        self.vrt_key_check = rule(
            "VrtKeyCheck",
            C.ID_VRT_KEY_CHECK_RULE,
            "rasterdrop: VRT under input/ -> key check, rejection notice if no job can take it",
            object_created_pattern(bucket_name, key=[{"wildcard": w} for w in vrt_key_wildcards()]),
            targets.LambdaFunction(reject_function, **retry),
        )
        self.train = rule(
            "Train",
            C.ID_TRAIN_RULE,
            "rasterdrop: training/<name>/manifest.json uploaded -> train job",
            object_created_pattern(
                bucket_name,
                key=[{"wildcard": f"{C.TRAINING_PREFIX}*/{C.TRAIN_MANIFEST_NAME}"}],
            ),
            batch_target(train_job, C.JOB_NAME_TRAIN),
        )
        self.assess = None
        if assess_job is not None:
            self.assess = rule(
                "Assess",
                C.ID_ASSESS_RULE,
                "rasterdrop: labelled sample assessments/<path>.gpkg uploaded -> assess job",
                object_created_pattern(
                    bucket_name, key=[{"wildcard": w} for w in sample_key_wildcards()]
                ),
                batch_target(assess_job, C.JOB_NAME_ASSESS),
            )
        self.all = tuple(
            r
            for r in (
                self.predict,
                self.predict_vrt,
                self.predict_large,
                self.oversize,
                self.vrt_key_check,
                self.train,
                self.assess,
            )
            if r
        )
