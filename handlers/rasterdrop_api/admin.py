"""Token administration for operators, against the deployed stack (boto3).

    python -m rasterdrop_api.admin --stack Rasterdrop issue acme [--label "ci runner"]
    python -m rasterdrop_api.admin --stack Rasterdrop list [--tenant acme]
    python -m rasterdrop_api.admin --stack Rasterdrop revoke <token id>

(run with ``handlers/`` on ``PYTHONPATH``; ``make token ARGS="issue acme"`` does that). The
stack's outputs name the token parameter prefix and each tenant's usage plans and keys
(``ApiTokenParameterPrefix``, ``ApiTenants``). ``issue`` prints the token once: only its
salted hash is stored. ``revoke`` keeps the record with ``revoked_at`` (an audit trail;
the authorizer answers 403 for it) and takes effect within the authorizer's cache time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from rasterdrop_api import credentials
from rasterdrop_api.store import (
    KINDS,
    TokenRecord,
    UsageKey,
    all_records,
    read_record,
    write_record,
)

OUTPUT_PREFIX = "ApiTokenParameterPrefix"
OUTPUT_TENANTS = "ApiTenants"
OUTPUT_URL = "ApiUrl"


class AdminError(RuntimeError):
    pass


@dataclass(frozen=True)
class Issued:
    token: str
    record: TokenRecord


class TokenAdmin:
    """Issue, list and revoke tenants' tokens. ``tenants``: the ``ApiTenants`` output,
    ``{tenant: {"uploads": {"plan_id", "key_id"}, "reads": {...}}}``."""

    def __init__(
        self,
        *,
        ssm: Any,
        apigateway: Any,
        parameter_prefix: str,
        tenants: Mapping[str, Mapping[str, Mapping[str, str]]],
        now: Any = None,
    ) -> None:
        self.ssm, self.apigateway = ssm, apigateway
        self.prefix = parameter_prefix
        self.tenants = tenants
        self._now = now or (lambda: datetime.now(UTC))

    def issue(self, tenant: str, label: str = "") -> Issued:
        if tenant not in self.tenants:
            known = ", ".join(sorted(self.tenants)) or "none"
            raise AdminError(f"no tenant {tenant!r} in the stack (tenants: {known})")
        usage = {}
        for kind in KINDS:
            ids = self.tenants[tenant][kind]
            key = self.apigateway.get_api_key(apiKey=ids["key_id"], includeValue=True)
            usage[kind] = UsageKey(plan_id=ids["plan_id"], key_id=ids["key_id"], key=key["value"])
        new = credentials.new_token()
        record = TokenRecord(
            token_id=new.token_id,
            tenant=tenant,
            salt=new.salt,
            sha256=new.digest,
            created_at=self._stamp(),
            label=label,
            usage=usage,
        )
        write_record(self.ssm, self.prefix, record, overwrite=False)
        return Issued(token=new.token, record=record)

    def list(self, tenant: str | None = None) -> list[TokenRecord]:
        return [r for r in all_records(self.ssm, self.prefix) if tenant in (None, r.tenant)]

    def revoke(self, token_id: str) -> TokenRecord:
        record = read_record(self.ssm, self.prefix, token_id)
        if record is None:
            raise AdminError(f"no token {token_id!r}")
        if record.revoked_at:
            return record
        revoked = replace(record, revoked_at=self._stamp())
        write_record(self.ssm, self.prefix, revoked, overwrite=True)
        return revoked

    def _stamp(self) -> str:
        return self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_stack(stack_name: str, session: Any = None) -> tuple[TokenAdmin, str]:
    """A TokenAdmin for the deployed stack, and its API URL, from the stack's outputs."""
    import boto3

    session = session or boto3.session.Session()
    stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if OUTPUT_PREFIX not in outputs:
        raise AdminError(f"stack {stack_name} has no API (deployed with api=false?)")
    admin = TokenAdmin(
        ssm=session.client("ssm"),
        apigateway=session.client("apigateway"),
        parameter_prefix=outputs[OUTPUT_PREFIX],
        tenants=json.loads(outputs[OUTPUT_TENANTS]),
    )
    return admin, outputs.get(OUTPUT_URL, "")


def describe(record: TokenRecord) -> str:
    state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
    label = f"  {record.label}" if record.label else ""
    return f"{record.token_id}  {record.tenant:<16} created {record.created_at}  {state}{label}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rasterdrop-tokens", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="Rasterdrop", help="CloudFormation stack name")
    sub = parser.add_subparsers(dest="command", required=True)
    p_issue = sub.add_parser("issue", help="issue a token for TENANT (printed once)")
    p_issue.add_argument("tenant")
    p_issue.add_argument("--label", default="")
    p_list = sub.add_parser("list", help="list tokens (ids, tenants, state; never secrets)")
    p_list.add_argument("--tenant")
    p_revoke = sub.add_parser("revoke", help="revoke a token by its id")
    p_revoke.add_argument("token_id")
    args = parser.parse_args(argv)
    try:
        admin, url = from_stack(args.stack)
        return run(admin, url, args, print)
    except AdminError as exc:
        print(f"rasterdrop-tokens: {exc}", file=sys.stderr)
        return 2


def run(admin: TokenAdmin, url: str, args: argparse.Namespace, echo: Any) -> int:
    if args.command == "issue":
        issued = admin.issue(args.tenant, args.label)
        echo(f"# token {issued.record.token_id} for tenant {args.tenant}: shown once, store it now")
        echo(f"RASTERDROP_API_URL={url}")
        echo(f"RASTERDROP_TOKEN={issued.token}")
    elif args.command == "list":
        for record in admin.list(args.tenant):
            echo(describe(record))
    else:
        echo(describe(admin.revoke(args.token_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
