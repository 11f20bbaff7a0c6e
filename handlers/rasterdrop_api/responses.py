"""JSON answers of the API routes (Lambda proxy integration format)."""

from __future__ import annotations

import json
from typing import Any

HEADERS = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def ok(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {"statusCode": status, "headers": dict(HEADERS), "body": json.dumps(body)}


def error(status: int, code: str, message: str) -> dict[str, Any]:
    """``{"code", "message"}``: the shape of every refusal, the gateway's own included."""
    return ok({"code": code, "message": message}, status)


def not_found() -> dict[str, Any]:
    """The same answer for "no such upload" and "another tenant's upload"."""
    return error(404, "not_found", "no upload of yours has this key")
