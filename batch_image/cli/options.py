"""Options and exits shared by the commands (after rasterio's ``rio/options.py``).

Every command that has an S3 mode takes the same ``--bucket``/``--key``/
``--version-id``; every failure leaves through :func:`fail` (or
:func:`exits_categorized` around a library call): one categorized line on stderr
naming the user's file, and the exit code Batch acts on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from batch_image.errors import InvalidInputError, RasterdropError

if TYPE_CHECKING:
    from batch_image.train.manifest import Manifest


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


@contextmanager
def exits_categorized() -> Iterator[None]:
    """Run a command's library call; a :class:`RasterdropError` leaves through :func:`fail`."""
    try:
        yield
    except RasterdropError as exc:
        fail(exc)


@dataclass(frozen=True)
class ManifestFile:
    """A local training manifest named on the command line.

    Read only by :meth:`read`, after the command has checked its form, so a usage
    error is reported before a missing file; an unreadable file is the categorized
    ``invalid_input``/``not_found`` (exit 2), not a click usage error.
    """

    path: Path

    @property
    def folder(self) -> Path:
        """Where the manifest's relative paths start."""
        return self.path.resolve().parent

    def read(self) -> Manifest:
        from batch_image.train.manifest import parse_manifest_text

        try:
            text = self.path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"manifest {self.path} cannot be read: {exc.strerror}", code="not_found"
            ) from exc
        return parse_manifest_text(text, source=self.path.name)


class ManifestFileType(click.ParamType):
    """``MANIFEST`` → :class:`ManifestFile` (a file path; a directory is a usage error)."""

    name = "manifest"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, ManifestFile):
            return value
        path = click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)
        return ManifestFile(Path(path))


def manifest_argument() -> Callable[[Any], Any]:
    return click.argument("manifest", required=False, type=ManifestFileType())


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
