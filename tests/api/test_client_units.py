"""rasterdrop-client on its own: settings, error mapping, retries of 5xx over real HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rasterdrop_client import ClientError, InvalidInput, NotAuthorized, OverQuota
from rasterdrop_client import settings as client_settings
from rasterdrop_client.api import Result
from rasterdrop_client.transport import Retry, Transport, _error


def test_settings_come_from_the_environment_then_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('api_url = "https://file.example/api/"\ntoken = "rdt_file"\n')
    env = {"RASTERDROP_CONFIG": str(config)}
    assert client_settings.load(env) == client_settings.ClientSettings(
        "https://file.example/api/", "rdt_file"
    )
    env["RASTERDROP_TOKEN"] = "rdt_env"
    assert client_settings.load(env).token == "rdt_env"
    with pytest.raises(NotAuthorized):
        client_settings.load({"RASTERDROP_API_URL": "https://x/", "RASTERDROP_CONFIG": "/none"})
    config.write_text("api_url = [")
    with pytest.raises(ClientError, match="not valid TOML"):
        client_settings.load({"RASTERDROP_CONFIG": str(config)})


@pytest.mark.parametrize(
    ("status", "doc", "kind", "exit_code"),
    [
        (401, {"code": "unauthorized"}, NotAuthorized, 4),
        (403, {"code": "forbidden"}, NotAuthorized, 4),
        (429, {"code": "quota_exceeded"}, OverQuota, 5),
        (400, {"code": "bad_key", "message": "key ..."}, InvalidInput, 2),
        (413, {"code": "too_large"}, InvalidInput, 2),
        (404, {"code": "not_found"}, ClientError, 1),
    ],
)
def test_answers_map_to_exit_codes(status, doc, kind, exit_code) -> None:
    err = _error(status, doc)
    assert type(err) is kind and err.exit_code == exit_code


def test_a_job_failure_blamed_on_the_input_is_exit_2() -> None:
    bad = Result(None, {"status": "failed", "file": "a.tif",  # type: ignore[arg-type]
                        "error": {"category": "invalid_input", "message": "bands"}})  # fmt: skip
    with pytest.raises(ClientError) as exc:
        bad.raise_for_status()
    assert exc.value.exit_code == 2
    crashed = Result(None, {"status": "failed", "error": {"category": "internal"}})  # type: ignore[arg-type]
    with pytest.raises(ClientError) as exc:
        crashed.raise_for_status()
    assert exc.value.exit_code == 1


def test_5xx_is_retried_with_backoff_and_retry_after(tmp_path: Path) -> None:
    answers = [(503, {"Retry-After": "2"}), (502, {}), (200, {})]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers = answers.pop(0)
            body = json.dumps({"ok": status == 200}).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        slept: list[float] = []
        retry = Retry(sleep=slept.append, jitter=lambda limit: limit)
        t = Transport(f"http://127.0.0.1:{server.server_address[1]}/", "tok", retry=retry)
        assert t.call("GET", "v1/usage") == {"ok": True}
        assert slept == [2.0, 1.0]  # Retry-After, then 0.5 s doubled for the second attempt
        assert [s for s, _ in t.retries] == [503, 502]
    finally:
        server.shutdown()
        server.server_close()


def test_only_http_urls() -> None:
    with pytest.raises(ClientError, match="http"):
        Transport("file:///etc/passwd", "tok")
