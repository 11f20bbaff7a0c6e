"""What the sandbox takes from the template's REST API: routes, authorizer, validation,
usage plans and keys, gateway responses, the stage's access-log format.

Read from the synthesized CloudFormation, like the rules and jobs (``sandbox.stack``):
a changed route, model, plan, quota or response in the CDK code changes the sandbox too.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from sandbox.cfn import Resolver, TemplateError
from sandbox.stack import referenced_id, resources_of


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "v1/uploads"
    function: str  # logical id of the integration's function
    authorizer: str | None
    api_key_required: bool
    body_schema: dict[str, Any] | None
    required_query: tuple[str, ...]
    validate_body: bool
    validate_parameters: bool


@dataclass(frozen=True)
class Authorizer:
    logical_id: str
    function: str
    kind: str  # TOKEN | REQUEST
    header: str
    validation_regex: str | None


@dataclass(frozen=True)
class UsagePlan:
    logical_id: str
    plan_id: str
    name: str
    rate_per_s: float | None
    burst: int | None
    quota: int | None
    quota_period: str | None
    key_ids: tuple[str, ...]


@dataclass(frozen=True)
class ApiKey:
    logical_id: str
    key_id: str
    value: str
    name: str


@dataclass
class RestApi:
    logical_id: str
    api_id: str
    stage: str
    routes: list[Route]
    authorizers: dict[str, Authorizer]
    plans: list[UsagePlan]
    keys: dict[str, ApiKey]  # key id -> key
    responses: dict[str, tuple[int, str]]  # response type -> (status, template)
    access_log_format: str | None
    stage_rate: float | None = None
    stage_burst: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    def plan_of(self, key_value: str) -> tuple[ApiKey, UsagePlan] | None:
        for key in self.keys.values():
            if hmac_equal(key.value, key_value):
                for plan in self.plans:
                    if key.key_id in plan.key_ids:
                        return key, plan
        return None


def hmac_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _function_in(value: Any) -> str | None:
    """The Lambda function a (nested) ``Fn::GetAtt [X, Arn]`` inside ``value`` names."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return referenced_id(value)
        for v in value.values():
            found = _function_in(v)
            if found:
                return found
    if isinstance(value, list):
        for v in value:
            found = _function_in(v)
            if found:
                return found
    return None


def _short_id(logical_id: str) -> str:
    return hashlib.sha256(logical_id.encode()).hexdigest()[:10]


def read_rest_apis(template: dict[str, Any], r: Resolver) -> list[RestApi]:
    """Every REST API of the template with one stage, its ids bound in ``r``."""
    out = []
    for logical_id in resources_of(template, "AWS::ApiGateway::RestApi"):
        api_id = _short_id(logical_id)
        r.bind(logical_id, api_id, RootResourceId=f"{api_id}-root")
        out.append(_read_api(template, r, logical_id, api_id))
    return out


def _read_api(template: dict[str, Any], r: Resolver, api: str, api_id: str) -> RestApi:
    res = template["Resources"]
    stages = [
        (k, v["Properties"])
        for k, v in resources_of(template, "AWS::ApiGateway::Stage").items()
        if referenced_id(v["Properties"].get("RestApiId")) == api
    ]
    if len(stages) != 1:
        raise TemplateError(f"{api}: the sandbox serves exactly one stage, found {len(stages)}")
    stage_id, stage = stages[0]
    r.bind(stage_id, stage["StageName"])
    keys = {}
    for key_lid, key in resources_of(template, "AWS::ApiGateway::ApiKey").items():
        key_id = _short_id(key_lid)
        value = secrets.token_urlsafe(30)  # what API Gateway generates: never in the template
        r.bind(key_lid, key_id)
        keys[key_id] = ApiKey(key_lid, key_id, value, str(key["Properties"].get("Name", "")))
    plans = _plans(template, r, api)
    parents = {
        k: v["Properties"] for k, v in resources_of(template, "AWS::ApiGateway::Resource").items()
    }
    routes = [
        _route(template, r, v["Properties"], parents)
        for v in resources_of(template, "AWS::ApiGateway::Method").values()
        if referenced_id(v["Properties"].get("RestApiId")) == api
    ]
    authorizers = {}
    for lid, a in resources_of(template, "AWS::ApiGateway::Authorizer").items():
        p = a["Properties"]
        function = _function_in(p.get("AuthorizerUri"))
        if not function:
            raise TemplateError(f"{lid}: authorizer without a function of this stack")
        source = str(p.get("IdentitySource", "method.request.header.Authorization"))
        authorizers[lid] = Authorizer(
            lid, function, p.get("Type", "TOKEN"), source.rsplit(".", 1)[-1],
            p.get("IdentityValidationExpression"),
        )  # fmt: skip
    responses = {}
    for g in resources_of(template, "AWS::ApiGateway::GatewayResponse").values():
        p = g["Properties"]
        body = (p.get("ResponseTemplates") or {}).get("application/json", "")
        responses[p["ResponseType"]] = (int(p.get("StatusCode", 500)), body)
    settings = (stage.get("MethodSettings") or [{}])[0]
    outputs = {k: r.resolve(v["Value"]) for k, v in template.get("Outputs", {}).items()}
    del res
    return RestApi(
        logical_id=api,
        api_id=api_id,
        stage=stage["StageName"],
        routes=routes,
        authorizers=authorizers,
        plans=plans,
        keys=keys,
        responses=responses,
        access_log_format=(stage.get("AccessLogSetting") or {}).get("Format"),
        stage_rate=settings.get("ThrottlingRateLimit"),
        stage_burst=settings.get("ThrottlingBurstLimit"),
        outputs=outputs,
    )


def _plans(template: dict[str, Any], r: Resolver, api: str) -> list[UsagePlan]:
    members: dict[str, list[str]] = {}
    for k in resources_of(template, "AWS::ApiGateway::UsagePlanKey").values():
        p = k["Properties"]
        plan, key = referenced_id(p["UsagePlanId"]), referenced_id(p["KeyId"])
        members.setdefault(plan or "", []).append(_short_id(key or ""))
    plans = []
    for lid, plan in resources_of(template, "AWS::ApiGateway::UsagePlan").items():
        p = plan["Properties"]
        if not any(referenced_id(s.get("ApiId")) == api for s in p.get("ApiStages", [])):
            continue
        plan_id = _short_id(lid)
        r.bind(lid, plan_id)
        throttle, quota = p.get("Throttle") or {}, p.get("Quota") or {}
        plans.append(
            UsagePlan(
                logical_id=lid,
                plan_id=plan_id,
                name=str(p.get("UsagePlanName", lid)),
                rate_per_s=throttle.get("RateLimit"),
                burst=throttle.get("BurstLimit"),
                quota=quota.get("Limit"),
                quota_period=quota.get("Period"),
                key_ids=tuple(members.get(lid, ())),
            )
        )
    return plans


def _route(
    template: dict[str, Any], r: Resolver, p: dict[str, Any], parents: dict[str, Any]
) -> Route:
    parts = []
    node = referenced_id(p.get("ResourceId"))
    while node in parents:
        parts.append(parents[node]["PathPart"])
        node = referenced_id(parents[node]["ParentId"])
    function = _function_in((p.get("Integration") or {}).get("Uri"))
    if not function:
        raise TemplateError(f"method {p.get('HttpMethod')}: no Lambda integration of this stack")
    validator = template["Resources"].get(referenced_id(p.get("RequestValidatorId")) or "", {})
    vprops = validator.get("Properties", {})
    model = referenced_id((p.get("RequestModels") or {}).get("application/json"))
    schema = template["Resources"][model]["Properties"]["Schema"] if model else None
    query = tuple(
        name.rsplit(".", 1)[-1]
        for name, required in (p.get("RequestParameters") or {}).items()
        if name.startswith("method.request.querystring.") and required
    )
    return Route(
        method=p["HttpMethod"],
        path="/".join(reversed(parts)),
        function=function,
        authorizer=referenced_id(p.get("AuthorizerId")),
        api_key_required=bool(p.get("ApiKeyRequired")),
        body_schema=json.loads(json.dumps(schema)) if schema else None,
        required_query=query,
        validate_body=bool(vprops.get("ValidateRequestBody")),
        validate_parameters=bool(vprops.get("ValidateRequestParameters")),
    )
