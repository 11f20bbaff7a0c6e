"""The API's plain modules: token hashing (constant time), the authorizer's answers, the
run id the status route computes (the job's), the header regex (the template's)."""

from __future__ import annotations

import hmac

import boto3
import pytest
from moto import mock_aws
from rasterdrop_api import authorizer, credentials, status
from rasterdrop_api.store import TokenRecord, UsageKey, write_record

from batch_image.jobs.request import run_id as job_run_id
from cdk.api import names

PREFIX = "/rasterdrop/Test/api/tokens/"
ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc/api/"


def test_the_hash_comparison_is_hmac_compare_digest(monkeypatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    new = credentials.new_token()
    parsed = credentials.parse(new.token)
    assert credentials.matches(parsed, new.salt, new.digest)
    wrong = credentials.ParsedToken(parsed.token_id, "A" * 43)
    assert not credentials.matches(wrong, new.salt, new.digest)
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)
    import inspect

    source = inspect.getsource(credentials.matches)
    assert "==" not in source  # no early-exit comparison beside it


def test_only_a_salted_hash_is_stored() -> None:
    a, b = credentials.new_token(), credentials.new_token()
    assert a.salt != b.salt and a.token_id != b.token_id
    secret = a.token.rsplit("_", 1)[1]
    assert secret not in a.digest and a.token not in (a.salt, a.digest)


def test_the_template_regex_is_the_handlers() -> None:
    assert names.TOKEN_HEADER_REGEX == credentials.HEADER_REGEX
    import re

    token = credentials.new_token().token
    assert re.match(names.TOKEN_HEADER_REGEX, f"Bearer {token}")
    assert not re.match(names.TOKEN_HEADER_REGEX, f"Bearer {token}x")


@pytest.mark.parametrize("version", ["3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", None])
def test_the_status_route_computes_the_jobs_run_id(version) -> None:
    args = ("bucket", "input/acme/ä b+c.tif", version or "etag123", "demo", "20261126T090000Z")
    assert status.run_id(*args) == job_run_id(*args)


@pytest.fixture
def ssm():
    with mock_aws():
        authorizer.clear_cache()
        yield boto3.client("ssm", region_name="eu-west-1")
        authorizer.clear_cache()


def _issue(ssm, tenant: str = "acme", revoked: str | None = None) -> str:
    new = credentials.new_token()
    usage = {k: UsageKey(f"plan-{k}", f"key-{k}", f"value-{k}") for k in ("uploads", "reads")}
    record = TokenRecord(new.token_id, tenant, new.salt, new.digest, "2026-12-01T00:00:00Z",
                         revoked, "", usage)  # fmt: skip
    write_record(ssm, PREFIX, record, overwrite=False)
    return new.token


def test_authorizer_allows_with_the_plan_key_of_the_route(ssm) -> None:
    token = _issue(ssm)
    up = authorizer.authorize(
        {"authorizationToken": f"Bearer {token}", "methodArn": ARN + "POST/v1/uploads"},
        ssm, PREFIX,
    )  # fmt: skip
    assert up["principalId"] == "acme" and up["usageIdentifierKey"] == "value-uploads"
    assert up["policyDocument"]["Statement"][0] == {
        "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN + "POST/v1/uploads",
    }  # fmt: skip
    assert up["context"] == {
        "tenant": "acme", "token_id": token.split("_")[1],
        "uploads_plan_id": "plan-uploads", "uploads_key_id": "key-uploads",
    }  # fmt: skip
    read = authorizer.authorize(
        {"authorizationToken": f"Bearer {token}", "methodArn": ARN + "GET/v1/results"}, ssm, PREFIX
    )
    assert read["usageIdentifierKey"] == "value-reads"


def test_authorizer_refuses_unknown_wrong_and_revoked(ssm) -> None:
    token = _issue(ssm)
    for bad in (
        "",
        "Bearer",
        "Basic abc",
        f"Bearer {token[:-1]}B",
        "Bearer rdt_" + "0" * 16 + "_" + "A" * 43,
    ):
        with pytest.raises(authorizer.Unauthorized, match=r"^Unauthorized$"):
            authorizer.authorize({"authorizationToken": bad, "methodArn": ARN}, ssm, PREFIX)
    revoked = _issue(ssm, revoked="2026-12-01T01:00:00Z")
    answer = authorizer.authorize(
        {"authorizationToken": f"Bearer {revoked}", "methodArn": ARN + "GET/v1/usage"}, ssm, PREFIX
    )
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "usageIdentifierKey" not in answer


def test_token_admin_issue_list_revoke(ssm) -> None:
    import argparse

    from rasterdrop_api.admin import AdminError, TokenAdmin, run

    apigw = boto3.client("apigateway", region_name="eu-west-1")
    keys = {k: apigw.create_api_key(name=f"acme-{k}", enabled=True) for k in ("uploads", "reads")}
    tenants = {"acme": {k: {"plan_id": f"p-{k}", "key_id": v["id"]} for k, v in keys.items()}}
    admin = TokenAdmin(ssm=ssm, apigateway=apigw, parameter_prefix=PREFIX, tenants=tenants)
    lines: list[str] = []
    args = argparse.Namespace(command="issue", tenant="acme", label="ci")
    assert run(admin, "https://api.example/api/", args, lines.append) == 0
    assert lines[1] == "RASTERDROP_API_URL=https://api.example/api/"
    token = lines[2].removeprefix("RASTERDROP_TOKEN=")
    parsed = credentials.parse(token)
    stored = ssm.get_parameter(Name=PREFIX + parsed.token_id, WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and parsed.secret not in stored["Value"]
    (record,) = admin.list("acme")
    assert record.usage["uploads"].key == keys["uploads"]["value"] and record.revoked_at is None
    answer = authorizer.authorize(
        {"authorizationToken": f"Bearer {token}", "methodArn": ARN + "POST/v1/uploads"}, ssm, PREFIX
    )
    assert answer["usageIdentifierKey"] == keys["uploads"]["value"]
    assert admin.revoke(parsed.token_id).revoked_at
    assert admin.list()[0].revoked_at
    with pytest.raises(AdminError, match="no tenant 'nobody'"):
        admin.issue("nobody")
    with pytest.raises(AdminError, match="no token"):
        admin.revoke("0" * 16)
