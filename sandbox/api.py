"""The tenants' API on the sandbox: the template's REST API (``sandbox.gateway``) in front of
the same handlers, S3's POST policy enforced (``sandbox.postgate``), token administration
(the operator's ``TokenAdmin`` against the embedded SSM), and a pump that keeps the flow
moving while clients upload and poll.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3

from sandbox.apigateway import RestApi, read_rest_apis
from sandbox.errors import SandboxError
from sandbox.gateway import Gateway, GatewayServer
from sandbox.postgate import PostPolicyGate
from sandbox.server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

OUTPUT_TENANTS = "ApiTenants"
OUTPUT_PREFIX = "ApiTokenParameterPrefix"


class ApiFrontDoor:
    """Attach to a started ``Sandbox``; ``url`` is what ``RASTERDROP_API_URL`` is set to."""

    def __init__(
        self, sb: Any, *, clock: Callable[[], datetime] | None = None, pump: bool = True
    ) -> None:
        self.sb = sb
        self.clock = clock
        self.pump = pump
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pump_errors: list[BaseException] = []

    def __enter__(self) -> ApiFrontDoor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ApiFrontDoor:
        sb = self.sb
        apis = read_rest_apis(sb.template, sb.resolver)
        if not apis:
            raise SandboxError("the template has no REST API (is `api` switched off?)")
        self.api: RestApi = apis[0]
        self.gate = PostPolicyGate(sb.server.endpoint, FAKE_SECRET_KEY, clock=self.clock).start()
        self.gateway = Gateway(
            self.api,
            self._invoke,
            region=sb.region,
            account=sb.account,
            clock=self.clock,
            access_log=sb.work_dir / "logs" / "api-access.log",
        )
        self.server = GatewayServer(self.gateway).start()
        overrides = {
            "AWS_ENDPOINT_URL_S3": self.gate.endpoint,
            "AWS_ENDPOINT_URL_API_GATEWAY": self.server.endpoint,
        }
        for fid in {r.function for r in self.api.routes} | {
            a.function for a in self.api.authorizers.values()
        }:
            sb.lambdas.overrides[fid] = dict(overrides)
        self.admin = self._admin()
        if self.pump:
            self._thread = threading.Thread(target=self._run_flow, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.server.stop()
        self.gate.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def issue_token(self, tenant: str, label: str = "") -> str:
        return self.admin.issue(tenant, label).token

    # ------------------------------------------------------------ internals
    def _invoke(self, function_id: str, event: dict[str, Any]) -> tuple[Any, BaseException | None]:
        record = self.sb.lambdas.invoke(self.sb.functions[function_id], event)
        return record.result, record.error

    def _admin(self) -> Any:
        outputs = self.api.outputs
        if OUTPUT_TENANTS not in outputs:
            raise SandboxError(f"the template has no {OUTPUT_TENANTS} output")
        apigateway = boto3.client(
            "apigateway",
            endpoint_url=self.server.endpoint,
            region_name=self.sb.region,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
        )
        admin_module = _handlers_module(self.sb.root / "handlers", "rasterdrop_api.admin")
        return admin_module.TokenAdmin(
            ssm=self.sb.server.client("ssm"),
            apigateway=apigateway,
            parameter_prefix=outputs[OUTPUT_PREFIX],
            tenants=json.loads(outputs[OUTPUT_TENANTS]),
        )

    def _run_flow(self) -> None:
        """Deliver events (uploads through the API arrive as S3 news) until stopped."""
        while not self._stop.is_set():
            try:
                self.sb.run_until_idle(timeout=1800)
            except Exception as exc:  # recorded; the pump keeps going
                self.pump_errors.append(exc)
            self._stop.wait(0.2)


def _handlers_module(code_dir: Any, name: str) -> Any:
    """Import a module of the handlers' asset (the operator's admin tool lives there)."""
    path = str(code_dir)
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(path)
