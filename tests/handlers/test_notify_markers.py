"""Exactly-once markers on moto: claim, duplicate, in-progress, stale takeover, failed publish."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from notify_support import BUCKET

from rasterdrop_notify import markers
from rasterdrop_notify.errors import NotificationInProgress
from rasterdrop_notify.outcome import REJECTED, Outcome
from rasterdrop_notify.service import Clients, Prepared, deliver
from rasterdrop_notify.settings import Settings

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MKEY = "notified/abc.json"
RECORD = {"bucket": BUCKET, "key": "input/x.tif"}


def _read(aws) -> dict:
    return json.loads(aws.s3.get_object(Bucket=BUCKET, Key=MKEY)["Body"].read())


def test_moto_honours_if_none_match(aws):
    aws.s3.put_object(Bucket=BUCKET, Key=MKEY, Body=b"{}", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        aws.s3.put_object(Bucket=BUCKET, Key=MKEY, Body=b"{}", IfNoneMatch="*")
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_first_claim_wins_second_sees_published(aws):
    first = markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90)
    assert first.won and _read(aws)["state"] == "publishing"
    assert markers.mark_published(
        aws.s3, BUCKET, MKEY, RECORD, etag=first.etag, message_id="m-1", now=NOW
    )
    second = markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90)
    assert not second.won and second.state == "published"


def test_fresh_publishing_marker_means_in_progress(aws):
    markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90)
    with pytest.raises(NotificationInProgress):
        markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW + timedelta(seconds=30), lease_s=90)


def test_stale_publishing_marker_is_taken_over_once(aws):
    markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90)  # holder "crashes"
    later = NOW + timedelta(seconds=120)
    taker = markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=later, lease_s=90)
    assert taker.won and taker.state == "publishing"
    assert _read(aws)["claimed_at"] == later.isoformat()
    # the next retrier sees the taker's fresh claim
    with pytest.raises(NotificationInProgress):
        markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=later, lease_s=90)


class StaleView:
    """An S3 client whose reads return an old copy of the marker (a slow concurrent taker)."""

    def __init__(self, s3, body: bytes, etag: str):
        self._s3, self._body, self._etag = s3, body, etag

    def get_object(self, **kwargs):
        return {"Body": io.BytesIO(self._body), "ETag": self._etag}

    def __getattr__(self, name):
        return getattr(self._s3, name)


def test_stale_marker_takeover_loses_to_a_concurrent_taker(aws):
    stale = markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90)
    stale_body = aws.s3.get_object(Bucket=BUCKET, Key=MKEY)["Body"].read()
    later = NOW + timedelta(seconds=120)
    assert markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=later, lease_s=90).won  # taker A
    # taker B read the marker before A rewrote it: its IfMatch on the old ETag must lose
    slow = StaleView(aws.s3, stale_body, stale.etag)
    with pytest.raises(NotificationInProgress):
        markers.claim(slow, BUCKET, MKEY, RECORD, now=later, lease_s=90)


def _rejection(key: str = "input/acme/big.tif") -> Prepared:
    return Prepared(
        Outcome(
            status=REJECTED,
            bucket=BUCKET,
            key=key,
            version="v1",
            category="too_large",
            reason="too big",
            size_bytes=2,
            max_bytes=1,
        )
    )


def _settings(aws) -> Settings:
    return Settings(bucket=BUCKET, topic_arn=aws.topic_arn)


class FailingSns:
    def publish(self, **kwargs):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "Publish")


def test_failed_publish_releases_the_claim_so_the_retry_sends(aws):
    with pytest.raises(ClientError):
        deliver(_rejection(), Clients(s3=aws.s3, sns=FailingSns()), _settings(aws), now=NOW)
    assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="notified/").get("KeyCount") == 0
    assert aws.messages() == []
    retry = deliver(_rejection(), Clients(s3=aws.s3, sns=aws.sns), _settings(aws), now=NOW)
    assert retry.action == "published"
    assert len(aws.messages()) == 1


def test_crash_after_claim_is_recovered_after_the_lease(aws):
    settings = _settings(aws)
    prepared = _rejection()
    # simulate an invocation that died after writing its claim
    first = deliver(prepared, Clients(s3=aws.s3, sns=aws.sns), settings, now=NOW)
    marker = first.marker
    aws.messages()
    aws.s3.put_object(
        Bucket=BUCKET,
        Key=marker,
        Body=json.dumps({"state": "publishing", "claimed_at": NOW.isoformat()}).encode(),
    )
    with pytest.raises(NotificationInProgress):
        deliver(
            prepared, Clients(s3=aws.s3, sns=aws.sns), settings, now=NOW + timedelta(seconds=60)
        )
    late = deliver(
        prepared,
        Clients(s3=aws.s3, sns=aws.sns),
        settings,
        now=NOW + timedelta(seconds=settings.lease_seconds + 1),
    )
    assert late.action == "published"
    assert len(aws.messages()) == 1
    again = deliver(
        prepared, Clients(s3=aws.s3, sns=aws.sns), settings, now=NOW + timedelta(seconds=600)
    )
    assert again.action == "duplicate"
    assert aws.messages() == []


def test_marker_key_depends_on_all_four_values():
    from rasterdrop_notify.paths import marker_key

    base = marker_key("b", "input/a.tif", "v1", "m1")
    assert base.startswith("notified/") and base.endswith(".json") and len(base) == 78
    assert base == marker_key("b", "input/a.tif", "v1", "m1")
    others = {
        marker_key("c", "input/a.tif", "v1", "m1"),
        marker_key("b", "input/b.tif", "v1", "m1"),
        marker_key("b", "input/a.tif", "v2", "m1"),
        marker_key("b", "input/a.tif", "v1", "m2"),
        marker_key("b/input", "a.tif", "v1", "m1"),
    }
    assert base not in others and len(others) == 5


# --- the lost-response windows (markers' docstring), counted ------------------------------


def test_a_lost_claim_response_is_still_our_claim(aws):
    # botocore retries a PutObject whose answer was lost and gets 412 from our own write
    first = markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90, claim_id="c1")
    again = markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90, claim_id="c1")
    assert first.won and again.won
    with pytest.raises(NotificationInProgress):  # anybody else still waits
        markers.claim(aws.s3, BUCKET, MKEY, RECORD, now=NOW, lease_s=90, claim_id="c2")


class LostAnswerSns:
    """SNS accepts the message, then the connection drops before the answer arrives."""

    def __init__(self, sns, times: int = 1) -> None:
        self.sns, self.times, self.calls = sns, times, 0

    def publish(self, **kwargs):
        from botocore.exceptions import ReadTimeoutError

        self.calls += 1
        self.sns.publish(**kwargs)
        if self.calls <= self.times:
            raise ReadTimeoutError(endpoint_url="https://sns.eu-west-1.amazonaws.com/")
        return {"MessageId": "after-retry"}


def test_a_lost_publish_answer_is_the_one_counted_duplicate(aws):
    settings = _settings(aws)
    sns = LostAnswerSns(aws.sns)
    from botocore.exceptions import ReadTimeoutError

    # the request went out, the answer was lost: no in-process retry (it could duplicate)
    with pytest.raises(ReadTimeoutError):
        deliver(_rejection(), Clients(s3=aws.s3, sns=sns), settings, now=NOW)
    assert sns.calls == 1
    marker = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="notified/")["Contents"][0]["Key"]
    body = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=marker)["Body"].read())
    assert (body["state"], body["ambiguous_publishes"]) == ("uncertain", 1)
    # Lambda's retry publishes at once (no lease wait: the first invocation is over)
    retry = deliver(_rejection(), Clients(s3=aws.s3, sns=sns), settings, now=NOW)
    assert retry.action == "published"
    body = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=marker)["Body"].read())
    assert (body["state"], body["ambiguous_publishes"]) == ("published", 1)
    # two messages went out, and the marker counts the one that may be a duplicate
    assert len(aws.messages()) == 2
    # any later delivery sends nothing
    assert deliver(_rejection(), Clients(s3=aws.s3, sns=sns), settings, now=NOW).action == (
        "duplicate"
    )
    assert aws.messages() == []


class ThrottledOnceSns:
    def __init__(self, sns) -> None:
        self.sns, self.calls = sns, 0

    def publish(self, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "Publish")
        return self.sns.publish(**kwargs)


def test_a_certain_publish_failure_is_retried_in_process_without_duplicate(aws):
    sns = ThrottledOnceSns(aws.sns)
    out = deliver(_rejection(), Clients(s3=aws.s3, sns=sns), _settings(aws), now=NOW)
    assert out.action == "published" and sns.calls == 2
    assert len(aws.messages()) == 1
    marker = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=out.marker)["Body"].read())
    assert (marker["state"], marker["ambiguous_publishes"]) == ("published", 0)


def test_a_failed_published_write_is_not_raised_to_lambda(aws, monkeypatch):
    def broken(*args, **kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "S3 down"}}, "PutObject")

    monkeypatch.setattr(markers, "mark_published", broken)
    out = deliver(_rejection(), Clients(s3=aws.s3, sns=aws.sns), _settings(aws), now=NOW)
    assert out.action == "published"  # a raise here would make Lambda publish again
    assert len(aws.messages()) == 1


def test_the_sns_client_does_no_retries_of_its_own(aws):
    from rasterdrop_notify import runtime

    runtime.reset()
    sns = runtime.clients().sns
    assert sns.meta.config.retries["total_max_attempts"] == 1
    runtime.reset()
