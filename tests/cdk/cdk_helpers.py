"""Helpers shared by the CDK tests (imported as `cdk_helpers`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox.cfn import Resolver
from sandbox.eventpattern import matches
from sandbox.stack import read_rules

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
CDK_JSON = Path(__file__).resolve().parent.parent.parent / "cdk.json"

# A configuration that takes every other branch of the stack.
VARIANT_CONTEXT: dict[str, Any] = {
    "stack_name": "RasterdropVariant",
    "notification_emails": ["team@example.com"],
    "tenant_routing": {
        "tenant-a": ["a@example.com", "shared@example.com"],
        "tenant-b": ["b@example.com", "shared@example.com", "team@example.com"],
    },
    "ops_email": "ops@example.com",
    "instance_types": ["c6i", "m6i.2xlarge"],
    "spot": False,
    "max_vcpus": 16,
    "large_job_threshold_bytes": 0,
    "output_retention_days": 90,
    "removal_policy": "destroy",
    "allowed_uploader_arns": ["arn:aws:iam::111122223333:role/uploader"],
    "model_name": "landcover",
}


def cdk_json_context() -> dict[str, Any]:
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return {k: v for k, v in context.items() if not k.startswith("@")}


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every identity policy in the template."""
    for logical_id, res in template["Resources"].items():
        if res["Type"] == "AWS::IAM::Policy":
            for st in res["Properties"]["PolicyDocument"]["Statement"]:
                yield logical_id, st
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                for st in policy["PolicyDocument"]["Statement"]:
                    yield logical_id, st


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


# ------------------------------------------------ template -> concrete values
def rule_patterns(template: dict[str, Any], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """logical id -> EventPattern of every rule, read as the sandbox reads them.

    ``values`` binds resources: ``{"X": ref, "X.Attr": value}``; every resource named
    by an attribute needs its ``Ref`` too.
    """
    resolver = Resolver(template, region="eu-west-1", account="111122223333")
    attrs: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        logical_id, _, attr = name.partition(".")
        if attr:
            attrs.setdefault(logical_id, {})[attr] = value
    for logical_id, ref in values.items():
        if "." not in logical_id:
            resolver.bind(logical_id, ref, **attrs.get(logical_id, {}))
    return {rule.logical_id: rule.pattern for rule in read_rules(template, resolver)}


def matching_rules(patterns: dict[str, dict[str, Any]], event: dict[str, Any]) -> set[str]:
    """Logical ids of the rules whose pattern matches `event` (the sandbox's matcher)."""
    return {logical_id for logical_id, pattern in patterns.items() if matches(pattern, event)}
