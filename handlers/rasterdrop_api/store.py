"""Where token records live: one SSM SecureString parameter per token.

``<prefix><token id>`` (prefix ``/rasterdrop/<stack>/api/tokens/``) holds JSON::

    {"v": 1, "tenant": "acme", "salt": "<b64>", "sha256": "<hex>", "created_at": "...",
     "revoked_at": null, "label": "...",
     "usage": {"uploads": {"plan_id", "key_id", "key"}, "reads": {"plan_id", "key_id", "key"}}}

``usage`` names the tenant's two usage plans and their API keys: the authorizer returns
the uploads key for ``POST /v1/uploads`` (that plan's quota counts uploads per day) and the
reads key for everything else (throttled, no quota), as ``usageIdentifierKey``. A key
value is no secret for authentication (the token is), but it is kept encrypted all the same.

Writes are safe without locks: a record is created once (``Overwrite=False``: a token id
collision fails instead of replacing), and revocation only ever sets ``revoked_at``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 1
KINDS = ("uploads", "reads")


@dataclass(frozen=True)
class UsageKey:
    plan_id: str
    key_id: str
    key: str


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    tenant: str
    salt: str
    sha256: str
    created_at: str
    revoked_at: str | None = None
    label: str = ""
    usage: dict[str, UsageKey] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": SCHEMA,
                "tenant": self.tenant,
                "salt": self.salt,
                "sha256": self.sha256,
                "created_at": self.created_at,
                "revoked_at": self.revoked_at,
                "label": self.label,
                "usage": {k: vars(u) for k, u in self.usage.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, token_id: str, text: str) -> TokenRecord:
        doc = json.loads(text)
        if doc.get("v") != SCHEMA:
            raise ValueError(f"token record {token_id}: unknown schema {doc.get('v')!r}")
        return cls(
            token_id=token_id,
            tenant=str(doc["tenant"]),
            salt=str(doc["salt"]),
            sha256=str(doc["sha256"]),
            created_at=str(doc.get("created_at", "")),
            revoked_at=doc.get("revoked_at"),
            label=str(doc.get("label", "")),
            usage={k: UsageKey(**v) for k, v in (doc.get("usage") or {}).items()},
        )


def parameter_name(prefix: str, token_id: str) -> str:
    return f"{prefix.rstrip('/')}/{token_id}"


def read_record(ssm: Any, prefix: str, token_id: str) -> TokenRecord | None:
    """The record of ``token_id``, or None when there is none."""
    try:
        got = ssm.get_parameter(Name=parameter_name(prefix, token_id), WithDecryption=True)
    except ssm.exceptions.ParameterNotFound:
        return None
    return TokenRecord.from_json(token_id, got["Parameter"]["Value"])


def write_record(ssm: Any, prefix: str, record: TokenRecord, *, overwrite: bool) -> None:
    ssm.put_parameter(
        Name=parameter_name(prefix, record.token_id),
        Value=record.to_json(),
        Type="SecureString",
        Overwrite=overwrite,
        Description=f"rasterdrop API token of tenant {record.tenant} (salted hash only)",
    )


def all_records(ssm: Any, prefix: str) -> list[TokenRecord]:
    paginator = ssm.get_paginator("get_parameters_by_path")
    out = []
    for page in paginator.paginate(Path=prefix.rstrip("/"), WithDecryption=True):
        for p in page.get("Parameters", []):
            out.append(TokenRecord.from_json(p["Name"].rsplit("/", 1)[-1], p["Value"]))
    return sorted(out, key=lambda r: (r.tenant, r.created_at, r.token_id))
