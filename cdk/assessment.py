"""The accuracy assessment's part of the stack: the assess job's role, its rule's key
pattern, and the job environment of post-processing and accuracy samples.

``assessments/<path>.gpkg`` (a labelled ``sample.gpkg``) → rule ``AssessRule`` → the
assess job (same queue, image and retry strategy as predict; its own least-privilege
role) → ``output/<path>/assessment/`` → the notifier (the job-state rule already covers
the queue). Constructs here take typed arguments; nothing reads context.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk import constants as C
from cdk.naming import list_prefix_conditions, object_arns
from cdk.patterns import case_variants


def sample_key_wildcards(prefix: str = C.ASSESSMENTS_PREFIX) -> list[str]:
    """``assessments/*.gpkg`` and ``assessments/*.GPKG`` (the TIFF rule's convention)."""
    return [f"{prefix}*{ext}" for ext in case_variants(C.SAMPLE_SUFFIX)]


def assess_role(scope: Construct, id: str, *, bucket: s3.IBucket) -> iam.Role:
    """Read assessments/ and output/ (the map and its summary); write, and replace the
    markers of, output/*/assessment/ only."""
    role = iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        description="rasterdrop assess job: assessments/ and output/ read, "
        "output/*/assessment/ write",
    )
    arn = bucket.bucket_arn
    folder = f"{arn}/{C.OUTPUT_PREFIX}*/{C.ASSESSMENT_SEGMENT}"
    for statement in (
        iam.PolicyStatement(
            sid="ReadSamplesAndMaps",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=object_arns(arn, C.ASSESSMENTS_PREFIX, C.OUTPUT_PREFIX),
        ),
        iam.PolicyStatement(
            sid="WriteAssessments",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[f"{folder}*"],
        ),
        iam.PolicyStatement(
            sid="ReplaceAssessmentMarkers",
            actions=["s3:DeleteObject"],
            resources=[f"{folder}{C.SUMMARY_JSON}", f"{folder}{C.ERROR_JSON}"],
        ),
        iam.PolicyStatement(
            sid="ListOwnPrefixes",
            actions=["s3:ListBucket"],
            resources=[arn],
            conditions=list_prefix_conditions(C.ASSESSMENTS_PREFIX, C.OUTPUT_PREFIX),
        ),
    ):
        role.add_to_policy(statement)
    return role


def postprocess_environment(
    *,
    mmu_pixels: int,
    mmu_connectivity: int,
    class_polygons: bool,
    accuracy_sample_n: int,
    probabilities: bool = False,
) -> dict[str, str]:
    """The predict job's post-processing settings (``batch_image.jobs.settings``)."""
    return {
        "RASTERDROP_MMU_PIXELS": str(mmu_pixels),
        "RASTERDROP_MMU_CONNECTIVITY": str(mmu_connectivity),
        "RASTERDROP_CLASS_POLYGONS": "true" if class_polygons else "false",
        "RASTERDROP_ACCURACY_SAMPLE_N": str(accuracy_sample_n),
        "RASTERDROP_PROBABILITIES": "true" if probabilities else "false",
    }


def labelling_environment(
    *, review_points: int, train_promote: str, promote_tolerance: float
) -> dict[str, str]:
    """The labelling loop's settings: review points of every prediction (predict job) and
    the promotion gate of trainings whose manifest does not say (train job)."""
    return {
        "RASTERDROP_REVIEW_POINTS": str(review_points),
        "RASTERDROP_PROMOTE": train_promote,
        "RASTERDROP_PROMOTE_TOLERANCE": repr(float(promote_tolerance)),
    }
