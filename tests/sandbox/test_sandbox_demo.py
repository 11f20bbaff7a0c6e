"""Demo helpers: the email as printed, the links in it."""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.core import Message
from sandbox.demo import _message_for, links_in
from sandbox.email import format_email

MESSAGE = Message(
    topic="NotificationTopic",
    subject="rasterdrop: field 7+b.tif ready",
    body="field 7+b.tif is ready.\n\n  Classes (GeoTIFF):\n  http://127.0.0.1:4567/?t=abc.def\n",
    attributes={"tenant": "acme", "status": "succeeded"},
    timestamp=datetime(2026, 11, 26, 9, 30, 1, tzinfo=UTC),
    message_id="m-1",
)


def test_email_reads_like_the_subscriber_sees_it() -> None:
    text = format_email(MESSAGE, ["ops@example.com"], "rasterdrop")
    lines = text.splitlines()
    assert lines[0] == "From:    rasterdrop <no-reply@sns.amazonaws.com>"
    assert lines[1] == "To:      ops@example.com"
    assert lines[2] == "Date:    Thu, 26 Nov 2026 09:30:01 +0000"
    assert lines[3] == "Subject: rasterdrop: field 7+b.tif ready"
    assert "status=succeeded, tenant=acme" in lines[4]
    assert "field 7+b.tif is ready." in text


def test_links_and_message_lookup() -> None:
    assert links_in(MESSAGE.body) == ["http://127.0.0.1:4567/?t=abc.def"]
    assert _message_for([MESSAGE], "input/acme/field 7+b.tif") is MESSAGE
