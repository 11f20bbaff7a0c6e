"""Small helpers shared by the constructs."""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct


def fix_logical_id(construct: IConstruct, logical_id: str) -> None:
    """Give the construct's L1 resource a stable logical id (see `constants`)."""
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to rename")
    child.override_logical_id(logical_id)


def object_arns(bucket_arn: str, *prefixes: str) -> list[str]:
    """`arn/prefix*` for each prefix: object ARNs limited to a key prefix."""
    return [f"{bucket_arn}/{prefix}*" for prefix in prefixes]


def list_prefix_conditions(*prefixes: str) -> dict:
    """Condition limiting s3:ListBucket to the given key prefixes."""
    return {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}
