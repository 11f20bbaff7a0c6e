"""reject.handler on moto: an oversize upload gets one rejection message, no job."""

from __future__ import annotations

from notify_support import BUCKET, load_event


def _attrs(envelope: dict) -> dict[str, str]:
    return {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}


def test_oversize_upload_is_rejected_with_sizes(aws, handlers, context):
    out = handlers["reject"].handler(load_event("s3_object_created_oversize.json"), context)
    assert out["action"] == "published"
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: huge scene.tif rejected (too large)"
    assert _attrs(msg) == {"status": "rejected", "tenant": "acme"}
    body = " ".join(msg["Message"].split())
    assert f"s3://{BUCKET}/input/acme/huge scene.tif" in body
    assert "Size 20.0 GiB; the limit is 10.0 GiB" in body
    assert "Split the raster into tiles under the limit" in body
    assert "version uhggCJ2_B6gU2JaXWXebnXFDstO0ID6G" in body


def test_rejection_is_sent_once_per_version(aws, handlers, context):
    event = load_event("s3_object_created_oversize.json")
    actions = [handlers["reject"].handler(event, context)["action"] for _ in range(2)]
    again = load_event("s3_object_created_oversize.json")
    again["detail"]["object"]["version-id"] = "a-second-upload-of-the-same-key"
    actions.append(handlers["reject"].handler(again, context)["action"])
    assert actions == ["published", "duplicate", "published"]
    assert len(aws.messages()) == 2


def test_plus_in_key_is_kept_raw(aws, handlers, context):
    event = load_event("s3_object_created_oversize.json")
    event["detail"]["object"]["key"] = "input/acme/c++ scene+1.tif"
    handlers["reject"].handler(event, context)
    [msg] = aws.messages()
    assert msg["Subject"] == "rasterdrop: c++ scene+1.tif rejected (too large)"
    assert "input/acme/c++ scene+1.tif" in msg["Message"]


def test_upload_within_the_limit_is_not_rejected(aws, handlers, context):
    event = load_event("s3_object_created_oversize.json")
    event["detail"]["object"]["size"] = 10 * 1024**3  # exactly the limit: allowed
    assert handlers["reject"].handler(event, context)["action"] == "skipped"
    assert aws.messages() == []
