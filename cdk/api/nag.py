"""cdk-nag (AwsSolutions) acknowledgements of the API, with their reasons (see cdk/nag.py)."""

from __future__ import annotations

R_COGNITO = (
    "Tenants are machines with per-tenant bearer tokens checked by a Lambda authorizer "
    "(salted hashes in SSM SecureString, constant-time compare), not Cognito users."
)
R_WAF_OFF = (
    "WAF is optional (api_waf, off by default: it costs ~6 USD/month + 0.60 USD per million "
    "requests); the per-tenant usage plans and the stage throttle limit the load without it."
)
R_APIGW_LOGS_ROLE = (
    "API Gateway's account-level CloudWatch role (needed for access and execution logs) uses "
    "the AWS-maintained AmazonAPIGatewayPushToCloudWatchLogs policy; it grants logs only."
)
R_API_PREFIX = (
    "Object ARNs end in a key prefix of the data bucket ('input/*', 'output/*', "
    "'partial/*/lease.json', 'models/*/current.json'): keys are per upload, a prefix is the "
    "narrowest resource. The results route reads, the uploads route signs POSTs into input/."
)
R_USAGE_PLANS = (
    "apigateway:GET on /usageplans/*: GetUsage and GetUsagePlan of the tenant's plan, whose id "
    "comes from the authorizer at run time (the plan ids would be a dependency cycle here)."
)
PREFIX = "AwsSolutions-IAM5[Resource::<DataBucket.Arn>/"
USAGE = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/usageplans/"
R_TOKENS = (
    "One SSM parameter per token under the stack's token prefix (tokens are issued at run "
    "time by the operator's admin tool); the authorizer may read only that path."
)
FUNCTIONS = ("Authorizer", "Uploads", "Results", "Usage")


def api_acknowledgements(
    *, api: bool, waf: bool, stack_name: str, r_xray: str, r_runtime: str
) -> list[tuple]:
    """(path, rule, reason) tuples for cdk/nag.py's list."""
    if not api:
        return []
    acks = [
        ("Api/Default/CloudWatchRole", "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:"
         "policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]", R_APIGW_LOGS_ROLE),
    ]  # fmt: skip
    for route in ("results/GET", "uploads/POST", "usage/GET"):
        acks.append((f"Api/Default/Default/v1/{route}", "AwsSolutions-COG4", R_COGNITO))
    if not waf:
        acks.append(("Api/Default/DeploymentStage.api", "AwsSolutions-APIG3", R_WAF_OFF))
    for fn in FUNCTIONS:
        acks.append((f"Api/Functions/{fn}", "AwsSolutions-L1", r_runtime))
        acks.append((f"Api/Functions/{fn}Role", "AwsSolutions-IAM5[Resource::*]", r_xray))
    for prefix in ("input/*", "output/*", "partial/*/lease.json", "models/*/current.json"):
        acks.append(("Api/Functions/ResultsRole", f"{PREFIX}{prefix}]", R_API_PREFIX))
    acks.append(("Api/Functions/UploadsRole", f"{PREFIX}input/*]", R_API_PREFIX))
    for suffix in ("*]", "*/usage]"):
        acks.append(("Api/Functions/UsageRole", USAGE + suffix, R_USAGE_PLANS))
    acks.append((
        "Api/Functions/AuthorizerRole",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
        f"parameter/rasterdrop/{stack_name}/api/tokens/*]",
        R_TOKENS,
    ))  # fmt: skip
    return acks
