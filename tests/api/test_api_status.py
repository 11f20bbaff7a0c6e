"""``GET /v1/results``'s status rule on moto S3: every state, for this version of the upload."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws
from rasterdrop_api import status
from rasterdrop_api.settings import ApiSettings

from rasterdrop_notify import keyring
from rasterdrop_notify.settings import Settings
from rasterdrop_notify.tokens import verify_token

BUCKET = "data"
KEY = "input/acme/field.tif"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "k" * 40


@pytest.fixture
def aws():
    with mock_aws():
        keyring.clear_cache()
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sm = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = sm.create_secret(Name="link", SecretString=json.dumps({"key": SECRET}))["ARN"]
        settings = ApiSettings(
            base=Settings(bucket=BUCKET, topic_arn="", link_base_url="https://link.example/",
                          link_secret_arn=arn, max_input_bytes=1000),
            model_name="demo",
        )  # fmt: skip
        yield s3, sm, settings
        keyring.clear_cache()


def ask(aws, key: str = KEY, tenant: str = "acme") -> tuple[int, dict]:
    s3, sm, settings = aws
    answer = status.result(key, tenant, s3=s3, secrets=sm, settings=settings, now=NOW)
    return answer["statusCode"], json.loads(answer["body"])


def put(s3, key: str, body: bytes | dict) -> str | None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return s3.put_object(Bucket=BUCKET, Key=key, Body=data).get("VersionId")


def test_states_follow_the_objects_of_this_version(aws) -> None:
    s3, _, _ = aws
    assert ask(aws)[0] == 404
    old = put(s3, KEY, b"II*\x00old")
    put(s3, "output/acme/field/summary.json", {"input": {"version_id": old}, "outputs": {}})
    new = put(s3, KEY, b"II*\x00new")
    code, doc = ask(aws)
    assert (code, doc["status"]) == (200, "pending")  # the summary is the old version's
    put(s3, "models/demo/current.json", {"version": "v1"})
    rid = status.run_id(BUCKET, KEY, new, "demo", "v1")
    put(s3, f"partial/{rid}/lease.json", {"owner": "job"})
    assert ask(aws)[1]["status"] == "running"
    put(s3, "output/acme/field/error.json", {"input": {"version_id": new}, "category":
        "invalid_input", "code": "band_count", "message": "4 bands expected, got 3"})  # fmt: skip
    doc = ask(aws)[1]
    assert doc["status"] == "failed" and doc["error"]["code"] == "band_count"
    summary = {
        "input": {"version_id": new},
        "created_at": "2026-06-01T11:00:00Z",
        "outputs": {"classes": "output/acme/field/classes.tif", "bogus": "input/acme/x.tif"},
    }
    put(s3, "output/acme/field/summary.json", summary)
    doc = ask(aws)[1]
    assert doc["status"] == "succeeded" and set(doc["links"]) == {"classes"}
    token = doc["links"]["classes"].split("?t=", 1)[1]
    claim = verify_token(token, [SECRET.encode()], NOW.timestamp())
    assert claim.key == "output/acme/field/classes.tif"
    assert doc["links_expire_at"] == "2026-06-08T12:00:00Z"  # 7 days from now


def test_rejected_oversize_and_the_other_tenants_404(aws) -> None:
    s3, _, _ = aws
    put(s3, "input/acme/huge.tif", b"0" * 1001)
    code, doc = ask(aws, "input/acme/huge.tif")
    assert (code, doc["status"], doc["error"]["code"]) == (200, "rejected", "too_large")
    put(s3, "input/beta/field.tif", b"II*\x00")
    assert ask(aws, "input/beta/field.tif")[0] == 404
    assert ask(aws, "input/acme/../beta/field.tif")[0] == 404
