"""Where trained models go: the I/O ends of the train action.

The trainer needs two small things from the outside world, so the S3 job only
swaps them: a *fetcher* (:mod:`batch_image.train.fetchers`) and a *model store*
(:class:`ModelStore`): reserve a version, publish a staged model directory under
it (through the result protocol, :mod:`batch_image.publish.protocol`: a version
whose ``model.json`` is there is complete, one without it is not a model yet), and
move ``current.json`` on promotion, saying whether it moved
(:mod:`batch_image.model.s3_store` is the S3 one).

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
from typing import Any, Protocol

from batch_image.errors import InternalError, InvalidInputError, RasterdropError
from batch_image.model.card import ModelCard
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

    def promote(self, name: str, version: str) -> bool:
        """Point ``current.json`` at ``version``; return whether this call moved it.

        False when the pointer already names ``version``, when the store keeps it
        from moving (S3: forward only, a newer version is current) or when the store
        has no pointer at all (:class:`DirectoryStore`): ``TrainResult.promoted``
        and the run report's ``promoted`` repeat this answer, never the request.
        """
        ...

    def staging_dir(self) -> Path:
        """A fresh local directory to stage files in."""
        ...

    def current(self, name: str) -> str | None:
        """The version ``current.json`` names (None: no pointer)."""
        ...

    def current_card(self, name: str) -> ModelCard | None:
        """That version's model card (None: no pointer, or a card that cannot be read):
        the promotion gate compares a new version with it."""
        ...


def card_or_none(data: Any) -> ModelCard | None:
    """A model card from its JSON, or None when it is not one."""
    if not isinstance(data, dict):
        return None
    try:
        return ModelCard.from_dict(data)
    except (KeyError, TypeError, ValueError, RasterdropError):
        return None


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
        """Move the complete staged directory onto the reserved (empty) version directory.

        This is the result protocol in one step rather than file by file. The protocol
        wants a reader never to see a done-marker (``model.json``) over incomplete
        files, and an old marker never to survive new files. ``rename(2)`` of a
        directory is atomic and may replace only an *empty* directory: before it the
        version holds nothing (no marker, not a model), after it every file and the
        marker at once; a version that somehow has files already is never overwritten
        (the rename fails). Staging is on the same file system (``staging_dir`` is
        under ``root``), so the rename cannot degrade into a copy. A staged directory
        without its card is refused: published, it would be a version that is never done.
        """
        staged = Path(staged)
        if not (staged / MODEL_CARD).is_file():
            raise InternalError(
                f"{staged} has no {MODEL_CARD}: nothing to publish", code="model_incomplete"
            )
        target = self.root / name / version
        os.rename(staged, target)
        return str(target)

    def release(self, name: str, version: str) -> None:
        target = self.root / name / version
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()

    def promote(self, name: str, version: str) -> bool:
        """Replace ``current.json`` atomically (``os.replace``); False if it named ``version``.

        Unlike S3 the local pointer is not forward-only: a local ``--promote`` is an
        operator's explicit choice, and one disk has no concurrent trainings to race.
        """
        if self.current(name) == version:
            return False
        LocalDir(self.root / name).put_json(MODEL_POINTER, {"version": version})
        return True

    def current(self, name: str) -> str | None:
        path = self.root / name / MODEL_POINTER
        if not path.is_file():
            return None
        return str(json.loads(path.read_text())["version"])

    def current_card(self, name: str) -> ModelCard | None:
        version = self.current(name)
        card = self.root / name / version / MODEL_CARD if version else None
        if card is None or not card.is_file():
            return None
        try:
            return card_or_none(json.loads(card.read_text()))
        except ValueError:
            return None


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

    def promote(self, name: str, version: str) -> bool:
        """A single model directory has no pointer to move."""
        return False

    def current(self, name: str) -> str | None:
        return None

    def current_card(self, name: str) -> ModelCard | None:
        return None
