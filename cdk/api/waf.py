"""Optional WAF web ACL on the API stage: a rate-based rule per client IP (off by default).

Usage plans limit each *tenant*; this limits each *source address*, before the
authorizer runs, so a flood of unauthenticated requests costs no Lambda invocations.
"""

from __future__ import annotations

from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from cdk.api import names as N


class ApiFirewall(Construct):
    def __init__(self, scope: Construct, id: str, *, stage_arn: str, rate_per_5min: int) -> None:
        super().__init__(scope, id)
        visibility = lambda name: wafv2.CfnWebACL.VisibilityConfigProperty(  # noqa: E731
            cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "Default",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("RasterdropApi"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=rate_per_5min, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("RasterdropApiRatePerIp"),
                )
            ],
        )
        self.web_acl.override_logical_id(N.ID_WEB_ACL)
        wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
