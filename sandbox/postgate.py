"""S3's browser-based POST policy, enforced in front of moto (which does not enforce it).

moto's server stores a POST upload whatever its policy says (checked: a 100-byte file is
accepted under ``content-length-range`` 1..10). S3 refuses it. So the API's functions reach
the embedded S3 through this gate: every request is passed to moto unchanged, except a
form POST to a bucket, whose policy is checked first as S3 checks it: the SigV4 signature
of the policy (with the sandbox's secret key), ``expiration``, and every condition
(exact fields, ``eq``, ``starts-with``, ``content-length-range`` on the file's size). A
refusal is S3's answer: 400 ``EntityTooLarge``/``EntityTooSmall`` or 403 ``AccessDenied``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import urlsplit

from sandbox.httpd import LocalServer, QuietHandler

Clock = Callable[[], datetime]


class PolicyRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """(fields, file bytes) of a multipart/form-data body; the file is the ``file`` field."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    fields: dict[str, str] = {}
    data = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            data = payload
        elif name:
            fields[str(name).lower()] = payload.decode("utf-8")
    return fields, data


def signing_key(secret: str, date: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_policy(
    bucket: str, fields: dict[str, str], size: int, *, secret: str, now: datetime
) -> None:
    """Raise PolicyRefused unless S3 would accept this POST."""
    policy_b64 = fields.get("policy")
    if not policy_b64:
        raise PolicyRefused(403, "AccessDenied", "Bucket POST must contain a field named 'policy'")
    credential = fields.get("x-amz-credential", "")
    parts = credential.split("/")
    if len(parts) != 5:
        raise PolicyRefused(403, "AccessDenied", "malformed x-amz-credential")
    expected = hmac.new(
        signing_key(secret, parts[1], parts[2]), policy_b64.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        raise PolicyRefused(403, "SignatureDoesNotMatch", "policy signature does not match")
    policy = json.loads(base64.b64decode(policy_b64))
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if now >= expiration:
        raise PolicyRefused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    for condition in policy.get("conditions", []):
        _check(condition, values, size)


def _check(condition: Any, values: dict[str, str], size: int) -> None:
    if isinstance(condition, dict):
        for name, want in condition.items():
            _require(values.get(name.lower()) == want, f'["eq", "${name}", "{want}"]')
        return
    op, *args = condition
    if op == "content-length-range":
        low, high = int(args[0]), int(args[1])
        if size > high:
            raise PolicyRefused(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        if size < low:
            raise PolicyRefused(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
            )
        return
    name = str(args[0]).lstrip("$").lower()
    given = values.get(name, "")
    if op == "eq":
        _require(given == args[1], json.dumps(condition))
    elif op == "starts-with":
        _require(given.startswith(args[1]), json.dumps(condition))
    else:
        raise PolicyRefused(403, "AccessDenied", f"unknown policy condition {op!r}")


def _require(ok: bool, condition: str) -> None:
    if not ok:
        raise PolicyRefused(
            403,
            "AccessDenied",
            f"Invalid according to Policy: Policy Condition failed: {condition}",
        )


def error_xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()


class PostPolicyGate:
    """A reverse proxy to moto at ``upstream`` that enforces POST policies (see above)."""

    def __init__(self, upstream: str, secret: str, clock: Clock | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.secret = secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.refusals: list[tuple[str, str]] = []  # (code, message), for tests and the demo
        gate = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                path = urlsplit(self.path).path
                if self.command == "POST" and ctype.startswith("multipart/form-data"):
                    bucket = path.strip("/").split("/", 1)[0]
                    try:
                        fields, data = parse_form(ctype, body)
                        check_policy(
                            bucket, fields, len(data), secret=gate.secret, now=gate.clock()
                        )
                    except PolicyRefused as exc:
                        gate.refusals.append((exc.code, str(exc)))
                        return self._answer(exc.status, error_xml(exc.code, str(exc)))
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                conn = http.client.HTTPConnection(gate.upstream.hostname, gate.upstream.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = gate.upstream.netloc
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                length = str(len(data))
                for k, v in resp.getheaders():
                    if k.lower() == "content-length" and self.command == "HEAD":
                        length = v  # a HEAD answer states the object's length, with no body
                    elif k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        self._http = LocalServer(Handler)
        self.endpoint = self._http.endpoint

    def start(self) -> PostPolicyGate:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
