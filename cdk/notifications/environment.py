"""What the notification Lambdas share: their code and layer, and the settings behind their env."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, CfnCondition, Fn, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk import constants as C

# The variables the link handler reads (docs/contracts.md): it needs no topic, no size limit.
LINK_VARIABLES = (
    "RASTERDROP_BUCKET",
    "RASTERDROP_OUTPUT_PREFIX",
    "RASTERDROP_LINK_TTL_DAYS",
    "RASTERDROP_LINK_SECRET_ARN",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
)


def powertools_layer_account(scope: Construct) -> str:
    """The account publishing the Powertools layer in the deploying region: one of
    `C.POWERTOOLS_LAYER_ACCOUNTS_BY_REGION` (China, GovCloud), else the commercial one.
    Chosen at deploy time (`Fn::If` on `AWS::Region`), so one template serves every partition."""
    stack = Stack.of(scope)
    account: str = C.POWERTOOLS_LAYER_ACCOUNT
    for region, owner in sorted(C.POWERTOOLS_LAYER_ACCOUNTS_BY_REGION.items()):
        cond_id = "PowertoolsIn" + "".join(part.title() for part in region.split("-"))
        condition = stack.node.try_find_child(cond_id) or CfnCondition(
            stack, cond_id, expression=Fn.condition_equals(Aws.REGION, region)
        )
        account = Fn.condition_if(condition.logical_id, owner, account).to_string()
    return account


def powertools_layer_arn(scope: Construct, version: int) -> str:
    """The public Powertools v3 layer in the stack's own partition and region."""
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{powertools_layer_account(scope)}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{C.POWERTOOLS_LAYER_PYTHON}-{C.POWERTOOLS_LAYER_ARCH}:"
        f"{version}"
    )


@dataclass(frozen=True)
class HandlerRuntime:
    """Code asset, layer and log retention: the same for every handler, so built once."""

    code: lambda_.Code
    layer: lambda_.ILayerVersion
    log_retention: logs.RetentionDays


@dataclass(frozen=True)
class HandlerSettings:
    """The values behind the handlers' environment variables (contract: docs/contracts.md)."""

    bucket_name: str
    secret_arn: str
    link_ttl_days: int
    max_input_bytes: int
    output_retention_days: int | None

    def environment(self) -> dict[str, str]:
        """The variables every handler may read (each function takes what it needs)."""
        return {
            "RASTERDROP_BUCKET": self.bucket_name,
            "RASTERDROP_INPUT_PREFIX": C.INPUT_PREFIX,
            "RASTERDROP_OUTPUT_PREFIX": C.OUTPUT_PREFIX,
            "RASTERDROP_LINK_TTL_DAYS": str(self.link_ttl_days),
            "RASTERDROP_LINK_SECRET_ARN": self.secret_arn,
            "RASTERDROP_MAX_INPUT_BYTES": str(self.max_input_bytes),
            "RASTERDROP_OUTPUT_RETENTION_DAYS": str(self.output_retention_days or 0),
            "POWERTOOLS_SERVICE_NAME": C.POWERTOOLS_SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": C.POWERTOOLS_METRICS_NAMESPACE,
        }

    def link_environment(self) -> dict[str, str]:
        """Only what the link handler reads: least knowledge for the public endpoint."""
        env = self.environment()
        return {name: env[name] for name in LINK_VARIABLES}
