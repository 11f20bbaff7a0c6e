"""The tenants' API in the template: REST API, authorizer, usage plans, WAF option."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cdk_helpers import cdk_json_context, props, resources

from cdk.api import names as N
from cdk.config import ConfigError, load_config
from cdk.synth import synth_template

pytestmark = pytest.mark.xdist_group("cdk")

TENANTS = {
    "acme": {"rate_per_s": 2, "burst": 4, "uploads_per_day": 10, "emails": ["a@example.com"]},
    "beta.co": {"rate_per_s": 0.5, "burst": 1, "uploads_per_day": 3},
}


@pytest.fixture(scope="module")
def api_template() -> dict[str, Any]:
    """Two tenants and the WAF on, cdk-nag enforcing."""
    return synth_template(
        load_config(
            {
                **cdk_json_context(),
                "tenants": TENANTS,
                "api_waf": True,
                "allowed_uploader_arns": ["arn:aws:iam::111122223333:role/uploader"],
            }
        )
    )


def test_default_stack_has_a_regional_api_with_authorizer_keys(template) -> None:
    (api,) = resources(template, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    assert resources(template, "AWS::WAFv2::WebACL") == {}
    assert set(template["Outputs"]) >= {N.OUTPUT_URL, N.OUTPUT_TENANTS, N.OUTPUT_TOKEN_PREFIX}


def test_api_off_means_no_api_and_no_stale_acknowledgement() -> None:
    from cdk import nag
    from cdk.synth import build_app

    config = load_config({**cdk_json_context(), "api": False})
    _, stack = build_app(config, nag=False)
    assert stack.api is None
    assert not any(a.path.startswith("Api/") for a in nag.acknowledgements(config))
    assert nag.unused_paths(stack, config) == []


def test_api_acknowledgements_match_constructs_with_tenants_and_waf() -> None:
    from cdk import nag
    from cdk.synth import build_app

    config = load_config({**cdk_json_context(), "tenants": TENANTS, "api_waf": True})
    _, stack = build_app(config, nag=False)
    assert nag.unused_paths(stack, config) == []
    assert not any(a.rule == "AwsSolutions-APIG3" for a in nag.acknowledgements(config))


def test_cfn_lint_reports_no_errors_with_tenants_and_waf(api_template) -> None:
    import time_machine
    from cfnlint.api import ManualArgs, lint

    from tests.cdk.test_cdk_lint import LINT_AS_OF, REGIONS

    with time_machine.travel(LINT_AS_OF, tick=False):
        matches = lint(json.dumps(api_template), config=ManualArgs(regions=REGIONS))
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_every_method_is_authorized_keyed_and_validated(api_template) -> None:
    methods = {
        p["Properties"]["HttpMethod"]: p["Properties"]
        for p in resources(api_template, "AWS::ApiGateway::Method").values()
    }
    assert sorted(methods) == ["GET", "POST"]
    for m in resources(api_template, "AWS::ApiGateway::Method").values():
        p = m["Properties"]
        assert p["AuthorizationType"] == "CUSTOM" and p["ApiKeyRequired"] is True
        assert p["Integration"]["Type"] == "AWS_PROXY"
        validator = props(api_template, p["RequestValidatorId"]["Ref"])
        assert validator["ValidateRequestBody"] and validator["ValidateRequestParameters"]
    (model,) = resources(api_template, "AWS::ApiGateway::Model").values()
    schema = model["Properties"]["Schema"]
    assert schema["required"] == ["filename", "size_bytes"]
    assert schema["additionalProperties"] is False


def test_authorizer_is_a_token_authorizer_without_cache(api_template) -> None:
    (auth,) = resources(api_template, "AWS::ApiGateway::Authorizer").values()
    p = auth["Properties"]
    assert p["Type"] == "TOKEN" and p["AuthorizerResultTtlInSeconds"] == 0
    assert p["IdentitySource"] == "method.request.header.Authorization"
    assert p["IdentityValidationExpression"] == N.TOKEN_HEADER_REGEX
    fn = props(api_template, N.ID_AUTHORIZER_FUNCTION)
    assert fn["Handler"] == N.HANDLER_AUTHORIZER
    assert fn["Environment"]["Variables"] == {
        "RASTERDROP_TOKEN_PARAMETER_PREFIX": "/rasterdrop/Rasterdrop/api/tokens/",
        "POWERTOOLS_SERVICE_NAME": "rasterdrop",
    }
    policies = [
        st
        for k, r in resources(api_template, "AWS::IAM::Policy").items()
        if k.startswith("ApiFunctionsAuthorizerRole")
        for st in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    ssm = [st for st in policies if st["Action"] == "ssm:GetParameter"]
    assert len(ssm) == 1 and "parameter/rasterdrop/Rasterdrop/api/tokens/*" in json.dumps(ssm)


def test_usage_plans_per_tenant_from_the_config(api_template) -> None:
    plans = {
        p["Properties"]["UsagePlanName"]: p["Properties"]
        for p in resources(api_template, "AWS::ApiGateway::UsagePlan").values()
    }
    assert sorted(plans) == [
        "Rasterdrop-acme-reads", "Rasterdrop-acme-uploads",
        "Rasterdrop-beta.co-reads", "Rasterdrop-beta.co-uploads",
    ]  # fmt: skip
    assert plans["Rasterdrop-acme-uploads"]["Throttle"] == {"RateLimit": 2, "BurstLimit": 4}
    assert plans["Rasterdrop-acme-uploads"]["Quota"] == {"Limit": 10, "Period": "DAY"}
    assert "Quota" not in plans["Rasterdrop-acme-reads"]
    assert plans["Rasterdrop-beta.co-uploads"]["Throttle"] == {"RateLimit": 0.5, "BurstLimit": 1}
    assert plans["Rasterdrop-beta.co-uploads"]["Quota"]["Limit"] == 3
    keys = resources(api_template, "AWS::ApiGateway::ApiKey")
    assert len(keys) == 4 and all("Value" not in k["Properties"] for k in keys.values())
    links = resources(api_template, "AWS::ApiGateway::UsagePlanKey")
    assert len(links) == 4
    # the tenant's emails join its notification routing
    subs = resources(api_template, "AWS::SNS::Subscription")
    acme = [s for s in subs.values() if s["Properties"].get("Endpoint") == "a@example.com"]
    assert acme and "acme" in json.dumps(acme[0]["Properties"].get("FilterPolicy"))


def test_gateway_responses_say_why_in_json(api_template) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(api_template, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert responses["QUOTA_EXCEEDED"]["StatusCode"] == "429"
    assert json.loads(responses["QUOTA_EXCEEDED"]["ResponseTemplates"]["application/json"]) == {
        "code": "quota_exceeded", "message": "daily upload quota reached",
    }  # fmt: skip
    assert responses["THROTTLED"]["StatusCode"] == "429"
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"


def test_access_logs_and_stage_settings(api_template) -> None:
    (stage,) = resources(api_template, "AWS::ApiGateway::Stage").values()
    p = stage["Properties"]
    fields = json.loads(p["AccessLogSetting"]["Format"])
    assert (
        fields["tenant"] == "$context.authorizer.tenant" and fields["status"] == "$context.status"
    )
    assert p["TracingEnabled"] is True
    (settings,) = p["MethodSettings"]
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == N.STAGE_RATE_PER_S


def test_waf_option_adds_a_rate_based_rule_on_the_stage(api_template) -> None:
    acl = props(api_template, N.ID_WEB_ACL)
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    (rule,) = acl["Rules"]
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"] == {"AggregateKeyType": "IP", "Limit": 1000}
    (assoc,) = resources(api_template, "AWS::WAFv2::WebACLAssociation").values()
    assert assoc["Properties"]["WebACLArn"] == {"Fn::GetAtt": [N.ID_WEB_ACL, "Arn"]}
    assert "/stages/" in json.dumps(assoc["Properties"]["ResourceArn"])


def test_upload_role_may_only_sign_into_input(api_template) -> None:
    statements = [
        st
        for k, r in resources(api_template, "AWS::IAM::Policy").items()
        if k.startswith("ApiFunctionsUploadsRole")
        for st in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    puts = [st for st in statements if st["Action"] == "s3:PutObject"]
    assert len(puts) == 1 and json.dumps(puts[0]["Resource"]).endswith('/input/*"]]}')


@pytest.mark.parametrize(
    "tenants",
    [{"a/b": {}}, {"acme": {"rate_per_s": 0}}, {"acme": {"burst": 0}}, {"acme": {"quota": 1}},
     {"acme": {"emails": ["not-an-email"]}}, ["acme"]],
)  # fmt: skip
def test_bad_tenants_are_refused(tenants) -> None:
    with pytest.raises(ConfigError, match="tenants"):
        load_config({**cdk_json_context(), "tenants": tenants})


def test_the_upload_restriction_lets_the_api_uploads_role_through(api_template) -> None:
    deny = [
        st
        for policy in resources(api_template, "AWS::S3::BucketPolicy").values()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if st.get("Sid") == "OnlyAllowedUploadersWriteInput"
    ]
    allowed = json.dumps(deny[0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
    assert "role/uploader" in allowed and "Rasterdrop-api-uploads-" in allowed
    roles = resources(api_template, "AWS::IAM::Role")
    role = props(api_template, next(k for k in roles if k.startswith("ApiFunctionsUploadsRole")))
    assert "Rasterdrop-api-uploads-" in json.dumps(role["RoleName"])


def test_the_api_construct_in_a_bare_stack() -> None:
    """`Api` on its own (no app, no config, no cdk-nag): one tenant, WAF off."""
    from aws_cdk import Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_secretsmanager as secretsmanager
    from aws_cdk.assertions import Match, Template

    from cdk.api import Api
    from cdk.api.functions import ApiHandlerProps
    from cdk.config import TenantPlan

    stack = Stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Bucket", "data-bucket")
    secret = secretsmanager.Secret.from_secret_name_v2(stack, "Secret", "link")
    layer_arn = "arn:aws:lambda:eu-west-1:017000801446:layer:Powertools:1"
    Api(
        stack,
        "Api",
        bucket=bucket,
        link_secret=secret,
        handlers=ApiHandlerProps(
            code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
            layer=lambda_.LayerVersion.from_layer_version_arn(stack, "Layer", layer_arn),
            log_retention=logs.RetentionDays.ONE_WEEK,
            environment={"RASTERDROP_BUCKET": "data-bucket"},
            model_name="landcover",
            upload_url_seconds=120,
            token_parameter_prefix="/rasterdrop/X/api/tokens/",
        ),
        tenants={"acme": TenantPlan(rate_per_s=3, burst=6, uploads_per_day=7)},
        waf=False,
        waf_rate_per_5min=1000,
    )
    tpl = Template.from_stack(stack)
    tpl.resource_count_is("AWS::Lambda::Function", 4)
    tpl.resource_count_is("AWS::ApiGateway::UsagePlan", 2)
    tpl.resource_count_is("AWS::WAFv2::WebACL", 0)
    tpl.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {"Quota": {"Limit": 7, "Period": "DAY"}, "Throttle": {"RateLimit": 3, "BurstLimit": 6}},
    )
    tpl.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": N.HANDLER_UPLOADS,
            "Environment": {
                "Variables": Match.object_like(
                    {"RASTERDROP_UPLOAD_URL_SECONDS": "120", "RASTERDROP_MODEL_NAME": "landcover"}
                )
            },
        },
    )
