"""The tenants' front door: REST API, authorizer, per-tenant usage plans, optional WAF."""

from cdk.api.gateway import Api

__all__ = ["Api"]
