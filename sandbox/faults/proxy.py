"""A small HTTP proxy in front of moto's server that misbehaves like a real endpoint.

The sandbox points its jobs and Lambda handlers at the proxy (``Options.fault_plan``); the
proxy forwards every request to moto and, for a set share of them (seeded, so a run can be
repeated), does what S3 and SNS do on a bad day:

* ``error``: answers 503 SlowDown (S3) or 500 InternalError (SNS, others) without
  forwarding: the server never saw the request;
* ``drop_before``: closes the connection without forwarding (a reset before the server
  acted: the client cannot tell it from a lost answer);
* ``drop_after``: forwards, lets the server act, then closes the connection instead of
  answering (a lost response: the write happened, the writer does not know).

Shares are per service (``s3`` by path, ``sns`` by ``Action=`` in a POST to ``/``; others
are never faulted: secrets, SQS capture). Faults start once :meth:`FaultProxy.arm` is
called, so setup (provisioning, the model) runs clean. Counts per service and kind are in
:attr:`FaultProxy.injected`.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ERROR, DROP_BEFORE, DROP_AFTER = "error", "drop_before", "drop_after"
KINDS = (ERROR, DROP_BEFORE, DROP_AFTER)
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
     "proxy-connection", "content-length"}
)  # fmt: skip

S3_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>"
)
QUERY_INTERNAL = (
    b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
    b"<Type>Receiver</Type><Code>InternalError</Code><Message>injected fault</Message>"
    b"</Error><RequestId>FAULT</RequestId></ErrorResponse>"
)


@dataclass(frozen=True)
class Shares:
    """Fractions (0..1) of one service's requests that get each fault."""

    error: float = 0.0
    drop_before: float = 0.0
    drop_after: float = 0.0

    def pick(self, roll: float) -> str | None:
        edge = 0.0
        for kind, share in ((ERROR, self.error), (DROP_BEFORE, self.drop_before),
                            (DROP_AFTER, self.drop_after)):  # fmt: skip
            edge += share
            if roll < edge:
                return kind
        return None


@dataclass(frozen=True)
class FaultPlan:
    s3: Shares = field(default_factory=Shares)
    sns: Shares = field(default_factory=Shares)
    seed: int = 0

    def describe(self) -> str:
        def one(name: str, s: Shares) -> str:
            return (f"{name} {s.error:.0%} 5xx, {s.drop_before:.0%} reset before, "
                    f"{s.drop_after:.0%} reset after")  # fmt: skip

        return f"{one('S3', self.s3)}; {one('SNS', self.sns)} (seed {self.seed})"


def service_of(method: str, path: str, body: bytes) -> str:
    """``s3``, ``sns`` or ``other`` from the request line (moto serves all on one port)."""
    if path.startswith("/moto-api"):
        return "other"
    if method == "POST" and urlsplit(path).path == "/":
        if b"Action=Publish" in body or b"Action=CreateTopic" in body or b"TopicArn=" in body:
            return "sns"
        return "other"
    return "s3"


class FaultProxy:
    """``http://127.0.0.1:<port>`` forwarding to ``target`` with the plan's faults."""

    def __init__(self, target: str, plan: FaultPlan) -> None:
        self.target = urlsplit(target)
        self.plan = plan
        self.armed = False
        self.requests: Counter[str] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(plan.seed)  # noqa: S311 - a repeatable fault pattern
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def arm(self, on: bool = True) -> None:
        self.armed = on

    def total(self, kind: str | None = None, service: str | None = None) -> int:
        return sum(
            n
            for (s, k), n in self.injected.items()
            if (kind is None or k == kind) and (service is None or s == service)
        )

    # ------------------------------------------------------------------ one request
    def _fault_for(self, service: str) -> str | None:
        shares = {"s3": self.plan.s3, "sns": self.plan.sns}.get(service)
        with self._lock:
            self.requests[service] += 1
            if not self.armed or shares is None:
                return None
            kind = shares.pick(self._rng.random())
            if kind:
                self.injected[(service, kind)] += 1
            return kind

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = _read_body(h)
        service = service_of(h.command, h.path, body)
        fault = self._fault_for(service)
        if fault == ERROR:
            status, payload = (503, S3_SLOWDOWN) if service == "s3" else (500, QUERY_INTERNAL)
            _answer(h, status, [("Content-Type", "application/xml")], payload)
            return
        if fault == DROP_BEFORE:
            _drop(h)
            return
        status, headers, payload = self._forward(h, body)
        if fault == DROP_AFTER:
            _drop(h)
            return
        _answer(h, status, headers, payload)

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=300)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(h.command, h.path, body=body if body or h.command in ("PUT", "POST")
                         else None, headers=headers)  # fmt: skip
            resp = conn.getresponse()
            payload = resp.read()
            keep = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            if h.command == "HEAD" and resp.getheader("Content-Length") is not None:
                keep.append(("Content-Length", resp.getheader("Content-Length")))
            return resp.status, keep, payload
        finally:
            conn.close()


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def _answer(h: BaseHTTPRequestHandler, status: int, headers: list, payload: bytes) -> None:
    h.send_response_only(status)
    for k, v in headers:
        h.send_header(k, v)
    if h.command != "HEAD" or not any(k.lower() == "content-length" for k, _ in headers):
        h.send_header("Content-Length", str(len(payload)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(payload)
    h.wfile.flush()


def _drop(h: BaseHTTPRequestHandler) -> None:
    """Close the client's connection without a byte of answer (RST where possible)."""
    h.close_connection = True
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
