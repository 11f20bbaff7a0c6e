"""``python -m sandbox``: the stack's flow on this machine, no AWS account needed."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 1000x800") from exc
    return w, h


def _context(items: tuple[str, ...]) -> dict[str, str]:
    """``-c key=value`` (repeatable) → stack context overrides, as ``cdk synth -c`` passes
    them: values stay strings (the stack's config parser reads numbers, booleans and JSON
    from them); a key the stack does not know is refused."""
    from cdk.config import CONTEXT_KEYS

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="-c")
        if key not in CONTEXT_KEYS:
            raise click.BadParameter(f"{key!r} is not a stack context key", param_hint="-c")
        out[key] = value
    return out


context_option = click.option(
    "-c",
    "--context",
    "context",
    multiple=True,
    metavar="KEY=VALUE",
    help="Stack context override (cdk.json key), as `cdk synth -c KEY=VALUE`; repeatable.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """rasterdrop sandbox: S3, SNS, SQS on moto's server; rules, jobs and handlers from the
    synthesized CDK template."""


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"))
@click.option("--scene", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--size", default="2600x2000", show_default=True, help="Sample scene size.")
@click.option("--trees", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.option("--keep-running", is_flag=True, help="Keep the endpoint up for the links.")
@context_option
def demo(
    out: Path,
    scene: Path | None,
    labels: Path | None,
    size: str,
    trees: int,
    keep_running: bool,
    context: tuple[str, ...],
) -> None:
    """Sample scene → model → upload → the email, with outputs copied to OUT."""
    from sandbox.demo import run_demo
    from sandbox.errors import SandboxError

    try:
        code = run_demo(
            out,
            scene=scene,
            labels=labels,
            size=_size(size),
            trees=trees,
            keep_running=keep_running,
            echo=click.echo,
            context=_context(context),
        )
    except (SandboxError, ValueError) as exc:  # cdk.config.ConfigError is a ValueError
        click.echo(f"sandbox: {exc}", err=True)
        code = 1
    sys.exit(code)


@main.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--prefix", default=None, help="Key prefix [default: the stack's input/ + uploads/].")
@click.option(
    "--model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A model directory (model.json + model.skops) [default: train the demo model].",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("sandbox-out")
)
@click.option("--keep-running", is_flag=True, help="Keep the endpoint up for the links.")
@context_option
def upload(
    files: tuple[Path, ...],
    prefix: str | None,
    model: Path | None,
    out: Path,
    keep_running: bool,
    context: tuple[str, ...],
) -> None:
    """Upload FILES to the sandbox bucket and print the email each one produces."""
    from sandbox.errors import SandboxError
    from sandbox.uploads import run_uploads

    try:
        code = run_uploads(
            list(files),
            prefix=prefix,
            model=model,
            out=out,
            keep_running=keep_running,
            echo=click.echo,
            context=_context(context),
        )
    except (SandboxError, ValueError) as exc:
        click.echo(f"sandbox: {exc}", err=True)
        code = 1
    sys.exit(code)


@main.command()
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("serve-out"))
@click.option("--size", default="800x600", show_default=True, help="Sample scene size.")
@click.option("--trees", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--tenant", default="demo-tenant", show_default=True)
@context_option
def serve(work: Path, size: str, trees: int, tenant: str, context: tuple[str, ...]) -> None:
    """The flow plus the tenants' API; prints RASTERDROP_API_URL and RASTERDROP_TOKEN."""
    from sandbox.errors import SandboxError
    from sandbox.serve import run_serve

    try:
        code = run_serve(
            work,
            size=_size(size),
            trees=trees,
            tenant=tenant,
            echo=click.echo,
            context=_context(context),
        )
    except (SandboxError, ValueError) as exc:
        click.echo(f"sandbox: {exc}", err=True)
        code = 1
    sys.exit(code)


@main.command("no-capacity")
def no_capacity() -> None:
    """A job that can get no instance: held RUNNABLE, cancelled by the queue's time limit,
    emailed as `no_capacity` (what a fresh account's 5-vCPU Spot quota does)."""
    from sandbox.capacity import run_no_capacity

    sys.exit(run_no_capacity(echo=click.echo))


if __name__ == "__main__":
    main()
