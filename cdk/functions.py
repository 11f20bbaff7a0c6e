"""A Python Lambda handler as the stack wants every one of them."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as C
from cdk.naming import fix_logical_id


def python_handler(
    scope: Construct,
    id: str,
    *,
    logical_id: str,
    handler: str,
    description: str,
    code: lambda_.Code,
    layer: lambda_.ILayerVersion,
    environment: dict[str, str],
    log_retention: logs.RetentionDays,
    timeout_seconds: int = C.LAMBDA_TIMEOUT_SECONDS,
    async_dead_letter_queue: sqs.IQueue | None = None,
    reserved_concurrency: int | None = None,
) -> lambda_.Function:
    """python3.13 + Powertools layer, X-Ray active, its own log group with retention and
    its own role (only its log group; callers add the rest): `<id>`, `<id>Role`, `<id>Logs`.
    """
    log_group = logs.LogGroup(
        scope, f"{id}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
    )
    role = iam.Role(
        scope,
        f"{id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"rasterdrop {handler}",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    fn = lambda_.Function(
        scope,
        id,
        description=description,
        runtime=lambda_.Runtime.PYTHON_3_13,
        architecture=lambda_.Architecture.X86_64,
        handler=handler,
        code=code,
        layers=[layer],
        memory_size=C.LAMBDA_MEMORY_MIB,
        timeout=Duration.seconds(timeout_seconds),
        environment=environment,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        dead_letter_queue=async_dead_letter_queue,
        retry_attempts=C.LAMBDA_ASYNC_RETRY_ATTEMPTS if async_dead_letter_queue else None,
        # Reserved concurrency is both a guarantee and a cap: a public function capped this
        # way cannot use up the account's pool that notify and reject draw from. Lambda keeps
        # at least 10 executions unreserved, so the account's limit must exceed the sum by 10
        # (`make doctor` checks it).
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
        reserved_concurrent_executions=reserved_concurrency,
    )
    fix_logical_id(fn, logical_id)
    return fn
