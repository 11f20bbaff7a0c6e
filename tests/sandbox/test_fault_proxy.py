"""The fault proxy in front of moto: each fault does what it says, and retries get through."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.faults.proxy import FaultPlan, FaultProxy, Shares, service_of
from sandbox.server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MotoServer

BUCKET = "fault-proxy-test"


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with MotoServer() as srv:
        where = {"LocationConstraint": srv.region}
        srv.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration=where)
        yield srv


def _client(url: str, attempts: int) -> object:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts},
                      connect_timeout=5, read_timeout=10),
    )  # fmt: skip


def _proxy(server: MotoServer, **shares: float) -> FaultProxy:
    proxy = FaultProxy(server.endpoint, FaultPlan(s3=Shares(**shares), seed=7)).start()
    proxy.arm()
    return proxy


def _exists(server: MotoServer, key: str) -> bool:
    try:
        server.client("s3").head_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return False
    return True


def test_an_error_answer_never_reaches_the_server(server) -> None:
    proxy = _proxy(server, error=1.0)
    try:
        with pytest.raises(ClientError) as info:
            _client(proxy.url, 1).put_object(Bucket=BUCKET, Key="e.bin", Body=b"x")
        assert info.value.response["Error"]["Code"] == "SlowDown"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert not _exists(server, "e.bin")
        assert proxy.injected[("s3", "error")] == 1
    finally:
        proxy.stop()


def test_a_reset_before_the_server_acts(server) -> None:
    proxy = _proxy(server, drop_before=1.0)
    try:
        with pytest.raises(Exception) as info:
            _client(proxy.url, 1).put_object(Bucket=BUCKET, Key="b.bin", Body=b"x")
        assert not isinstance(info.value, ClientError)  # no answer at all
        assert not _exists(server, "b.bin")
    finally:
        proxy.stop()


def test_a_reset_after_the_server_acted_is_a_lost_answer(server) -> None:
    proxy = _proxy(server, drop_after=1.0)
    try:
        with pytest.raises(Exception) as info:
            _client(proxy.url, 1).put_object(Bucket=BUCKET, Key="a.bin", Body=b"x")
        assert not isinstance(info.value, ClientError)
        assert _exists(server, "a.bin")  # the write happened; the writer does not know
    finally:
        proxy.stop()


def test_retries_get_through_a_bad_day_with_the_bytes_intact(server) -> None:
    proxy = _proxy(server, error=0.15, drop_before=0.05, drop_after=0.05)
    s3 = _client(proxy.url, 10)
    try:
        for i in range(20):
            body = bytes([i]) * (1000 + i)
            s3.put_object(Bucket=BUCKET, Key=f"r/{i}.bin", Body=body)
            assert s3.get_object(Bucket=BUCKET, Key=f"r/{i}.bin")["Body"].read() == body
            assert s3.head_object(Bucket=BUCKET, Key=f"r/{i}.bin")["ContentLength"] == len(body)
        assert proxy.total() > 0 and proxy.total("error") > 0
    finally:
        proxy.stop()


def test_unarmed_proxy_forwards_everything(server) -> None:
    proxy = FaultProxy(server.endpoint, FaultPlan(s3=Shares(error=1.0))).start()
    try:
        _client(proxy.url, 1).put_object(Bucket=BUCKET, Key="clean.bin", Body=b"x")
        assert proxy.total() == 0 and proxy.requests["s3"] == 1
    finally:
        proxy.stop()


def test_requests_are_told_apart_by_service() -> None:
    assert service_of("PUT", "/bucket/key.tif", b"") == "s3"
    assert service_of("POST", "/", b"Action=Publish&TopicArn=arn") == "sns"
    assert service_of("POST", "/", b'{"SecretId": "x"}') == "other"
    assert service_of("POST", "/moto-api/reset", b"") == "other"
