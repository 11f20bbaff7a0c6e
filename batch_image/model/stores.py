"""Where trained models go: the I/O ends of the train action.

The trainer needs two small things from the outside world, so the S3 job only
swaps them: a *fetcher* (:mod:`batch_image.train.fetchers`) and a *model store*
(:class:`ModelStore`): reserve a version, publish a staged model directory under
it (through the result protocol: ``model.json`` last), and move ``current.json``
on promotion (:mod:`batch_image.model.s3_store` is the S3 one).

:class:`VersionedStore` is ``<root>/<name>/<version>/`` plus
``<root>/<name>/current.json`` on a local disk; :class:`DirectoryStore` writes
one model straight into a directory (``train --image --labels --out DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from batch_image.errors import InvalidInputError
from batch_image.publish.layout import MODEL_CARD, MODEL_POINTER
from batch_image.publish.protocol import publish
from batch_image.publish.sinks import LocalDir

MAX_SUFFIX = 99


def version_candidates(stamp: str) -> list[str]:
    """The stamp, then ``stamp-01`` .. ``stamp-99`` (all sort after the bare stamp)."""
    return [stamp] + [f"{stamp}-{i:02d}" for i in range(1, MAX_SUFFIX + 1)]


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
        LocalDir(self.root / name).put_json(MODEL_POINTER, {"version": version})

    def current(self, name: str) -> str | None:
        path = self.root / name / MODEL_POINTER
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
        files = {p.name: p for p in sorted(staged.iterdir()) if p.name != MODEL_CARD}
        # the result protocol: model.json last, so a directory with a card is complete
        publish(LocalDir(self.directory), files, staged / MODEL_CARD, done=MODEL_CARD, failed=None)
        shutil.rmtree(staged, ignore_errors=True)
        return str(self.directory)

    def release(self, name: str, version: str) -> None:
        return None

    def promote(self, name: str, version: str) -> None:
        return None
