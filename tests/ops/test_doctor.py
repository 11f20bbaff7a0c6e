"""`make doctor` against moto: a fresh account fails each check with what to do; a prepared,
deployed one passes. Service Quotas and Lambda's account settings (which moto does not
serve) come through `Limits`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import boto3
import pytest
from moto import mock_aws

from cdk.config import RasterdropConfig
from ops.doctor import (
    BOOTSTRAP_PARAMETER,
    SPOT_ROLE,
    Clients,
    check_instance_families,
    check_subscriptions,
    doctor,
    failed,
)

REGION = "eu-west-1"
CONFIG = RasterdropConfig()  # the defaults: spot, max_vcpus 64, jobs of 4/8/8 vCPUs


@dataclass
class FakeLimits:
    spot: float | None = 5.0  # a new account's standard Spot quota
    on_demand: float | None = 32.0
    concurrency: int | None = 10  # what some new accounts get

    def vcpu_quota(self, kind: str) -> float | None:
        return self.spot if kind == "spot" else self.on_demand

    def lambda_concurrency(self) -> int | None:
        return self.concurrency


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        names = ("sts", "ssm", "ec2", "iam", "cloudformation", "sns", "s3")
        yield Clients(**{n: boto3.client(n, region_name=REGION) for n in names})


def by_check(lines) -> dict[str, tuple[str, str]]:
    return {line.check: (line.status, line.text) for line in lines}


def prepare_account(aws: Clients) -> None:
    aws.ssm.put_parameter(Name=BOOTSTRAP_PARAMETER, Value="28", Type="String")
    aws.iam.create_role(
        RoleName=SPOT_ROLE,
        Path="/aws-service-role/spot.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )


def deploy_stack(aws: Clients, *, model: bool) -> str:
    """A stack named like ours whose outputs name a bucket and two topics (moto creates them)."""
    template = {
        "Resources": {
            "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "rd-data"}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "rd"}},
            "Ops": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "rd-ops"}},
        },
        "Outputs": {
            "BucketName": {"Value": {"Ref": "Data"}},
            "TopicArn": {"Value": {"Ref": "Topic"}},
            "OpsTopicArn": {"Value": {"Ref": "Ops"}},
        },
    }
    aws.cloudformation.create_stack(StackName=CONFIG.stack_name, TemplateBody=json.dumps(template))
    topics = {
        t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in aws.sns.list_topics()["Topics"]
    }
    aws.sns.subscribe(TopicArn=topics["rd"], Protocol="email", Endpoint="me@example.com")
    aws.sns.subscribe(TopicArn=topics["rd-ops"], Protocol="email", Endpoint="ops@example.com")
    if model:
        aws.s3.put_object(Bucket="rd-data", Key="models/demo/current.json", Body=b'{"version":"v"}')
    return "rd-data"


def test_fresh_account_fails_with_what_to_do(aws: Clients) -> None:
    lines = doctor(aws, FakeLimits(), CONFIG)
    checks = by_check(lines)
    assert failed(lines)
    assert checks["target"] == ("OK", f"account 123456789012, region {REGION}, stack Rasterdrop")
    status, text = checks["bootstrap"]
    assert status == "FAIL" and "npx aws-cdk@2 bootstrap aws://123456789012/eu-west-1" in text
    status, text = checks["vcpu quota"]
    assert status == "FAIL"
    assert "5 vCPUs, below the largest job (8 vCPUs)" in text
    assert "--quota-code L-34B43A08 --desired-value 64" in text
    assert "-c spot=false" in text
    status, text = checks["spot role"]
    assert status == "FAIL" and "--aws-service-name spot.amazonaws.com" in text
    status, text = checks["lambda concurrency"]
    assert status == "FAIL" and "account limit 10 < 20" in text
    assert checks["instance families"][0] == "OK"  # c6i, c7i, m6i, c6a are all in eu-west-1
    assert checks["stack"][0] == "WARN" and "not deployed yet" in checks["stack"][1]


def test_prepared_account_passes_before_deploy(aws: Clients) -> None:
    prepare_account(aws)
    lines = doctor(aws, FakeLimits(spot=64, concurrency=1000), CONFIG)
    checks = by_check(lines)
    assert not failed(lines)
    assert checks["bootstrap"] == ("OK", "CDK bootstrap version 28")
    assert checks["spot role"][0] == "OK"
    assert checks["vcpu quota"][0] == "OK"
    assert checks["lambda concurrency"] == ("OK", "account limit 1000 >= 20")


def test_quota_between_the_largest_job_and_max_vcpus_warns(aws: Clients) -> None:
    prepare_account(aws)
    checks = by_check(doctor(aws, FakeLimits(spot=16, concurrency=1000), CONFIG))
    status, text = checks["vcpu quota"]
    assert status == "WARN" and "below max_vcpus 64: jobs queue beyond that" in text


def test_on_demand_uses_its_own_quota_and_needs_no_spot_role(aws: Clients) -> None:
    cfg = replace(CONFIG, spot=False)
    checks = by_check(doctor(aws, FakeLimits(spot=0, on_demand=4, concurrency=1000), cfg))
    status, text = checks["vcpu quota"]
    assert status == "FAIL" and "L-1216C47A" in text and "spot=false" not in text
    assert checks["spot role"] == ("OK", "not needed (spot: false)")


def test_unreadable_quota_is_a_warning_not_a_pass(aws: Clients) -> None:
    checks = by_check(doctor(aws, FakeLimits(spot=None, concurrency=None), CONFIG))
    assert checks["vcpu quota"][0] == "WARN"
    assert checks["lambda concurrency"][0] == "WARN"


def test_families_missing_in_the_region() -> None:
    with mock_aws():
        some = check_instance_families(
            boto3.client("ec2", region_name="af-south-1"), CONFIG, "af-south-1"
        )
        none = check_instance_families(
            boto3.client("ec2", region_name="ap-southeast-4"),
            replace(CONFIG, instance_types=("c6i", "m6i")),
            "ap-southeast-4",
        )
    # moto's snapshot of DescribeInstanceTypeOfferings: af-south-1 has no c6a,
    # ap-southeast-4 none of c6i/m6i
    assert some.status == "WARN" and some.text.startswith("c6a not offered in af-south-1")
    assert none.status == "FAIL" and "none of c6i, m6i is offered in ap-southeast-4" in none.text


def test_after_deploy_subscriptions_and_model(aws: Clients) -> None:
    prepare_account(aws)
    deploy_stack(aws, model=False)
    checks = by_check(doctor(aws, FakeLimits(spot=64, concurrency=1000), CONFIG))
    assert checks["stack"] == ("OK", "Rasterdrop deployed, bucket rd-data")
    assert checks["notification subscriptions"] == ("OK", "1 confirmed")
    assert checks["ops subscriptions"] == ("OK", "1 confirmed")
    status, text = checks["model"]
    assert status == "FAIL" and "models/demo/current.json is missing" in text
    assert "make bootstrap-model" in text

    aws.s3.put_object(Bucket="rd-data", Key="models/demo/current.json", Body=b'{"version":"v"}')
    lines = doctor(aws, FakeLimits(spot=64, concurrency=1000), CONFIG)
    assert not failed(lines)


class PendingSns:
    """SNS as AWS answers before the address owner clicks the link (moto confirms at once)."""

    def get_paginator(self, name: str):
        assert name == "list_subscriptions_by_topic"
        return self

    def paginate(self, TopicArn: str):
        yield {
            "Subscriptions": [
                {
                    "SubscriptionArn": "PendingConfirmation",
                    "Protocol": "email",
                    "Endpoint": "me@example.com",
                    "TopicArn": TopicArn,
                },
                {
                    "SubscriptionArn": f"{TopicArn}:1",
                    "Protocol": "email",
                    "Endpoint": "ok@example.com",
                    "TopicArn": TopicArn,
                },
            ]
        }


def test_pending_subscription_names_the_address() -> None:
    line = check_subscriptions(PendingSns(), "arn:aws:sns:eu-west-1:1:rd", "notification")
    assert line.status == "FAIL"
    assert "not confirmed: me@example.com" in line.text
    assert "Confirm subscription" in line.text


def test_cli_runs_every_check_and_fails_a_fresh_account(aws: Clients, monkeypatch) -> None:
    """`python -m ops doctor` (what `make doctor` runs): Service Quotas and Lambda's settings
    are not served by moto, so those lines are warnings, never passes."""
    from click.testing import CliRunner

    from ops.__main__ import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    result = CliRunner().invoke(main, ["doctor", "-c", "spot=false"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("OK   target: account 123456789012, region eu-west-1")
    assert any(line.startswith("FAIL bootstrap:") for line in lines)
    assert any(line.startswith("WARN vcpu quota: could not read") for line in lines)
    assert "OK   spot role: not needed (spot: false)" in lines
    assert any(line.startswith("WARN lambda concurrency:") for line in lines)
