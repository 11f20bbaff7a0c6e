#!/usr/bin/env python3
"""CDK entry point: context -> validated config -> stack -> cdk-nag -> cloud assembly.

Run by the CDK CLI (`npx aws-cdk@2 synth|deploy`, context from cdk.json and
`-c key=value`) or directly (`make synth`: `CDK_OUTDIR=cdk.out python app.py`,
context from cdk.json).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from aws_cdk import App, Environment

from cdk.config import ConfigError, load_config, read_context
from cdk.synth import build_app

CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def _direct_run_context() -> dict:
    """cdk.json's context when not run by the CDK CLI (which passes it itself)."""
    if "CDK_CONTEXT_JSON" in os.environ or not CDK_JSON.exists():
        return {}
    return json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})


def main() -> int:
    app = App(context=_direct_run_context())
    try:
        config = load_config(read_context(app.node.try_get_context))  # context read once, here
    except ConfigError as exc:
        print(f"rasterdrop: {exc}", file=sys.stderr)
        return 2
    # A concrete environment is needed only to look up an existing VPC.
    env = (
        Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        )
        if config.vpc_id
        else None
    )
    try:
        build_app(config, env=env, app=app)
    except FileNotFoundError as exc:
        print(f"rasterdrop: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
