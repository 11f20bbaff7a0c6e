"""Per-tenant usage plans: API Gateway itself throttles (429) and counts the daily quota.

Each tenant has two plans on the stage, each with its own API key (API Gateway allows one
plan per key and stage): ``uploads`` (rate, burst and the daily quota of
``uploads_per_day``) and ``reads`` (the same rate and burst, no quota, so polling a status
never uses up uploads). The authorizer returns the key of the plan that applies
(``apiKeySource: AUTHORIZER``); the key values never appear in the template.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from cdk.config import TenantPlan


class TenantPlans(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        api: apigw.RestApi,
        tenants: Mapping[str, TenantPlan],
        name_prefix: str,
    ) -> None:
        super().__init__(scope, id)
        #: tenant -> {"uploads"|"reads": {"plan_id", "key_id"}} (the ApiTenants output)
        self.ids: dict[str, dict[str, dict[str, str]]] = {}
        for tenant, plan in tenants.items():
            self.ids[tenant] = {
                "uploads": self._plan(api, tenant, "uploads", plan, name_prefix, quota=True),
                "reads": self._plan(api, tenant, "reads", plan, name_prefix, quota=False),
            }

    def _plan(
        self,
        api: apigw.RestApi,
        tenant: str,
        kind: str,
        plan: TenantPlan,
        name_prefix: str,
        *,
        quota: bool,
    ) -> dict[str, str]:
        name = f"{name_prefix}-{tenant}-{kind}"
        key = apigw.ApiKey(
            self,
            f"{tenant}-{kind}-key",
            api_key_name=name,
            description=f"rasterdrop tenant {tenant}: {kind} (returned by the authorizer)",
            enabled=True,
        )
        usage_plan = apigw.UsagePlan(
            self,
            f"{tenant}-{kind}",
            name=name,
            description=f"rasterdrop tenant {tenant}: {kind}",
            throttle=apigw.ThrottleSettings(rate_limit=plan.rate_per_s, burst_limit=plan.burst),
            quota=apigw.QuotaSettings(limit=plan.uploads_per_day, period=apigw.Period.DAY)
            if quota
            else None,
            api_stages=[apigw.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
        )
        usage_plan.add_api_key(key)
        return {"plan_id": usage_plan.usage_plan_id, "key_id": key.key_id}
