"""S3 "Object Created" events built from a real HEAD on the moto server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sandbox.s3events import object_created_event, reason_for_etag
from sandbox.server import MotoServer

BUCKET = "sandbox-events-test"


@pytest.fixture(scope="module")
def s3() -> Iterator:
    with MotoServer(part_min_size=1024) as server:
        client = server.client("s3")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": server.region}
        )
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_put_object_event_has_aws_shape(s3) -> None:
    key = "input/acme/field 7+b.tif"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 1234)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    event = object_created_event(
        bucket=BUCKET, key=key, head=head, region="eu-west-1", account="123456789012"
    )
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["version"] == "0"
    assert event["detail-type"] == "Object Created"
    assert event["source"] == "aws.s3"
    assert event["resources"] == [f"arn:aws:s3:::{BUCKET}"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    detail = event["detail"]
    assert set(detail) == {
        "version",
        "bucket",
        "object",
        "request-id",
        "requester",
        "source-ip-address",
        "reason",
    }
    assert detail["bucket"] == {"name": BUCKET}
    obj = detail["object"]
    assert obj["key"] == key  # raw, not URL-encoded
    assert obj["size"] == 1234
    assert obj["etag"] == head["ETag"].strip('"')
    assert obj["version-id"] == head["VersionId"]
    assert re.fullmatch(r"[0-9A-F]{18}", obj["sequencer"])
    assert detail["reason"] == "PutObject"


def test_multipart_object_is_complete_multipart_upload(s3) -> None:
    key = "input/multi.tif"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts = []
    for n, body in enumerate([b"a" * 2048, b"b" * 100], start=1):
        part = s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], PartNumber=n, Body=body
        )
        parts.append({"ETag": part["ETag"], "PartNumber": n})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = s3.head_object(Bucket=BUCKET, Key=key)
    event = object_created_event(
        bucket=BUCKET, key=key, head=head, region="eu-west-1", account="123456789012"
    )
    assert event["detail"]["reason"] == "CompleteMultipartUpload"
    assert event["detail"]["object"]["etag"].endswith("-2")
    assert event["detail"]["object"]["size"] == 2148


def test_sequencers_increase_and_reason_is_checked() -> None:
    head = {"ETag": '"abc"', "ContentLength": 1}
    a = object_created_event(bucket="b", key="k", head=head, region="r", account="1")
    b = object_created_event(bucket="b", key="k", head=head, region="r", account="1")
    assert b["detail"]["object"]["sequencer"] > a["detail"]["object"]["sequencer"]
    assert "version-id" not in a["detail"]["object"]  # unversioned bucket
    assert reason_for_etag('"d41d8cd98f00b204e9800998ecf8427e-12"') == "CompleteMultipartUpload"
    with pytest.raises(ValueError):
        object_created_event(bucket="b", key="k", head=head, region="r", account="1", reason="Nope")


def test_the_tap_turns_every_write_into_one_event_as_it_happens(s3) -> None:
    from sandbox.s3events import S3EventTap

    got: list[dict] = []
    tap = S3EventTap([BUCKET], region="eu-west-1", account="123456789012", deliver=got.append)
    tap.install()
    try:
        put = s3.put_object(Bucket=BUCKET, Key="input/tapped.tif", Body=b"y" * 10)
        # delivered before the writer got its answer: no listing, no polling
        assert [e["detail"]["object"]["key"] for e in got] == ["input/tapped.tif"]
        obj = got[0]["detail"]["object"]
        head = s3.head_object(Bucket=BUCKET, Key="input/tapped.tif")
        assert obj["version-id"] == put["VersionId"] == head["VersionId"]
        assert (obj["size"], obj["etag"]) == (10, head["ETag"].strip('"'))
        assert got[0]["detail"]["reason"] == "PutObject"
        assert tap.event_for(BUCKET, "input/tapped.tif", put["VersionId"]) is got[0]
        s3.copy_object(Bucket=BUCKET, Key="input/copied.tif",
                       CopySource={"Bucket": BUCKET, "Key": "input/tapped.tif"})  # fmt: skip
        assert got[-1]["detail"]["reason"] == "CopyObject"
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key="input/parts.tif")
        part = s3.upload_part(Bucket=BUCKET, Key="input/parts.tif", UploadId=upload["UploadId"],
                              PartNumber=1, Body=b"p" * 10)  # fmt: skip
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key="input/parts.tif", UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )  # fmt: skip
        assert got[-1]["detail"]["reason"] == "CompleteMultipartUpload"
        assert len(got) == 3  # one event for the multipart object, not two
        s3.delete_object(Bucket=BUCKET, Key="input/copied.tif")  # not an Object Created
        s3.list_object_versions(Bucket=BUCKET)  # listings are not events
        assert len(got) == 3
    finally:
        tap.uninstall()
    s3.put_object(Bucket=BUCKET, Key="input/after.tif", Body=b"z")
    assert len(got) == 3  # uninstalled: nothing more
