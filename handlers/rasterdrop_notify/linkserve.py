"""The link endpoint: a signed, long-lived token in; a fresh, short-lived presigned URL out.

A presigned URL made with a Lambda role's temporary credentials stops working when those
credentials expire (hours), whatever its ``ExpiresIn`` says. So the email carries a link to
this endpoint instead, with a token that names one object and an expiry (HMAC-signed,
``tokens``); each click gets a redirect to a URL presigned a moment ago for a few minutes.

Answers: 302 to the presigned URL; 400 no token; 403 forged, altered or foreign token;
404 the object is gone; 405 not GET/HEAD; 410 expired. Bodies are fixed texts: no token,
key, secret or exception text is ever echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from botocore.exceptions import ClientError

from rasterdrop_notify.clock import Clock, system_clock
from rasterdrop_notify.errors import ExpiredToken, InvalidToken
from rasterdrop_notify.keyring import load_keys
from rasterdrop_notify.service import Clients
from rasterdrop_notify.settings import Settings
from rasterdrop_notify.text import ascii_clean
from rasterdrop_notify.tokens import verify_token

log = logging.getLogger("rasterdrop.link")

TEXTS = {
    400: "This link is incomplete. Please use the full link from your rasterdrop email.\n",
    403: "This link is not valid.\n",
    404: "The file behind this link no longer exists.\n",
    405: "Only GET is supported.\n",
    410: "This link has expired. Upload the file again to get a fresh result and link.\n",
}


def serve(
    event: dict[str, Any], clients: Clients, settings: Settings, *, clock: Clock = system_clock
) -> dict[str, Any]:
    """The response to one function URL invocation (payload 2.0), whatever the event holds.

    Not a function URL event at all: 400, before any setting or secret is needed.
    """
    try:
        request = parse(event=event, model=LambdaFunctionUrlModel)
    except ValidationError:
        return bad_request()
    settings.require("bucket", "link_secret_arn")
    return answer(
        method=request.requestContext.http.method,
        token=(request.queryStringParameters or {}).get("t"),
        s3=clients.s3,
        settings=settings,
        keys=load_keys(clients.secrets, settings.link_secret_arn),
        now=clock().timestamp(),
    )


def answer(
    *,
    method: str,
    token: str | None,
    s3: Any,
    settings: Settings,
    keys: Sequence[bytes],
    now: float,
) -> dict[str, Any]:
    """The function URL response (payload format 2.0) for one request."""
    if method not in ("GET", "HEAD"):
        return _text(405, {"Allow": "GET, HEAD"})
    if not token:
        return _text(400)
    try:
        claim = verify_token(token, keys, now)
    except ExpiredToken:
        return _text(410)
    except InvalidToken as exc:
        log.info("rejected link token: %s", exc)
        return _text(403)
    if not claim.key.startswith(settings.output_prefix):
        log.warning("authentic token for a key outside %s", settings.output_prefix)
        return _text(403)
    try:
        s3.head_object(Bucket=settings.bucket, Key=claim.key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied"):
            if code in ("403", "AccessDenied"):
                log.warning("head_object denied: the link role needs s3:ListBucket on output/")
            return _text(404)
        raise
    url = s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": settings.bucket,
            "Key": claim.key,
            "ResponseContentDisposition": content_disposition(download_name(claim.key)),
        },
        ExpiresIn=settings.presign_seconds,
    )
    return {
        "statusCode": 302,
        "headers": {**_SECURITY_HEADERS, "Location": url},
        "body": "",
    }


def download_name(key: str) -> str:
    """``output/a/field-7/classes.tif`` → ``field-7_classes.tif``."""
    parts = key.rstrip("/").split("/")
    return f"{parts[-2]}_{parts[-1]}" if len(parts) >= 3 else parts[-1]


def content_disposition(filename: str) -> str:
    """RFC 6266 attachment with an ASCII fallback and the exact UTF-8 name (RFC 5987)."""
    fallback = ascii_clean(filename).replace('"', "").replace("\\", "") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _text(status: int, extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {
            **_SECURITY_HEADERS,
            "Content-Type": "text/plain; charset=utf-8",
            **(extra or {}),
        },
        "body": TEXTS[status],
    }


def bad_request() -> dict[str, Any]:
    """The answer to a request that is not a function URL event at all."""
    return _text(400)
