"""IAM: no s3:*, no wildcard actions, '*' resources only where AWS requires, prefixes scoped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import statements

from cdk import constants as C

pytestmark = pytest.mark.xdist_group("cdk")

# The only actions allowed on Resource "*": none of them supports resource-level permissions.
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",  # Lambda active tracing
    "xray:PutTelemetryRecords",
    "ecr:GetAuthorizationToken",  # Batch execution role: log in to ECR
}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def object_prefixes(statement: dict) -> set[str]:
    """'input/*' for each `<DataBucket.Arn>/input/*` resource of the statement."""
    found = set()
    for resource in _list(statement["Resource"]):
        if isinstance(resource, dict) and "Fn::Join" in resource:
            parts = resource["Fn::Join"][1]
            if parts[0] == {"Fn::GetAtt": [C.ID_DATA_BUCKET, "Arn"]}:
                found.add(parts[1].lstrip("/"))
    return found


def role_statements(template: dict, role_logical_id: str) -> list[dict]:
    policies = [
        res
        for res in template["Resources"].values()
        if res["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_logical_id} in res["Properties"]["Roles"]
    ]
    return [st for p in policies for st in p["Properties"]["PolicyDocument"]["Statement"]]


def grants(template: dict, role: str) -> dict[str, set[str]]:
    """action -> object prefixes it is allowed on (S3 object actions only)."""
    result: dict[str, set[str]] = {}
    for st in role_statements(template, role):
        for action in _list(st["Action"]):
            if action.startswith("s3:") and action != "s3:ListBucket":
                result.setdefault(action, set()).update(object_prefixes(st))
    return result


def list_prefixes(template: dict, role: str) -> list[str]:
    (st,) = [s for s in role_statements(template, role) if s["Action"] == "s3:ListBucket"]
    assert st["Resource"] == {"Fn::GetAtt": [C.ID_DATA_BUCKET, "Arn"]}
    return st["Condition"]["StringLike"]["s3:prefix"]


def logical_id_of_role(template: dict, prefix: str) -> str:
    (rid,) = [
        k
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::IAM::Role" and k.startswith(prefix)
    ]
    return rid


@pytest.mark.parametrize("which", ["template", "variant_template"])
def test_no_wildcard_actions_and_star_resources_only_where_required(
    which: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(which)
    for logical_id, st in statements(template):
        if st["Effect"] != "Allow":
            continue
        actions = _list(st["Action"])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (logical_id, action)
            assert action != "s3:*", logical_id
        if "*" in _list(st["Resource"]):
            auto_delete = logical_id.startswith("CustomS3AutoDeleteObjects")
            assert set(actions) <= STAR_RESOURCE_ACTIONS or auto_delete, (logical_id, actions)


def test_predict_role_is_scoped_to_prefixes(template: dict) -> None:
    assert grants(template, C.ID_PREDICT_ROLE) == {
        "s3:GetObject": {"input/*", "models/*", "output/*", "partial/*"},
        "s3:GetObjectVersion": {"input/*", "models/*", "output/*", "partial/*"},
        "s3:PutObject": {"output/*", "partial/*"},
        "s3:AbortMultipartUpload": {"output/*", "partial/*"},
        "s3:DeleteObject": {"partial/*", "output/*/summary.json", "output/*/error.json"},
    }
    assert sorted(list_prefixes(template, C.ID_PREDICT_ROLE)) == [
        "input/*", "models/*", "output/*", "partial/*",
    ]  # fmt: skip


def test_train_role_is_scoped_to_prefixes(template: dict) -> None:
    assert grants(template, C.ID_TRAIN_ROLE) == {
        "s3:GetObject": {"training/*", "input/*", "models/*"},
        "s3:GetObjectVersion": {"training/*", "input/*", "models/*"},
        "s3:PutObject": {"models/*"},
        "s3:AbortMultipartUpload": {"models/*"},
        "s3:DeleteObject": {"models/*/reserved.json", "models/*/runs/*"},
    }
    assert sorted(list_prefixes(template, C.ID_TRAIN_ROLE)) == ["input/*", "models/*", "training/*"]


def _definition_arn(name: str) -> dict:
    return {
        "Fn::Join": [
            "",
            [
                "arn:", {"Ref": "AWS::Partition"}, ":batch:", {"Ref": "AWS::Region"}, ":",
                {"Ref": "AWS::AccountId"}, f":job-definition/{name}",
            ],
        ]
    }  # fmt: skip


@pytest.mark.parametrize("which", ["template", "variant_template"])
def test_the_predict_role_submits_only_to_its_queue_and_predict_definitions(
    which: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(which)
    batch = [
        st
        for st in role_statements(template, C.ID_PREDICT_ROLE)
        if any(a.startswith("batch:") for a in _list(st["Action"]))
    ]
    (st,) = batch
    assert st["Action"] == "batch:SubmitJob" and st["Effect"] == "Allow"
    names = [
        res["Properties"]["JobDefinitionName"]
        for lid, res in template["Resources"].items()
        if lid in (C.ID_PREDICT_JOB, C.ID_PREDICT_LARGE_JOB)
    ]
    assert names and all(n.endswith(("-predict", "-predict-large")) for n in names)
    expected = [{"Fn::GetAtt": [C.ID_JOB_QUEUE, "JobQueueArn"]}]
    for name in names:
        expected += [_definition_arn(name), _definition_arn(f"{name}:*")]
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, st["Resource"])) == sorted(map(key, expected))
    for role in (C.ID_TRAIN_ROLE, C.ID_ASSESS_ROLE):
        actions = {a for s in role_statements(template, role) for a in _list(s["Action"])}
        assert not any(a.startswith("batch:") for a in actions), role


def test_job_roles_have_nothing_else(template: dict) -> None:
    for role in (C.ID_PREDICT_ROLE, C.ID_TRAIN_ROLE):
        actions = {a for st in role_statements(template, role) for a in _list(st["Action"])}
        extra = {"batch:SubmitJob"} if role == C.ID_PREDICT_ROLE else set()
        assert all(a.startswith("s3:") for a in actions - extra), actions
        props = template["Resources"][role]["Properties"]
        assert "ManagedPolicyArns" not in props
        assert props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "ecs-tasks.amazonaws.com"
        }


def test_notify_grants(template: dict) -> None:
    role = logical_id_of_role(template, "NotificationsNotifyRole")
    assert grants(template, role) == {
        "s3:GetObject": {"output/*", "models/*/runs/*", "notified/*"},
        "s3:PutObject": {"notified/*"},
        "s3:DeleteObject": {"notified/*"},
    }
    assert sorted(list_prefixes(template, role)) == ["models/*", "notified/*", "output/*"]
    sts = role_statements(template, role)
    publish = [s for s in sts if s["Action"] == "sns:Publish"]
    assert [s["Resource"] for s in publish] == [{"Ref": C.ID_TOPIC}]
    secret = [s for s in sts if "secretsmanager:GetSecretValue" in _list(s["Action"])]
    assert [s["Resource"] for s in secret] == [{"Ref": C.ID_LINK_SECRET}]


def test_link_grants(template: dict) -> None:
    role = logical_id_of_role(template, "NotificationsLinkRole")
    assert grants(template, role) == {"s3:GetObject": {"output/*"}}
    actions = {a for st in role_statements(template, role) for a in _list(st["Action"])}
    assert "sns:Publish" not in actions
    assert "secretsmanager:GetSecretValue" in actions


def test_reject_only_touches_markers(template: dict) -> None:
    role = logical_id_of_role(template, "NotificationsRejectRole")
    assert grants(template, role) == {
        "s3:GetObject": {"notified/*"},
        "s3:PutObject": {"notified/*"},
        "s3:DeleteObject": {"notified/*"},
    }
    assert list_prefixes(template, role) == ["notified/*"]
    actions = {a for st in role_statements(template, role) for a in _list(st["Action"])}
    assert "sns:Publish" in actions
    assert "secretsmanager:GetSecretValue" not in actions


def test_lambda_roles_have_no_managed_policies(template: dict) -> None:
    for name in ("Notify", "Reject", "Link"):
        role = logical_id_of_role(template, f"Notifications{name}Role")
        assert "ManagedPolicyArns" not in template["Resources"][role]["Properties"]


def test_uploader_restriction(variant_template: dict) -> None:
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in variant_template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": C.ID_DATA_BUCKET}
    ]
    (deny,) = [s for p in policies for s in p if s.get("Sid") == "OnlyAllowedUploadersWriteInput"]
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == "s3:PutObject"
    assert object_prefixes(deny) == {"input/*"}
    allowed = deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert list(deny["Condition"]) == ["ArnNotLike"]
    assert allowed[0] == "arn:aws:iam::111122223333:role/uploader"
    # and the API's uploads role, which signs the tenants' presigned POSTs (cdk/api/)
    assert len(allowed) == 2 and ":role/RasterdropVariant-api-uploads-" in str(allowed[1])
