"""What the routes read from an API Gateway (REST, Lambda proxy) event: the authorizer's
tenant (never the request's), the JSON body, one query parameter."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent


class BadRequest(ValueError):
    """The request is not what the route accepts; ``code`` names why."""

    def __init__(self, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


def tenant_of(event: APIGatewayProxyEvent) -> str:
    """The tenant the authorizer put in the context; a missing one is a deployment error."""
    tenant = (event.request_context.authorizer.raw_event or {}).get("tenant")
    if not tenant:
        raise PermissionError("no tenant in the authorizer context")
    return str(tenant)


def authorizer_value(event: APIGatewayProxyEvent, name: str) -> str:
    return str((event.request_context.authorizer.raw_event or {}).get(name) or "")


def json_body(event: APIGatewayProxyEvent) -> dict[str, Any]:
    try:
        body = json.loads(event.decoded_body or "")
    except (ValueError, TypeError):
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def query(event: APIGatewayProxyEvent, name: str) -> str:
    value = (event.query_string_parameters or {}).get(name)
    if not value:
        raise BadRequest(f"the query parameter {name!r} is required")
    return value
