"""The S3 ends of the train action: a fetcher and a model store (see ``train_store``).

``S3ModelStore`` implements :class:`batch_image.model.stores.ModelStore` on
``s3://<bucket>/<models prefix><name>/<version>/``:

* ``reserve`` claims a version with a conditional write of
  ``<version>/reserved.json`` (``If-None-Match: *``): two trainings in the same
  second get different versions (``stamp``, ``stamp-01``, ...), and a version is
  never overwritten;
* ``publish`` uploads the staged files, ``model.json`` last (its presence means
  the version is complete), then removes the reservation;
* ``release`` removes the reservation of a version that was never published;
* ``promote`` moves ``current.json`` by compare-and-swap, forward only
  (:meth:`S3ModelStore.promote`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from batch_image import clock, s3io
from batch_image.errors import InternalError, InvalidInputError
from batch_image.model.card import ModelCard
from batch_image.model.stores import card_or_none, version_candidates
from batch_image.publish.layout import MODEL_CARD as CARD
from batch_image.publish.layout import MODEL_POINTER as POINTER
from batch_image.publish.layout import MODEL_RESERVATION as RESERVATION
from batch_image.publish.layout import MODELS_PREFIX
from batch_image.publish.protocol import publish
from batch_image.publish.sinks import S3Prefix

PROMOTE_ATTEMPTS = 5

log = logging.getLogger(__name__)


class S3ModelStore:
    def __init__(
        self,
        bucket: str,
        *,
        models_prefix: str = MODELS_PREFIX,
        s3: Any = None,
        scratch: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = models_prefix
        self.s3 = s3 or s3io.client()
        self.scratch = scratch

    def _key(self, name: str, version: str, filename: str = "") -> str:
        return f"{self.prefix}{name}/{version}/{filename}"

    def uri(self, name: str, version: str) -> str:
        return f"s3://{self.bucket}/{self._key(name, version)}"

    def reserve(self, name: str, stamp: str) -> str:
        for version in version_candidates(stamp):
            if s3io.head(self.s3, self.bucket, self._key(name, version, CARD)) is not None:
                continue  # published earlier (its reservation may be gone)
            try:
                s3io.put_json(
                    self.s3,
                    self.bucket,
                    self._key(name, version, RESERVATION),
                    {"version": version},
                    if_none_match=True,
                )
            except Exception as exc:
                if s3io.is_precondition_failed(exc):
                    continue
                raise
            return version
        raise InvalidInputError(
            f"more than {len(version_candidates(stamp)) - 1} versions of {name} in one second",
            code="version_exhausted",
        )

    def staging_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="rasterdrop-staging-", dir=self.scratch))

    def publish(self, staged: Path, name: str, version: str) -> str:
        staged = Path(staged)
        files = {
            p.relative_to(staged).as_posix(): p
            for p in sorted(staged.rglob("*"))
            if p.is_file() and p.relative_to(staged).as_posix() != CARD
        }
        sink = S3Prefix(self.s3, self.bucket, self._key(name, version))
        publish(sink, files, staged / CARD, done=CARD, failed=None)
        self.s3.delete_object(Bucket=self.bucket, Key=self._key(name, version, RESERVATION))
        shutil.rmtree(staged, ignore_errors=True)
        return self.uri(name, version)

    def release(self, name: str, version: str) -> None:
        if s3io.head(self.s3, self.bucket, self._key(name, version, CARD)) is None:
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(name, version, RESERVATION))

    def promote(self, name: str, version: str, *, force: bool = False) -> bool:
        """Move ``current.json`` to ``version`` with a compare-and-swap on its ETag.

        ``IfNoneMatch`` when there is no pointer yet, ``IfMatch`` on the ETag read
        otherwise: two trainings finishing together cannot lose an update, and
        unless ``force`` the pointer only moves forward (versions are sortable UTC
        stamps), so a late, older run never rolls it back. Returns whether the
        pointer now names ``version`` because of this call.
        """
        key = f"{self.prefix}{name}/{POINTER}"
        for _ in range(PROMOTE_ATTEMPTS):
            found = s3io.get_json(self.s3, self.bucket, key)
            current = found[0].get("version") if found and isinstance(found[0], dict) else None
            if current == version:
                return False
            if current is not None and not force and str(current) > version:
                log.info("current.json names %s, newer than %s: not moved", current, version)
                return False
            doc = {"version": version, "updated_at": clock.iso_stamp()}
            try:
                if found is None:
                    s3io.put_json(self.s3, self.bucket, key, doc, if_none_match=True)
                else:
                    s3io.put_json(self.s3, self.bucket, key, doc, if_match=s3io.etag_of(found[1]))
                return True
            except Exception as exc:
                if not s3io.is_precondition_failed(exc):
                    raise
                time.sleep(0.2)
        raise InternalError(
            f"could not move {key}: too many concurrent updates", code="promote_race"
        )

    def current(self, name: str) -> str | None:
        found = s3io.get_json(self.s3, self.bucket, f"{self.prefix}{name}/{POINTER}")
        return str(found[0]["version"]) if found and isinstance(found[0], dict) else None

    def current_card(self, name: str) -> ModelCard | None:
        """The card of the version ``current.json`` names (None: none, or unreadable)."""
        version = self.current(name)
        if version is None:
            return None
        found = s3io.get_json(self.s3, self.bucket, self._key(name, version, CARD))
        return card_or_none(found[0] if found else None)
