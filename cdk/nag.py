"""Every acknowledged cdk-nag (AwsSolutions) finding, with its reason, in one place.

cdk-nag 3.x reports through CDK's policy validation; a finding is
acknowledged with `Validations.of(construct).acknowledge(id=..., reason=...)`
where the id is `AwsSolutions::<rule>[<finding>]` exactly as reported.
`ACKNOWLEDGEMENTS` lists (construct path relative to the stack, rule id,
reason); paths that do not exist in a configuration (e.g. the large job
definition when it is switched off) are skipped, and `unused_paths` lets a
test prove no entry is stale for the default configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

from cdk import constants as C
from cdk.api.nag import api_acknowledgements
from cdk.config import RasterdropConfig

PACK = "AwsSolutions::"
BUCKET = "<DataBucket.Arn>"

R_PREFIX = (
    "Object ARN ends in '/<prefix>*': access is limited to one key prefix of the data bucket "
    "(keys are created at run time, so a prefix is the narrowest S3 resource possible)."
)
R_JOB_DEFINITION_REVISIONS = (
    "'<name>:*' is every revision of this stack's own predict job definition (a deployment "
    "adds a revision); a sharded run's planner submits its parts there, by name, on its own "
    "queue only (batch:SubmitJob has no narrower resource)."
)
R_XRAY = (
    "xray:PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
    "AWS requires Resource '*' for Lambda active tracing."
)
R_ECR_AUTH = (
    "ecr:GetAuthorizationToken supports no resource-level permissions (AWS requires '*'); "
    "image pulls themselves are limited to the CDK asset repository."
)
R_KMS_GENERATE = (
    "kms:GenerateDataKey* (GenerateDataKey, GenerateDataKeyWithoutPlaintext) is what SNS needs "
    "to publish to a topic encrypted with a customer key; the resource is that one key."
)
R_BATCH_INSTANCE_ROLE = (
    "AmazonEC2ContainerServiceforEC2Role is the AWS-maintained policy the ECS agent on Batch "
    "instances needs (register with the cluster, pull images, write logs); no data access."
)
R_EVENTS_DLQ = (
    "This queue IS a dead-letter queue: EventBridge targets' DeadLetterConfig points to it, which "
    "cdk-nag does not recognise (it only sees SQS RedrivePolicy); alarmed on depth."
)
R_FAILED_JOBS_QUEUE = (
    "Audit queue of FAILED Batch job events for operators (14 days retention); nothing consumes "
    "it, so a redrive DLQ would never receive anything. Undeliverable events go to the events DLQ."
)
R_BLOCKED_JOBS_QUEUE = (
    "Audit queue of 'Batch Job Queue Blocked' events (why a job waits in RUNNABLE) for operators; "
    "nothing consumes it, so a redrive DLQ would never receive anything. Undeliverable events go "
    "to the events DLQ."
)
R_HMAC_KEY = (
    "HMAC key of the emailed links: rotating it would invalidate every link still within its "
    "lifetime (link_ttl_days); rotate by hand after the lifetime has passed (README, Deploy)."
)
R_RUNTIME = (
    "python3.13: the newest runtime for which the pinned public Powertools v3 layer "
    "(AWSLambdaPowertoolsPythonV3-python313) is referenced; moving to 3.14 is a constant change."
)
R_AUTODELETE_ROLE = (
    "CDK's auto-delete-objects custom resource (only with removal_policy=destroy) uses the "
    "AWS-managed basic execution role for its own logs."
)
R_AUTODELETE_RUNTIME = (
    "The runtime of CDK's auto-delete-objects provider is chosen by aws-cdk-lib, not by us "
    "(only with removal_policy=destroy)."
)


@dataclass(frozen=True)
class Ack:
    path: str  # construct path relative to the stack
    rule: str  # finding id as reported, without the "AwsSolutions::" pack prefix
    reason: str


def _prefix(*prefixes: str) -> list[str]:
    return [f"AwsSolutions-IAM5[Resource::{BUCKET}/{p}]" for p in prefixes]


def acknowledgements(config: RasterdropConfig) -> list[Ack]:
    acks: list[Ack] = []
    for rule in _prefix(
        "input/*", "models/*", "output/*", "partial/*", "output/*/summary.json",
        "output/*/error.json",
    ):  # fmt: skip
        acks.append(Ack("Compute/PredictRole", rule, R_PREFIX))
    definitions = [f"{config.stack_name}-{C.JOB_DEFINITION_PREDICT_SUFFIX}"]
    if config.large_jobs_enabled:
        definitions.append(f"{config.stack_name}-{C.JOB_DEFINITION_PREDICT_LARGE_SUFFIX}")
    for name in definitions:
        rule = (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:"
            f"<AWS::AccountId>:job-definition/{name}:*]"
        )
        acks.append(Ack("Compute/PredictRole", rule, R_JOB_DEFINITION_REVISIONS))
    for rule in _prefix("training/*", "input/*", "models/*", "models/*/reserved.json",
                        "models/*/runs/*"):  # fmt: skip
        acks.append(Ack("Compute/TrainRole", rule, R_PREFIX))
    assessment = ("output/*/assessment/*", "output/*/assessment/summary.json",
                  "output/*/assessment/error.json")  # fmt: skip
    for rule in _prefix("assessments/*", "output/*", *assessment):
        acks.append(Ack("Compute/AssessRole", rule, R_PREFIX))
    for rule in _prefix("output/*", "models/*/runs/*", "notified/*"):
        acks.append(Ack("Notifications/Default/NotifyRole", rule, R_PREFIX))
    for rule in _prefix("output/*"):
        acks.append(Ack("Notifications/Link/DefaultRole", rule, R_PREFIX))
    for rule in _prefix("notified/*"):
        acks.append(Ack("Notifications/Default/RejectRole", rule, R_PREFIX))
    for role in ("Default/NotifyRole", "Default/RejectRole", "Link/DefaultRole"):
        acks.append(Ack(f"Notifications/{role}", "AwsSolutions-IAM5[Resource::*]", R_XRAY))
    for role in ("Default/NotifyRole", "Default/RejectRole"):
        acks.append(
            Ack(
                f"Notifications/{role}",
                "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                R_KMS_GENERATE,
            )
        )
    for fn in ("Default/Notify", "Default/Reject", "Link/Default"):
        acks.append(Ack(f"Notifications/{fn}", "AwsSolutions-L1", R_RUNTIME))
    acks += [
        Ack("Compute/ExecutionRole", "AwsSolutions-IAM5[Resource::*]", R_ECR_AUTH),
        Ack(
            "Compute/Environment/InstanceProfileRole",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonEC2ContainerServiceforEC2Role]",
            R_BATCH_INSTANCE_ROLE,
        ),
        Ack("DeadLetters/Events", "AwsSolutions-SQS3", R_EVENTS_DLQ),
        Ack("Monitoring/FailedJobsQueue", "AwsSolutions-SQS3", R_FAILED_JOBS_QUEUE),
        Ack("Monitoring/BlockedJobsQueue", "AwsSolutions-SQS3", R_BLOCKED_JOBS_QUEUE),
        Ack("Notifications/Topic/LinkSecret", "AwsSolutions-SMG4", R_HMAC_KEY),
    ]
    acks += [
        Ack(*ack)
        for ack in api_acknowledgements(
            api=config.api,
            waf=config.api_waf,
            stack_name=config.stack_name,
            r_xray=R_XRAY,
            r_runtime=R_RUNTIME,
        )
    ]
    if config.destroy_on_delete:
        provider = "Custom::S3AutoDeleteObjectsCustomResourceProvider"
        acks += [
            Ack(
                provider,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                R_AUTODELETE_ROLE,
            ),
            Ack(provider, "AwsSolutions-L1", R_AUTODELETE_RUNTIME),
        ]
    return acks


def _find(stack: Stack, path: str) -> IConstruct | None:
    node: IConstruct = stack
    for part in path.split("/"):
        child = node.node.try_find_child(part)
        if child is None:
            return None
        node = child
    return node


def acknowledge_findings(stack: Stack, config: RasterdropConfig) -> list[Ack]:
    """Apply every acknowledgement whose construct exists; returns the applied ones."""
    applied = []
    for ack in acknowledgements(config):
        construct = _find(stack, ack.path)
        if construct is None:
            continue
        Validations.of(construct).acknowledge(Acknowledgment(id=PACK + ack.rule, reason=ack.reason))
        applied.append(ack)
    return applied


def unused_paths(stack: Stack, config: RasterdropConfig) -> list[str]:
    """Acknowledgement paths that match no construct (stale entries)."""
    return [a.path for a in acknowledgements(config) if _find(stack, a.path) is None]
