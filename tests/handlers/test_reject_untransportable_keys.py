"""reject.handler: keys the S3 event cannot carry to the job get a rejection naming the
characters (EventBridge's input transformer does not escape what it extracts)."""

from __future__ import annotations

import pytest
from notify_support import load_event

from rasterdrop_notify.key_transport import untransportable


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ('input/acme/say "hi".tif', 'a double quote (")'),
        ("input/acme/C:\\scans\\a.tif", "a backslash (\\)"),
        ("input/acme/tab\there.tif", "a tab"),
    ],
)
def test_key_with_character_the_event_cannot_carry_is_rejected(aws, handlers, context, key, named):
    event = load_event("s3_object_created_oversize.json")
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["size"] = 1234  # well within the limit: the name alone decides
    out = handlers["reject"].handler(event, context)
    assert out["action"] == "published"
    [msg] = aws.messages()
    assert msg["Subject"].startswith("rasterdrop: ")
    assert msg["Subject"].endswith(" rejected (unsupported name)")
    body = flat(msg["Message"])
    assert f"The file name contains {named}, which the upload event cannot pass" in body
    assert "Rename the file without double quotes" in body
    assert flat(key) in body  # the key as uploaded (the tab shows as a space)
    # once per version, like every rejection
    assert handlers["reject"].handler(event, context)["action"] == "duplicate"


def test_every_character_is_named_once_in_order():
    assert untransportable('input/a\\"b\t"c\\.tif') == [
        "a backslash (\\)",
        'a double quote (")',
        "a tab",
    ]
    assert untransportable("input/a\x01b\x7f.tif") == [
        "a control character (U+0001)",
        "a control character (U+007F)",
    ]


@pytest.mark.parametrize(
    "key", ["input/acme/c++ scene+1.tif", "input/acme/é ü 中.tif", "input/acme/it's (1).tif"]
)
def test_ordinary_keys_are_carried(key):
    assert untransportable(key) == []


def test_ordinary_key_within_limit_still_skipped(aws, handlers, context):
    event = load_event("s3_object_created_oversize.json")
    event["detail"]["object"]["key"] = "input/acme/it's (1).tif"
    event["detail"]["object"]["size"] = 1234
    assert handlers["reject"].handler(event, context)["action"] == "skipped"
    assert aws.messages() == []


def test_a_job_on_such_a_key_sends_no_second_email(aws, handlers, context):
    """Whatever the job made of the altered key, the uploader already has the rejection."""
    event = load_event("batch_failed_invalid_input.json")
    event["detail"]["parameters"]["key"] = "input/acme/tab\there.tif"
    out = handlers["notify"].handler(event, context)
    assert out["action"] == "skipped"
    assert aws.messages() == []
