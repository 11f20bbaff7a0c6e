"""API Gateway (REST, one stage), locally: the template's routes behind its authorizer and
usage plans, over real HTTP on 127.0.0.1.

Per request, in API Gateway's order: route (else ``MISSING_AUTHENTICATION_TOKEN``) →
identity source present and matching the authorizer's validation regex (else 401) → the
authorizer function (a TOKEN event; ``Unauthorized`` → 401, a policy that does not allow
the method → 403) → the usage plan of the ``usageIdentifierKey`` it returned (none → 403
``INVALID_API_KEY``) → the plan's throttle (token bucket of ``rate``/``burst`` → 429
``THROTTLED``) and daily quota (per UTC day of ``clock`` → 429 ``QUOTA_EXCEEDED``) → request
validation (required query strings; the body against the method's model → 400) → the
integration function with a REST proxy event. Refusals are the template's gateway
responses. Not emulated: the authorizer result cache (the template sets TTL 0 anyway) and
the account-wide 10,000 rps limit.

The same server answers the management calls the handlers and the token admin make with
boto3 (``AWS_ENDPOINT_URL_API_GATEWAY`` points here): ``GetApiKey`` (with its value),
``GetUsagePlan`` and ``GetUsage``, from the counters that enforce the quota.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.apigateway import RestApi, Route, UsagePlan
from sandbox.httpd import LocalServer, QuietHandler

Invoke = Callable[[str, dict[str, Any]], tuple[Any, BaseException | None]]
Clock = Callable[[], datetime]


@dataclass
class Bucket:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = ""


class Gateway:
    """The stage's request pipeline (no HTTP here: ``handle`` takes the request's parts)."""

    def __init__(
        self,
        api: RestApi,
        invoke: Invoke,
        *,
        region: str,
        account: str,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        access_log: Path | None = None,
    ) -> None:
        self.api = api
        self.invoke = invoke
        self.region, self.account = region, account
        self.clock = clock or (lambda: datetime.now(UTC))
        self.monotonic = monotonic
        self.access_log = access_log
        self.lock = threading.Lock()
        self.buckets: dict[str, Bucket] = {}
        self.usage: dict[tuple[str, str, str], int] = {}  # (plan, key, day) -> requests
        self.stage_bucket = (
            Bucket(float(api.stage_rate), float(api.stage_burst or 1)) if api.stage_rate else None
        )
        self.log: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- pipeline
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> Answer:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path.strip("/")
        ctx: dict[str, Any] = {"requestId": str(uuid.uuid4()), "ip": source_ip, "method": method}
        answer = self._pipeline(method, path, query, headers, body, ctx)
        self._write_log(ctx, answer)
        return answer

    def _pipeline(self, method, path, query, headers, body, ctx) -> Answer:
        stage, _, resource = path.partition("/")
        route = self._route(method, resource) if stage == self.api.stage else None
        if route is None:
            return self._refuse("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        ctx["path"] = "/" + route.path
        method_arn = (
            f"arn:aws:execute-api:{self.region}:{self.account}:{self.api.api_id}/"
            f"{self.api.stage}/{route.method}/{route.path}"
        )
        authorized = self._authorize(route, headers, method_arn, ctx)
        if isinstance(authorized, Answer):
            return authorized
        if self.stage_bucket and not self._take(self.stage_bucket):
            return self._refuse("THROTTLED", 429, "Too Many Requests")
        if route.api_key_required:
            limited = self._usage_plan(authorized.get("usageIdentifierKey"))
            if limited is not None:
                return limited
        invalid = self._validate(route, query, body)
        if invalid is not None:
            return invalid
        event = self._proxy_event(route, method, path, query, headers, body, authorized, ctx)
        result, error = self.invoke(route.function, event)
        if error is not None or not isinstance(result, dict):
            return Answer(502, json.dumps({"message": "Internal server error"}))
        return Answer(
            int(result.get("statusCode", 200)),
            str(result.get("body") or ""),
            {k: str(v) for k, v in (result.get("headers") or {}).items()},
        )

    def _route(self, method: str, resource: str) -> Route | None:
        for route in self.api.routes:
            if route.path == resource and route.method == method:
                return route
        return None

    def _authorize(self, route, headers, method_arn, ctx) -> dict[str, Any] | Answer:
        if route.authorizer is None:
            return {}
        authorizer = self.api.authorizers[route.authorizer]
        lower = {k.lower(): v for k, v in headers.items()}
        token = lower.get(authorizer.header.lower())
        if not token:
            return self._refuse("UNAUTHORIZED", 401, "Unauthorized")
        if authorizer.validation_regex and not re.match(authorizer.validation_regex, token):
            return self._refuse("UNAUTHORIZED", 401, "Unauthorized")
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        result, error = self.invoke(authorizer.function, event)
        if error is not None:
            if str(error) == "Unauthorized":
                return self._refuse("UNAUTHORIZED", 401, "Unauthorized")
            return self._refuse("AUTHORIZER_FAILURE", 500, "Authorizer error")
        if not _allows(result, method_arn):
            ctx["tenant"] = (result or {}).get("principalId", "")
            return self._refuse("ACCESS_DENIED", 403, "User is not authorized")
        ctx["tenant"] = (result.get("context") or {}).get("tenant", "")
        ctx["token_id"] = (result.get("context") or {}).get("token_id", "")
        return result

    def _usage_plan(self, key_value: Any) -> Answer | None:
        found = self.api.plan_of(str(key_value)) if key_value else None
        if found is None:
            return self._refuse("INVALID_API_KEY", 403, "Forbidden")
        key, plan = found
        with self.lock:
            bucket = self.buckets.setdefault(
                key.key_id, Bucket(float(plan.rate_per_s or 1e9), float(plan.burst or 1e9))
            )
        if plan.rate_per_s and not self._take(bucket):
            return self._refuse("THROTTLED", 429, "Too Many Requests")
        if plan.quota:
            day = self.clock().strftime("%Y-%m-%d")
            with self.lock:
                count = self.usage.get((plan.plan_id, key.key_id, day), 0)
                if count >= plan.quota:
                    return self._refuse("QUOTA_EXCEEDED", 429, "Limit Exceeded")
                self.usage[(plan.plan_id, key.key_id, day)] = count + 1
        return None

    def _take(self, bucket: Bucket) -> bool:
        with self.lock:
            return bucket.take(self.monotonic())

    def _validate(self, route: Route, query: dict[str, str], body: bytes) -> Answer | None:
        if route.validate_parameters:
            missing = [q for q in route.required_query if not query.get(q)]
            if missing:
                text = f"Missing required request parameters: [{', '.join(missing)}]"
                return self._refuse("BAD_REQUEST_PARAMETERS", 400, text, text)
        if route.validate_body and route.body_schema is not None:
            import jsonschema

            try:
                doc = json.loads(body or b"null")
                jsonschema.Draft4Validator(_draft4(route.body_schema)).validate(doc)
            except (ValueError, jsonschema.ValidationError) as exc:
                text = f"[{getattr(exc, 'message', 'Invalid JSON')}]".replace('"', "'")
                return self._refuse("BAD_REQUEST_BODY", 400, "Invalid request body", text)
        return None

    def _refuse(self, kind: str, status: int, default: str, validation: str = "") -> Answer:
        """The template's gateway response for ``kind`` (API Gateway's default otherwise)."""
        family = {"UNAUTHORIZED": "DEFAULT_4XX", "AUTHORIZER_FAILURE": "DEFAULT_5XX"}
        status_t, body_t = self.api.responses.get(kind) or self.api.responses.get(
            family.get(kind, ""), (status, "")
        )
        if not body_t:
            body_t = json.dumps({"message": default})
        body = body_t.replace("$context.error.validationErrorString", validation)
        body = body.replace("$context.error.message", default)
        return Answer(status_t, body, {"Content-Type": "application/json"}, kind)

    def _proxy_event(self, route, method, path, query, headers, body, auth, ctx):
        now = self.clock()
        authorizer = {"principalId": auth.get("principalId", ""), **(auth.get("context") or {})}
        if auth.get("usageIdentifierKey"):
            authorizer["integrationLatency"] = 0
        return {
            "resource": "/" + route.path,
            "path": "/" + route.path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/" + route.path,
                "httpMethod": method,
                "path": "/" + path,
                "stage": self.api.stage,
                "requestId": ctx["requestId"],
                "accountId": self.account,
                "apiId": self.api.api_id,
                "identity": {"sourceIp": ctx["ip"], "userAgent": headers.get("User-Agent", "")},
                "authorizer": authorizer,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "protocol": "HTTP/1.1",
            },
            "body": body.decode("utf-8", "replace") if body else None,
            "isBase64Encoded": False,
        }

    # ----------------------------------------------------------- access log
    def _write_log(self, ctx: dict[str, Any], answer: Answer) -> None:
        entry = {
            "requestId": ctx["requestId"],
            "ip": ctx["ip"],
            "time": self.clock().strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "method": ctx["method"],
            "path": ctx.get("path", ""),
            "status": answer.status,
            "tenant": ctx.get("tenant", ""),
            "tokenId": ctx.get("token_id", ""),
            "error": answer.error_type,
        }
        self.log.append(entry)
        if self.access_log is not None:
            self.access_log.parent.mkdir(parents=True, exist_ok=True)
            with self.access_log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    # ------------------------------------------------------ management API
    def management(self, method: str, raw_path: str) -> Answer | None:
        """GetApiKey / GetUsagePlan / GetUsage as boto3's apigateway client calls them."""
        parts = urlsplit(raw_path)
        segs = parts.path.strip("/").split("/")
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if method != "GET":
            return None
        if len(segs) == 2 and segs[0] == "apikeys":
            key = self.api.keys.get(segs[1])
            if key is None:
                return _not_found("Invalid API Key identifier specified")
            doc = {"id": key.key_id, "name": key.name, "enabled": True}
            if q.get("includeValue") == "true":
                doc["value"] = key.value
            return Answer(200, json.dumps(doc))
        if segs[0] == "usageplans" and len(segs) in (2, 3):
            plan = next((p for p in self.api.plans if p.plan_id == segs[1]), None)
            if plan is None:
                return _not_found("Invalid Usage Plan ID specified")
            if len(segs) == 2:
                return Answer(200, json.dumps(_plan_doc(plan)))
            if segs[2] == "usage":
                return Answer(200, json.dumps(self._usage_doc(plan, q)))
        return None

    def _usage_doc(self, plan: UsagePlan, q: dict[str, str]) -> dict[str, Any]:
        key_id, day = q.get("keyId", ""), q.get("startDate", "")
        with self.lock:
            used = self.usage.get((plan.plan_id, key_id, day), 0)
        remaining = max(0, (plan.quota or 0) - used)
        return {
            "usagePlanId": plan.plan_id,
            "startDate": day,
            "endDate": q.get("endDate", day),
            # boto3 reads the shape's `items` from the JSON name "values"
            "values": {key_id: [[used, remaining]]} if key_id in plan.key_ids else {},
        }


def _allows(result: Any, method_arn: str) -> bool:
    if not isinstance(result, dict):
        return False
    statements = (result.get("policyDocument") or {}).get("Statement") or []
    allowed = False
    for st in statements:
        resources = st.get("Resource")
        resources = resources if isinstance(resources, list) else [resources]
        hit = any(_arn_matches(str(r), method_arn) for r in resources)
        if hit and st.get("Effect") == "Deny":
            return False
        allowed |= hit and st.get("Effect") == "Allow"
    return allowed


def _arn_matches(pattern: str, arn: str) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, arn) is not None


def _draft4(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "$schema"}


def _plan_doc(plan: UsagePlan) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": plan.plan_id, "name": plan.name}
    if plan.rate_per_s is not None:
        doc["throttle"] = {"rateLimit": plan.rate_per_s, "burstLimit": plan.burst}
    if plan.quota is not None:
        doc["quota"] = {"limit": plan.quota, "period": plan.quota_period, "offset": 0}
    return doc


def _not_found(message: str) -> Answer:
    return Answer(404, json.dumps({"message": message}), {"x-amzn-ErrorType": "NotFoundException"})


class GatewayServer:
    """HTTP in front of a ``Gateway``: ``url`` is the stage URL (``RASTERDROP_API_URL``),
    ``endpoint`` the management endpoint (``AWS_ENDPOINT_URL_API_GATEWAY``)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        outer = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = outer.gateway.management(self.command, self.path)
                if answer is None:
                    answer = outer.gateway.handle(
                        self.command, self.path, dict(self.headers.items()), body,
                        self.client_address[0],
                    )  # fmt: skip
                data = answer.body.encode("utf-8")
                self.send_response(answer.status)
                headers = {"Content-Type": "application/json", **answer.headers}
                if answer.error_type:
                    headers["x-amzn-ErrorType"] = answer.error_type
                for k, v in headers.items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._http = LocalServer(Handler)
        self.endpoint = self._http.endpoint
        self.url = f"{self.endpoint}/{gateway.api.stage}/"

    def start(self) -> GatewayServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
