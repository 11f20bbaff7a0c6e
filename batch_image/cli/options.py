"""Options and exits shared by the commands (after rasterio's ``rio/options.py``).

Every command that has an S3 mode takes the same ``--bucket``/``--key``/
``--version-id``; every failure leaves through :func:`fail`: one categorized line
on stderr naming the user's file, and the exit code Batch acts on.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from batch_image.errors import RasterdropError


def fail(exc: RasterdropError) -> NoReturn:
    """One clear line on stderr, then the exit code Batch acts on."""
    click.echo(f"error [{exc.category}/{exc.code}]: {exc.message}", err=True)
    sys.exit(exc.exit_code)


def bucket_option(what: str) -> click.Option:
    return click.option("--bucket", help=f"S3 mode: the {what}'s bucket.")


def key_option(help_text: str) -> click.Option:
    return click.option("--key", help=help_text)


def version_id_option(what: str) -> click.Option:
    return click.option(
        "--version-id",
        "--version",
        "version_id",
        help=f'S3 mode: the {what}\'s version ("", "null" or absent: unversioned).',
    )


log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log format [default: $RASTERDROP_LOG_FORMAT or text].",
)


def workers_option(default_help: str = "all") -> click.Option:
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help=f"Cores to use [default: {default_help}].",
    )


def etag_option(what: str) -> click.Option:
    return click.option("--etag", help=f"S3 mode: the {what}'s ETag from the event (advisory).")


def size_option(what: str) -> click.Option:
    return click.option(
        "--size", help=f"S3 mode: the {what}'s size from the event (advisory; HEAD decides)."
    )
