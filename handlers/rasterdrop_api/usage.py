"""``GET /v1/usage``: today's (UTC) upload requests against the tenant's daily quota.

API Gateway counts and enforces the quota itself (the uploads usage plan); this reads its
count back (``GetUsage``) and the plan's limit (``GetUsagePlan``), for the plan and key the
authorizer named. The count is API Gateway's: upload *requests* granted today.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rasterdrop_api import responses


def usage(
    tenant: str, plan_id: str, key_id: str, *, apigateway: Any, now: datetime
) -> dict[str, Any]:
    if not plan_id or not key_id:
        return responses.error(500, "internal", "the authorizer named no usage plan")
    day = now.strftime("%Y-%m-%d")
    plan = apigateway.get_usage_plan(usagePlanId=plan_id)
    quota = plan.get("quota") or {}
    got = apigateway.get_usage(usagePlanId=plan_id, keyId=key_id, startDate=day, endDate=day)
    days = (got.get("items") or {}).get(key_id) or [[0, quota.get("limit", 0)]]
    used, remaining = (int(v) for v in days[-1])
    throttle = plan.get("throttle") or {}
    return responses.ok(
        {
            "tenant": tenant,
            "date": day,
            "uploads": used,
            "quota": int(quota.get("limit", 0)),
            "remaining": remaining,
            "period": quota.get("period", "DAY"),
            "rate_per_s": throttle.get("rateLimit"),
            "burst": throttle.get("burstLimit"),
        }
    )
