"""Synthesize the stack in-process (no Docker, no AWS account) and return its template."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk.config import RasterdropConfig
from cdk.nag import acknowledge_findings
from cdk.stack import RasterdropStack

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = REPO_ROOT / "handlers"
BATCH_IMAGE_DIR = REPO_ROOT / "batch_image"
CDK_JSON = REPO_ROOT / "cdk.json"


def feature_flags() -> dict[str, Any]:
    """The CDK feature flags of cdk.json (context keys starting with '@')."""
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return {k: v for k, v in context.items() if k.startswith("@")}


def build_app(
    config: RasterdropConfig,
    *,
    outdir: str | None = None,
    handlers_directory: Path = HANDLERS_DIR,
    batch_image_directory: Path = BATCH_IMAGE_DIR,
    env: Environment | None = None,
    context: Mapping[str, Any] | None = None,
    nag: bool = True,
    app: App | None = None,
) -> tuple[App, RasterdropStack]:
    """The app with the stack, acknowledgements applied and cdk-nag (AwsSolutions) registered.

    `app` is the CLI entry's App (context already read); otherwise a new App
    gets cdk.json's feature flags plus `context`.
    """
    for what, path in (("handlers", handlers_directory), ("batch image", batch_image_directory)):
        if not Path(path).is_dir():
            raise FileNotFoundError(f"{what} directory {path} does not exist")
    if app is None:
        app = App(outdir=outdir, context={**feature_flags(), **(context or {})})
    stack = RasterdropStack(
        app,
        config.stack_name,
        config=config,
        handlers_directory=str(handlers_directory),
        batch_image_directory=str(batch_image_directory),
        env=env,
        description="rasterdrop: GeoTIFF in S3 -> per-pixel prediction on AWS Batch -> email",
    )
    acknowledge_findings(stack, config)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def synth_template(
    config: RasterdropConfig,
    *,
    handlers_directory: Path = HANDLERS_DIR,
    batch_image_directory: Path = BATCH_IMAGE_DIR,
    env: Environment | None = None,
    nag: bool = True,
) -> dict[str, Any]:
    """Synthesize into a throwaway directory and return the CloudFormation template.

    Raises (RuntimeError from the CDK) if cdk-nag reports an unacknowledged finding.
    """
    with tempfile.TemporaryDirectory(prefix="rasterdrop-synth-") as outdir:
        app, stack = build_app(
            config,
            outdir=outdir,
            handlers_directory=handlers_directory,
            batch_image_directory=batch_image_directory,
            env=env,
            nag=nag,
        )
        assembly = app.synth()
        return assembly.get_stack_by_name(stack.stack_name).template
