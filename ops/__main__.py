"""`python -m ops doctor | bootstrap-model | smoke` (see ops/__init__.py)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import boto3
import click

ROOT = Path(__file__).resolve().parent.parent


def _config(context: tuple[str, ...]):
    """cdk.json's context with `-c key=value` overrides, validated like `app.py` does."""
    from cdk.config import load_config

    values = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    for item in context:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="-c")
        values[key] = value
    return load_config(values)


context_option = click.option(
    "-c", "--context", multiple=True, help="cdk context override key=value (as for cdk deploy)."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """rasterdrop operator commands against the account and region boto3 resolves."""


@main.command()
@context_option
def doctor(context: tuple[str, ...]) -> None:
    """Read-only preflight: bootstrap, quotas, instance families, roles, subscriptions."""
    from ops.doctor import AwsLimits, Clients, failed
    from ops.doctor import doctor as run

    session = boto3.session.Session()
    names = ("sts", "ssm", "ec2", "iam", "cloudformation", "sns", "s3")
    clients = Clients(**{n: session.client(n) for n in names})
    limits = AwsLimits(session.client("service-quotas"), session.client("lambda"))
    lines = run(clients, limits, _config(context))
    for line in lines:
        click.echo(str(line))
    sys.exit(1 if failed(lines) else 0)


@main.command("bootstrap-model")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@context_option
def bootstrap_model(model_dir: Path | None, context: tuple[str, ...]) -> None:
    """Publish MODEL (default: a sample model trained here) and point current.json at it."""
    from ops.bootstrap import bootstrap
    from ops.outputs import stack_outputs

    cfg = _config(context)
    session = boto3.session.Session()
    outputs = stack_outputs(session.client("cloudformation"), cfg.stack_name)
    done = bootstrap(session.client("s3"), outputs.bucket, cfg.model_name, model_dir)
    state = "published" if done.published else "already there"
    click.echo(
        f"model {done.name} {done.version} {state}: {done.uri}; current.json -> {done.version}"
    )


@main.command()
@click.option("--scene", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait.")
@context_option
def smoke(scene: Path | None, timeout: float, context: tuple[str, ...]) -> None:
    """Upload a small sample to input/smoke/, wait for the result and the message, clean up."""
    from ops.outputs import stack_outputs
    from ops.smoke import SmokeFailed, sample_scene
    from ops.smoke import smoke as run

    cfg = _config(context)
    session = boto3.session.Session()
    outputs = stack_outputs(session.client("cloudformation"), cfg.stack_name)
    with tempfile.TemporaryDirectory(prefix="rasterdrop-smoke-") as tmp:
        path = scene or sample_scene(Path(tmp))
        try:
            result = run(
                session.client("s3"), session.client("sns"), session.client("sqs"), outputs,
                path, timeout_s=timeout,
            )  # fmt: skip
        except SmokeFailed as exc:
            click.echo(f"smoke FAILED: {exc}", err=True)
            sys.exit(1)
    click.echo(result.report())


if __name__ == "__main__":
    main()
