"""link.handler on moto: token → 302 to a presigned URL that really downloads the object."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from notify_support import BUCKET, NOW, SECRET_KEY, load_event

from rasterdrop_notify.tokens import sign_token

KEY = "output/acme/field-7/classes.tif"
PAYLOAD = b"II*\x00 pretend this is a COG"


def _request(token: str | None, method: str = "GET") -> dict:
    event = load_event("function_url_get.json")
    event["requestContext"]["http"]["method"] = method
    if token is None:
        event["rawQueryString"] = ""
        del event["queryStringParameters"]
    else:
        event["rawQueryString"] = f"t={token}"
        event["queryStringParameters"] = {"t": token}
    return event


def _token(key: str = KEY, ttl: int = 3600, secret: str = SECRET_KEY) -> str:
    return sign_token(key, int(NOW.timestamp()) + ttl, [secret.encode()])


@pytest.fixture
def stored(aws):
    aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=PAYLOAD)
    return aws


def test_valid_token_redirects_to_a_url_that_downloads_the_object(stored, handlers, context):
    resp = handlers["link"].handler(_request(_token()), context)
    assert resp["statusCode"] == 302
    location = resp["headers"]["Location"]
    assert location.startswith(f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/")  # regional
    assert "X-Amz-Expires=300" in location  # short-lived: minted per click
    assert resp["headers"]["Cache-Control"] == "no-store"
    got = requests.get(location, timeout=10)
    assert got.status_code == 200
    assert got.content == PAYLOAD


def test_head_is_answered_like_get(stored, handlers, context):
    resp = handlers["link"].handler(_request(_token(), method="HEAD"), context)
    assert resp["statusCode"] == 302


def test_expired_token_is_410(stored, handlers, context):
    resp = handlers["link"].handler(_request(_token(ttl=-1)), context)
    assert resp["statusCode"] == 410
    assert "expired" in resp["body"]


def test_expiry_is_judged_by_the_injected_clock(stored, handlers, context, set_now):
    token = sign_token(
        KEY, int(datetime(2021, 1, 1, tzinfo=UTC).timestamp()), [SECRET_KEY.encode()]
    )
    set_now(datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert handlers["link"].handler(_request(token), context)["statusCode"] == 302
    set_now(datetime(2021, 1, 1, tzinfo=UTC))  # the expiry second
    assert handlers["link"].handler(_request(token), context)["statusCode"] == 410


def test_token_signed_with_another_key_is_403(stored, handlers, context):
    forged = _token(secret="attacker-chosen-secret-of-sufficient-length")
    resp = handlers["link"].handler(_request(forged), context)
    assert resp["statusCode"] == 403
    assert forged not in resp["body"] and SECRET_KEY not in resp["body"]


def test_token_altered_to_name_another_object_is_403(stored, handlers, context):
    stored.s3.put_object(Bucket=BUCKET, Key="output/other-tenant/x/classes.tif", Body=b"secret")
    good = _token()
    other_payload = _token(key="output/other-tenant/x/classes.tif").split(".")[0]
    altered = other_payload + "." + good.split(".")[1]
    resp = handlers["link"].handler(_request(altered), context)
    assert resp["statusCode"] == 403


def test_authentic_token_outside_output_prefix_is_403(stored, handlers, context):
    resp = handlers["link"].handler(_request(_token(key="models/demo/current.json")), context)
    assert resp["statusCode"] == 403


def test_missing_object_is_404(stored, handlers, context):
    resp = handlers["link"].handler(_request(_token(key="output/acme/gone/classes.tif")), context)
    assert resp["statusCode"] == 404


def test_missing_token_is_400_and_post_is_405(stored, handlers, context):
    assert handlers["link"].handler(_request(None), context)["statusCode"] == 400
    resp = handlers["link"].handler(_request(_token(), method="POST"), context)
    assert resp["statusCode"] == 405


def test_not_a_function_url_event_is_400(stored, handlers, context):
    assert handlers["link"].handler({"hello": "world"}, context)["statusCode"] == 400


def test_not_a_function_url_event_is_400_before_settings_are_needed(stored):
    from rasterdrop_notify.linkserve import serve
    from rasterdrop_notify.service import Clients
    from rasterdrop_notify.settings import Settings

    unconfigured = Settings(bucket="", topic_arn="")
    resp = serve({"hello": "world"}, Clients(s3=None, sns=None), unconfigured)
    assert resp["statusCode"] == 400 and "incomplete" in resp["body"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_missing_secret_setting_fails_loudly(stored, handlers, context, env, reread_env):
    from rasterdrop_notify.errors import ConfigurationError

    env.delenv("RASTERDROP_LINK_SECRET_ARN")
    reread_env()
    with pytest.raises(ConfigurationError, match="RASTERDROP_LINK_SECRET_ARN"):
        handlers["link"].handler(_request(_token()), context)


def test_rotated_keys_old_tokens_still_work(stored, handlers, context):
    new_key = "n" * 40
    stored.secrets.put_secret_value(
        SecretId=stored.secret_arn, SecretString=f'{{"keys": ["{new_key}", "{SECRET_KEY}"]}}'
    )
    old = _token()  # signed with the previous key
    assert handlers["link"].handler(_request(old), context)["statusCode"] == 302
    assert handlers["link"].handler(_request(_token(secret=new_key)), context)["statusCode"] == 302


def test_the_secret_is_read_once_per_cold_start(stored, handlers, context, monkeypatch):
    from rasterdrop_notify import runtime

    calls = []
    secrets = runtime.clients().secrets
    original = secrets.get_secret_value

    def counting(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(secrets, "get_secret_value", counting)
    for _ in range(3):
        assert handlers["link"].handler(_request(_token()), context)["statusCode"] == 302
    assert len(calls) == 1


def test_download_name_keeps_unicode_and_has_an_ascii_fallback(stored, handlers, context):
    key = "output/acme/Gärten Süd+1/classes.tif"
    stored.s3.put_object(Bucket=BUCKET, Key=key, Body=b"garden")
    resp = handlers["link"].handler(_request(_token(key=key)), context)
    got = requests.get(resp["headers"]["Location"], timeout=10)
    assert got.content == b"garden"
    assert got.headers["Content-Disposition"] == (
        'attachment; filename="Garten Sud+1_classes.tif"; '
        "filename*=UTF-8''G%C3%A4rten%20S%C3%BCd%2B1_classes.tif"
    )
