"""Fixtures for the Lambda handler tests: moto account, topic captured by SQS, signing secret."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import datetime

import boto3
import pytest
from moto import mock_aws
from notify_support import BUCKET, LINK_BASE, NOW, REGION, SECRET_KEY, Aws, FakeContext


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "rasterdrop",
        "POWERTOOLS_METRICS_NAMESPACE": "Rasterdrop",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "RASTERDROP_BUCKET": BUCKET,
        "RASTERDROP_INPUT_PREFIX": "input/",
        "RASTERDROP_OUTPUT_PREFIX": "output/",
        "RASTERDROP_LINK_TTL_DAYS": "7",
        "RASTERDROP_LINK_BASE_URL": LINK_BASE,
        "RASTERDROP_MAX_INPUT_BYTES": str(10 * 1024**3),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


@pytest.fixture
def aws(env: pytest.MonkeyPatch):
    from rasterdrop_notify import keyring, runtime

    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        topic_arn = sns.create_topic(Name="rasterdrop-notifications")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="captured")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "false"},
        )
        secret_arn = secrets.create_secret(
            Name="rasterdrop/link-signing", SecretString=json.dumps({"key": SECRET_KEY})
        )["ARN"]
        env.setenv("RASTERDROP_TOPIC_ARN", topic_arn)
        env.setenv("RASTERDROP_LINK_SECRET_ARN", secret_arn)
        runtime.reset()
        keyring.clear_cache()
        yield Aws(s3, sns, sqs, secrets, topic_arn, queue_url, secret_arn)
        runtime.reset()
        keyring.clear_cache()


@pytest.fixture
def now(aws: Aws) -> datetime:
    """Freeze the handlers' clock at ``NOW`` (after ``aws``, whose reset restores the real one)."""
    from rasterdrop_notify import runtime
    from rasterdrop_notify.clock import frozen_clock

    runtime.use_clock(frozen_clock(NOW))
    return NOW


# The sandbox's Lambda runtime drops every module under handlers/ from sys.modules after each
# invocation (a cold start per call), so a test module's top-level ``rasterdrop_notify.runtime``
# may be stale by the time a test runs: reach runtime through these fixtures instead.


@pytest.fixture
def set_now(now: datetime) -> Callable[[datetime], None]:
    """``set_now(when)``: the handlers' clock now answers ``when``."""

    def set_(when: datetime) -> None:
        from rasterdrop_notify import runtime
        from rasterdrop_notify.clock import frozen_clock

        runtime.use_clock(frozen_clock(when))

    return set_


@pytest.fixture
def reread_env(set_now: Callable[[datetime], None]) -> Callable[[], None]:
    """``reread_env()``: forget cached settings and clients (after changing the environment),
    keeping the clock frozen at ``NOW``."""

    def reread() -> None:
        from rasterdrop_notify import runtime

        runtime.reset()
        set_now(NOW)

    return reread


@pytest.fixture
def handlers(aws: Aws, now: datetime):
    """The handler modules, imported after the environment is set (Powertools reads it), with
    their clock frozen at ``NOW``: no handler test depends on the date it runs on."""
    return {name: importlib.import_module(name) for name in ("notify", "reject", "link")}
