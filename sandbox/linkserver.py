"""A Lambda function URL, locally: a tiny HTTP server turning each request into the
function URL event (payload format 2.0) and the handler's answer back into HTTP.

Bound to 127.0.0.1 on a free port; the email's links point here, so ``curl -L`` follows
the handler's redirect to the embedded S3.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]


def function_url_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    domain: str,
) -> dict[str, Any]:
    """The event Lambda passes for a function URL request (payload format 2.0)."""
    parts = urlsplit(raw_path)
    query = parts.query
    params: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        params[k] = f"{params[k]},{v}" if k in params else v
    now = time.time()
    lower = {k.lower(): v for k, v in headers.items()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": query,
        "headers": lower,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if params:
        event["queryStringParameters"] = params
    if body:
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    return event


class FunctionUrlServer:
    """Serves one function URL at ``url`` until ``stop``."""

    def __init__(self, invoke: Invoke, host: str = "127.0.0.1") -> None:
        self._invoke = invoke
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                domain = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
                event = function_url_event(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    body,
                    self.client_address[0],
                    domain,
                )
                answer = outer._invoke(event) or {"statusCode": 502, "body": "Internal error"}
                self._reply(answer)

            def _reply(self, answer: dict[str, Any]) -> None:
                payload = answer.get("body") or ""
                data = (
                    base64.b64decode(payload)
                    if answer.get("isBase64Encoded")
                    else str(payload).encode("utf-8")
                )
                self.send_response(int(answer.get("statusCode", 200)))
                for k, v in (answer.get("headers") or {}).items():
                    self.send_header(k, str(v))
                for cookie in answer.get("cookies") or []:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the sandbox records invocations itself

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        host_, port = self._server.server_address[:2]
        self.url = f"http://{host_}:{port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FunctionUrlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
