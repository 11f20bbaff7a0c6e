"""Link tokens and the key ring: authentic, unforgeable, unalterable, expiring, rotatable."""

from __future__ import annotations

import base64
import json

import pytest

from rasterdrop_notify.errors import ConfigurationError, ExpiredToken, InvalidToken
from rasterdrop_notify.keyring import load_keys, parse_secret
from rasterdrop_notify.tokens import sign_token, verify_token

K1 = b"a" * 32
K2 = b"b" * 32
KEY = "output/acme/field-7/classes.tif"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip_and_shape():
    token = sign_token(KEY, 2000, [K1])
    body, sig = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {"k": KEY, "e": 2000}
    assert len(base64.urlsafe_b64decode(sig + "=")) == 32  # HMAC-SHA256
    claim = verify_token(token, [K1], now=1999)
    assert (claim.key, claim.expires_at) == (KEY, 2000)


def test_expiry_is_exclusive():
    token = sign_token(KEY, 2000, [K1])
    with pytest.raises(ExpiredToken):
        verify_token(token, [K1], now=2000)


def test_wrong_key_is_invalid_even_when_expired():
    token = sign_token(KEY, 10, [K2])
    with pytest.raises(InvalidToken):
        verify_token(token, [K1], now=1_000_000)


def test_payload_swapped_to_another_key_is_invalid():
    good = sign_token(KEY, 2000, [K1])
    other = sign_token("output/other/x/classes.tif", 2000, [K1])
    swapped = other.split(".")[0] + "." + good.split(".")[1]
    with pytest.raises(InvalidToken):
        verify_token(swapped, [K1], now=0)


def test_extended_expiry_is_invalid():
    good = sign_token(KEY, 2000, [K1])
    body = _b64(json.dumps({"k": KEY, "e": 9_999_999_999}, separators=(",", ":")).encode())
    with pytest.raises(InvalidToken):
        verify_token(body + "." + good.split(".")[1], [K1], now=0)


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "a.b.c", ".", "x" * 5000, "e30.", "é.é", "e30.***", "e30.AAAA=="],
)
def test_malformed_tokens_are_invalid(bad):
    with pytest.raises(InvalidToken):
        verify_token(bad, [K1], now=0)


def test_non_canonical_spelling_of_a_good_signature_is_invalid():
    good = sign_token(KEY, 2000, [K1])
    body, sig = good.split(".")
    # 32 bytes → 43 chars whose last char carries 2 unused bits: flip them
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    variant = sig[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(variant + "=") == base64.urlsafe_b64decode(sig + "=")
    with pytest.raises(InvalidToken):
        verify_token(f"{body}.{variant}", [K1], now=0)


def test_signed_payload_with_wrong_types_is_invalid():
    # a correctly signed payload whose expiry is a string must not be accepted
    import hashlib
    import hmac

    from rasterdrop_notify.tokens import CONTEXT

    body = _b64(b'{"k":"output/x","e":"9999999999"}')
    sig = _b64(hmac.new(K1, CONTEXT + body.encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        verify_token(f"{body}.{sig}", [K1], now=0)


def test_rotation_signs_with_first_accepts_all():
    old = sign_token(KEY, 2000, [K1])
    new = sign_token(KEY, 2000, [K2, K1])
    assert verify_token(old, [K2, K1], now=0).key == KEY
    assert verify_token(new, [K2], now=0).key == KEY
    with pytest.raises(InvalidToken):
        verify_token(new, [K1], now=0)


def test_unicode_keys_round_trip():
    key = "output/ünïcødé/a+b c/classes.tif"
    assert verify_token(sign_token(key, 5, [K1]), [K1], now=0).key == key


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ('{"keys": ["' + "n" * 32 + '", "' + "o" * 32 + '"]}', (b"n" * 32, b"o" * 32)),
        ('{"key": "' + "n" * 32 + '"}', (b"n" * 32,)),
        ('{"key": "' + "n" * 32 + '", "previous": "' + "o" * 32 + '"}', (b"n" * 32, b"o" * 32)),
        ("p" * 40, (b"p" * 40,)),
    ],
)
def test_secret_formats(secret, expected):
    assert parse_secret(secret) == expected


@pytest.mark.parametrize("secret", ['{"key": "short"}', '{"nope": 1}', "{not json", '{"keys": []}'])
def test_bad_secrets_are_refused_without_echo(secret):
    with pytest.raises(ConfigurationError) as err:
        parse_secret(secret)
    assert "short" not in str(err.value)


def test_key_ring_is_cached_until_max_age():
    from rasterdrop_notify import keyring

    keyring.clear_cache()
    calls = []

    class Secrets:
        def get_secret_value(self, SecretId):
            calls.append(SecretId)
            return {"SecretString": "s" * 32}

    clock = iter([0.0, 10.0, 5000.0, 5000.0])  # store, fresh hit, stale, store
    for _ in range(3):
        load_keys(Secrets(), "arn:x", max_age_s=3600, clock=lambda: next(clock))
    assert calls == ["arn:x", "arn:x"]
    keyring.clear_cache()
