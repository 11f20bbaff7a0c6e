"""``rasterdrop``: submit, status, download, usage. Exit codes: 0 succeeded, 2 rejected or
invalid input, 4 not authorized, 5 over quota, 1 other."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rasterdrop_client import settings as settings_mod
from rasterdrop_client.api import Client, Submission
from rasterdrop_client.errors import ClientError


def _client() -> Client:
    s = settings_mod.load()
    return Client(s.api_url, s.token)


def _run(fn) -> None:
    try:
        code = fn() or 0
    except ClientError as exc:
        click.echo(f"rasterdrop: {exc}", err=True)
        code = exc.exit_code
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="rasterdrop")
def main() -> None:
    """Submit GeoTIFFs to a rasterdrop API and fetch the predictions."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--wait", "wait_", is_flag=True, help="Wait until each result is ready.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Download results into OUT/<name>/ (implies --wait).")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Seconds to wait for all results.")  # fmt: skip
def submit(files: tuple[Path, ...], wait_: bool, out: Path | None, timeout: float) -> None:
    """Upload FILES; with --wait, wait for the results (and download them with --out)."""

    def run() -> int:
        client = _client()
        submissions = [_upload(client, path) for path in files]
        if not (wait_ or out):
            return 0
        worst = 0
        for sub in submissions:
            try:
                click.echo(f"waiting for {sub.key} ...", err=True)
                result = sub.wait(timeout=timeout)
                click.echo(f"{sub.key}: {result.status} ({_summary_line(result.doc)})")
                if out:
                    stem = sub.path.stem if sub.path else Path(sub.key).stem
                    for f in result.download(out / stem):
                        click.echo(f"  {f}")
            except ClientError as exc:
                click.echo(f"rasterdrop: {exc}", err=True)
                worst = worst or exc.exit_code
        return worst

    _run(run)


def _upload(client: Client, path: Path) -> Submission:
    size = path.stat().st_size if path.is_file() else 0
    with click.progressbar(length=size, label=f"uploading {path.name}", file=sys.stderr,
                           show_pos=True) as bar:  # fmt: skip
        sub = client.submit(path, progress=bar.update)
    click.echo(f"submitted {path.name} as {sub.key}")
    return sub


def _summary_line(doc: dict) -> str:
    summary = doc.get("summary") or {}
    classes = sorted(summary.get("classes") or [], key=lambda c: -c.get("share", 0))[:3]
    shares = ", ".join(f"{c['name']} {c['share']:.0%}" for c in classes)
    model = summary.get("model") or {}
    return f"model {model.get('name')} {model.get('version')}; {shares}" if shares else ""


@main.command()
@click.argument("key")
def status(key: str) -> None:
    """Show where the upload KEY stands (JSON); exit code as for submit --wait."""

    def run() -> int:
        result = _client().status(key)
        click.echo(json.dumps(result.doc, indent=2))
        if result.status in ("failed", "rejected"):
            result.raise_for_status()
        return 0

    _run(run)


@main.command()
@click.argument("key")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def download(key: str, out: Path) -> None:
    """Download the results of KEY into OUT."""

    def run() -> int:
        for f in _client().status(key).download(out):
            click.echo(str(f))
        return 0

    _run(run)


@main.command()
def usage() -> None:
    """Today's uploads against the daily quota."""

    def run() -> int:
        doc = _client().usage()
        click.echo(
            f"{doc['tenant']}: {doc['uploads']} of {doc['quota']} uploads today ({doc['date']} "
            f"UTC), {doc['remaining']} left; "
            f"rate {doc.get('rate_per_s')}/s, burst {doc.get('burst')}"
        )
        return 0

    _run(run)


if __name__ == "__main__":
    main()
