"""The sandbox's API Gateway and S3 POST-policy emulation, on hand-made inputs (no synth)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.apigateway import ApiKey, Authorizer, RestApi, Route, UsagePlan
from sandbox.gateway import Bucket, Gateway
from sandbox.postgate import PolicyRefused, check_policy, parse_form, signing_key

SECRET = "sandbox-secret"
NOW = datetime(2026, 6, 1, 23, 59, 0, tzinfo=UTC)


def test_token_bucket_allows_burst_then_rate() -> None:
    b = Bucket(rate=2.0, burst=3.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5) is True and b.take(0.5) is False  # 0.5 s at 2/s: one token back


def _api(quota: int = 2) -> RestApi:
    route = Route("POST", "v1/uploads", "Fn", "Auth", True, None, (), False, False)
    return RestApi(
        logical_id="Api", api_id="abc", stage="api", routes=[route],
        authorizers={"Auth": Authorizer("Auth", "AuthFn", "TOKEN", "Authorization", None)},
        plans=[UsagePlan("P", "plan1", "p", 100.0, 100, quota, "DAY", ("key1",))],
        keys={"key1": ApiKey("K", "key1", "value1", "k")},
        responses={"QUOTA_EXCEEDED": (429, '{"code": "quota_exceeded"}')},
        access_log_format=None,
    )  # fmt: skip


def _invoke(fid: str, event: dict):
    if fid == "AuthFn":
        if event["authorizationToken"] != "Bearer good":
            return None, Exception("Unauthorized")
        allow = {"Effect": "Allow", "Resource": event["methodArn"], "Action": "execute-api:Invoke"}
        return {
            "principalId": "acme",
            "policyDocument": {"Statement": [allow]},
            "context": {"tenant": "acme"},
            "usageIdentifierKey": "value1",
        }, None
    assert event["requestContext"]["authorizer"]["tenant"] == "acme"
    return {"statusCode": 201, "body": "{}"}, None


def test_quota_is_per_utc_day_of_the_injected_clock() -> None:
    now = [NOW]
    gw = Gateway(_api(quota=2), _invoke, region="r", account="1", clock=lambda: now[0])
    call = lambda: gw.handle("POST", "/api/v1/uploads", {"Authorization": "Bearer good"}, b"", "ip")  # noqa: E731
    assert [call().status for _ in range(3)] == [201, 201, 429]
    assert json.loads(call().body) == {"code": "quota_exceeded"}
    now[0] = NOW + timedelta(minutes=2)  # the next UTC day: a fresh quota
    assert call().status == 201
    usage = gw.management("GET", "/usageplans/plan1/usage?keyId=key1&startDate=2026-06-01")
    assert json.loads(usage.body)["values"] == {"key1": [[2, 0]]}


def test_unknown_route_no_token_and_wrong_token() -> None:
    gw = Gateway(_api(), _invoke, region="r", account="1", clock=lambda: NOW)
    assert gw.handle("GET", "/api/v1/nothing", {}, b"", "ip").status == 403
    assert gw.handle("POST", "/api/v1/uploads", {}, b"", "ip").status == 401
    bad = gw.handle("POST", "/api/v1/uploads", {"Authorization": "Bearer bad"}, b"", "ip")
    assert bad.status == 401 and bad.error_type == "UNAUTHORIZED"


def _signed(conditions: list, expires: datetime) -> dict[str, str]:
    policy = base64.b64encode(
        json.dumps(
            {"expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "conditions": conditions}
        ).encode()
    ).decode()
    sig = hmac.new(signing_key(SECRET, "20260601", "eu-west-1"), policy.encode(), hashlib.sha256)
    return {
        "policy": policy,
        "x-amz-credential": "sandbox/20260601/eu-west-1/s3/aws4_request",
        "x-amz-signature": sig.hexdigest(),
        "key": "input/acme/a.tif",
    }


def test_post_policy_is_enforced_as_s3_does() -> None:
    conditions = [{"bucket": "b"}, {"key": "input/acme/a.tif"}, ["content-length-range", 1, 10]]
    fields = _signed(conditions, NOW + timedelta(minutes=5))
    check_policy("b", fields, 10, secret=SECRET, now=NOW)
    with pytest.raises(PolicyRefused, match="exceeds the maximum"):
        check_policy("b", fields, 11, secret=SECRET, now=NOW)
    with pytest.raises(PolicyRefused, match="expired"):
        check_policy("b", fields, 5, secret=SECRET, now=NOW + timedelta(minutes=6))
    with pytest.raises(PolicyRefused, match="Condition failed"):
        check_policy("b", {**fields, "key": "input/other/a.tif"}, 5, secret=SECRET, now=NOW)
    with pytest.raises(PolicyRefused) as forged:
        check_policy("b", {**fields, "x-amz-signature": "0" * 64}, 5, secret=SECRET, now=NOW)
    assert forged.value.code == "SignatureDoesNotMatch"
    starts = _signed([["starts-with", "$key", "input/acme/"]], NOW + timedelta(minutes=5))
    check_policy("b", starts, 5, secret=SECRET, now=NOW)
    with pytest.raises(PolicyRefused):
        check_policy("b", {**starts, "key": "output/x.tif"}, 5, secret=SECRET, now=NOW)


def test_form_parsing_keeps_the_file_bytes_exact() -> None:
    data = bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n"
    body = (
        b'--XYZ\r\nContent-Disposition: form-data; name="key"\r\n\r\ninput/a.tif\r\n'
        b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.tif"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--XYZ--\r\n"
    )
    fields, got = parse_form("multipart/form-data; boundary=XYZ", body)
    assert fields == {"key": "input/a.tif"} and got == data
