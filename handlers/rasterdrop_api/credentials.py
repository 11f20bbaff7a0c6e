"""Tenant bearer tokens: their format, the salted hash that is stored, the verification.

A token is ``rdt_<id>_<secret>``: ``id`` is 16 hex characters (names the stored record, so
verification reads one record, not all of them), ``secret`` is 32 random bytes in
base64url (43 characters). Only ``sha256(salt || secret)`` and the 16-byte salt are stored
(SSM SecureString, one parameter per token, see ``store``). A fast hash is enough *because*
the secret is 256 random bits: there is nothing to brute-force that a slow KDF would slow
down; the salt keeps equal secrets from having equal records. The comparison is
``hmac.compare_digest`` (constant time), so timing reveals nothing about how many leading
bytes of a guess were right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "rdt_"
TOKEN_RE = re.compile(r"^rdt_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
#: what API Gateway's TOKEN authorizer checks before it invokes the authorizer at all
#: (a malformed header is a 401 without a Lambda invocation).
HEADER_REGEX = r"^Bearer rdt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$"
SALT_BYTES = 16


class BadToken(ValueError):
    """Not a token of this format (the caller answers 401, never saying why)."""


@dataclass(frozen=True)
class ParsedToken:
    token_id: str
    secret: str


@dataclass(frozen=True)
class NewToken:
    token: str  # shown once to the operator, never stored
    token_id: str
    salt: str  # base64
    digest: str  # hex sha256(salt || secret)


def parse(token: str) -> ParsedToken:
    match = TOKEN_RE.match(token or "")
    if match is None:
        raise BadToken("malformed token")
    return ParsedToken(match.group("id"), match.group("secret"))


def parse_header(value: str | None) -> ParsedToken:
    """``Bearer <token>`` (scheme case-insensitive, as RFC 6750 allows)."""
    scheme, _, token = (value or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise BadToken("not a bearer token")
    return parse(token.strip())


def digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def new_token() -> NewToken:
    token_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    salt = secrets.token_bytes(SALT_BYTES)
    return NewToken(
        token=f"{PREFIX}{token_id}_{secret}",
        token_id=token_id,
        salt=base64.b64encode(salt).decode("ascii"),
        digest=digest(salt, secret).hex(),
    )


def matches(parsed: ParsedToken, salt_b64: str, digest_hex: str) -> bool:
    """Whether the token's secret hashes to the stored digest (constant-time compare)."""
    try:
        salt = base64.b64decode(salt_b64, validate=True)
        stored = bytes.fromhex(digest_hex)
    except ValueError:
        return False
    return hmac.compare_digest(digest(salt, parsed.secret), stored)
