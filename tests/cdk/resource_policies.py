"""Can an AWS service actually deliver to a topic, queue or bucket of the template?

A small evaluator of the IAM policy language, enough for the stack's resource policies
(SNS topic, SQS queue, S3 bucket and KMS key policies): an explicit Deny wins, otherwise
some Allow must match principal, action, resource and every condition. Condition keys a
request does not carry make a condition false (IAM's rule), so a Deny on
`aws:SecureTransport = false` does not apply to a service's TLS request while an Allow
scoped on `aws:SourceArn` needs the right source. Values are the template's intrinsics
resolved by the sandbox's `Resolver` (the same names for every side).
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from sandbox.cfn import Resolver


@dataclass(frozen=True)
class Request:
    service: str  # e.g. cloudwatch.amazonaws.com
    action: str  # e.g. sns:Publish
    resource: str  # concrete ARN
    context: Mapping[str, Any] = field(default_factory=dict)

    def with_tls(self) -> Request:
        return Request(
            self.service,
            self.action,
            self.resource,
            {"aws:SecureTransport": "true", "s3:TlsVersion": 1.3, **self.context},
        )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        if "*" in _list(principal.get("AWS", [])):
            return True
        return service in _list(principal.get("Service", []))
    return False


def _condition_matches(conditions: Mapping[str, Mapping[str, Any]], ctx: Mapping) -> bool:
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            if key not in ctx:
                return False
            got = ctx[key]
            values = _list(expected)
            if operator in ("StringEquals", "ArnEquals"):
                ok = str(got) in [str(v) for v in values]
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatchcase(str(got), str(v)) for v in values)
            elif operator == "Bool":
                ok = str(got).lower() in [str(v).lower() for v in values]
            elif operator == "NumericLessThan":
                ok = any(float(got) < float(v) for v in values)
            else:
                raise AssertionError(f"condition operator {operator} not understood by the test")
            if not ok:
                return False
    return True


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    if not _principal_matches(statement.get("Principal"), request.service):
        return False
    actions = [str(a).lower() for a in _list(statement.get("Action", []))]
    if not any(fnmatchcase(request.action.lower(), a) for a in actions):
        return False
    resources = [str(r) for r in _list(statement.get("Resource", "*"))]
    if not any(fnmatchcase(request.resource, r) for r in resources):
        return False
    return _condition_matches(statement.get("Condition", {}), request.context)


def allows(statements: list[Mapping[str, Any]], request: Request) -> bool:
    """Explicit deny wins; else an allow must match (a request over TLS, as services send)."""
    req = request.with_tls()
    if any(s["Effect"] == "Deny" and _matches(s, req) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, req) for s in statements)


_POLICY_TYPES = {
    "AWS::SNS::TopicPolicy": "Topics",
    "AWS::SQS::QueuePolicy": "Queues",
    "AWS::S3::BucketPolicy": "Bucket",
}


def resource_policy(template: dict[str, Any], r: Resolver, target: str) -> list[dict[str, Any]]:
    """Resolved statements of every resource policy attached to `target` (its Ref).

    No policy at all means the service's default (owner-only) policy: returned as [] so the
    caller sees "nobody allowed" rather than "unknown".
    """
    statements: list[dict[str, Any]] = []
    for res in template["Resources"].values():
        prop = _POLICY_TYPES.get(res["Type"])
        if prop is None:
            continue
        attached = [r.resolve(v) for v in _list(res["Properties"][prop])]
        if target in attached:
            statements.extend(r.resolve(res["Properties"]["PolicyDocument"])["Statement"])
    return statements


def key_policy(template: dict[str, Any], r: Resolver, key_logical_id: str) -> list[dict]:
    doc = template["Resources"][key_logical_id]["Properties"]["KeyPolicy"]
    return r.resolve(doc)["Statement"]


def logical_id_of(template: dict[str, Any], r: Resolver, value: Any, attr: str = "") -> str:
    """The logical id whose Ref (or `attr`) resolves to `value`."""
    resolved = r.resolve(value)
    for logical_id in template["Resources"]:
        try:
            got = r.get_att(logical_id, attr) if attr else r.ref(logical_id)
        except Exception:  # noqa: S112 (resources without that attribute)
            continue
        if got == resolved:
            return logical_id
    raise AssertionError(f"no resource resolves to {resolved!r}")


def rule_queue_deliveries(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(rule logical id, queue Arn intrinsic) of every SQS target and dead-letter queue."""
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::Events::Rule":
            continue
        for target in res["Properties"].get("Targets", []):
            arn = target.get("DeadLetterConfig", {}).get("Arn")
            if arn is not None:
                yield logical_id, arn
            if _is_queue_arn(template, target["Arn"]):
                yield logical_id, target["Arn"]


def _is_queue_arn(template: dict[str, Any], arn: Any) -> bool:
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        logical_id = arn["Fn::GetAtt"][0]
        return template["Resources"][logical_id]["Type"] == "AWS::SQS::Queue"
    return False
