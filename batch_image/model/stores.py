"""Where trained models go: the I/O ends of the train action.

The trainer needs two small things from the outside world, so the S3 job only
swaps them:

* a *fetcher* ``fetch(uri) -> Path``: a local copy of an image, label raster
  or polygon file named in the manifest (:func:`local_fetcher` resolves paths
  relative to the manifest's directory);
* a *model store* (:class:`ModelStore`): reserve a version, publish a staged
  model directory under it, and move ``current.json`` on promotion.

:class:`VersionedStore` is ``<root>/<name>/<version>/`` plus
``<root>/<name>/current.json`` on a local disk; :class:`DirectoryStore` writes
one model straight into a directory (``train --image --labels --out DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from batch_image.errors import InvalidInputError

Fetch = Callable[[str], Path]
POINTER = "current.json"
MAX_SUFFIX = 99


def version_stamp(now: datetime | None = None) -> str:
    """UTC timestamp version, sortable: ``20261126T091500Z``."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def version_candidates(stamp: str) -> list[str]:
    """The stamp, then ``stamp-01`` .. ``stamp-99`` (all sort after the bare stamp)."""
    return [stamp] + [f"{stamp}-{i:02d}" for i in range(1, MAX_SUFFIX + 1)]


def resolve_uri(base: str, uri: str) -> str:
    """``uri`` as given when absolute (a path or ``scheme://``), else relative to ``base``.

    ``base`` is the manifest's location: a local directory or an ``s3://bucket/prefix/``.
    """
    if "://" in uri or uri.startswith("/"):
        return uri
    if "://" in base:
        import posixpath

        scheme, rest = base.split("://", 1)
        bucket, _, prefix = rest.partition("/")
        key = posixpath.normpath(posixpath.join(prefix, uri))
        if key.startswith("../") or key == "..":
            raise InvalidInputError(
                f"{uri} climbs out of the bucket from {base}", code="manifest_invalid"
            )
        return f"{scheme}://{bucket}/{key}"
    return str(Path(base) / uri)


def local_fetcher(base: Path) -> Fetch:
    """Resolve manifest paths relative to ``base``; refuse URIs a local run cannot read."""

    def fetch(uri: str) -> Path:
        if "://" in uri:
            raise InvalidInputError(
                f"{uri} is not a local path: run the S3 train job for s3:// manifests",
                code="manifest_uri_unsupported",
            )
        path = Path(uri).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise InvalidInputError(f"{uri} does not exist (looked at {path})", code="not_found")
        return path

    return fetch


class ModelStore(Protocol):
    def reserve(self, name: str, stamp: str) -> str:
        """Claim a version not used before (``stamp`` or ``stamp-NN``) and return it."""
        ...

    def publish(self, staged: Path, name: str, version: str) -> str:
        """Make the staged directory's files the model ``name``/``version``; return where."""
        ...

    def release(self, name: str, version: str) -> None:
        """Give back a reserved version whose training failed."""
        ...

    def promote(self, name: str, version: str) -> None:
        """Point ``current.json`` at ``version``."""
        ...

    def staging_dir(self) -> Path:
        """A fresh local directory to stage files in."""
        ...


def write_json_atomic(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VersionedStore:
    """``<root>/<name>/<version>/``: versions created exclusively, never overwritten."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def reserve(self, name: str, stamp: str) -> str:
        base = self.root / name
        base.mkdir(parents=True, exist_ok=True)
        for version in version_candidates(stamp):
            try:
                (base / version).mkdir()
            except FileExistsError:
                continue
            return version
        raise InvalidInputError(
            f"more than {MAX_SUFFIX} versions of {name} in one second", code="version_exhausted"
        )

    def staging_dir(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))

    def publish(self, staged: Path, name: str, version: str) -> str:
        target = self.root / name / version
        # rename(2) may replace an empty directory: the reserved one. Readers see either
        # nothing or the complete model, never half of it.
        os.rename(staged, target)
        return str(target)

    def release(self, name: str, version: str) -> None:
        target = self.root / name / version
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()

    def promote(self, name: str, version: str) -> None:
        write_json_atomic(self.root / name / POINTER, {"version": version})

    def current(self, name: str) -> str | None:
        path = self.root / name / POINTER
        if not path.is_file():
            return None
        return str(json.loads(path.read_text())["version"])


class DirectoryStore:
    """One model straight into ``directory`` (the quick form and ``make demo``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def reserve(self, name: str, stamp: str) -> str:
        return stamp

    def staging_dir(self) -> Path:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.directory.parent))

    def publish(self, staged: Path, name: str, version: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in staged.iterdir())
        # model.json last: a directory with a card is a complete model.
        names.sort(key=lambda n: n == "model.json")
        for n in names:
            os.replace(staged / n, self.directory / n)
        shutil.rmtree(staged, ignore_errors=True)
        return str(self.directory)

    def release(self, name: str, version: str) -> None:
        return None

    def promote(self, name: str, version: str) -> None:
        return None
