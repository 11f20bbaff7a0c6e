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
  (:func:`batch_image.s3io.promote`).

``s3_fetcher(base, dest_dir)`` resolves manifest paths against the manifest's
location (``s3://bucket/prefix/`` or a local directory) and downloads ``s3://``
objects into ``dest_dir``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import InvalidInputError
from batch_image.model.stores import Fetch, resolve_uri, version_candidates

RESERVATION = "reserved.json"
CARD = "model.json"


def s3_fetcher(base: str, dest_dir: Path, *, s3: Any = None, max_bytes: int | None = None) -> Fetch:
    """``fetch(uri) -> Path`` for manifest entries, relative to ``base`` (the manifest's
    location). Missing objects and local paths that do not exist are invalid input."""
    s3 = s3 or s3io.client()

    def fetch(uri: str) -> Path:
        full = resolve_uri(base, uri)
        try:
            path = s3io.fetch(full, dest_dir, s3=s3, max_bytes=max_bytes)
        except FileNotFoundError as exc:
            raise InvalidInputError(f"{uri} does not exist ({full})", code="not_found") from exc
        except ValueError as exc:
            raise InvalidInputError(str(exc), code="too_large") from exc
        if not path.is_file():
            raise InvalidInputError(f"{uri} does not exist ({full})", code="not_found")
        return path

    return fetch


class S3ModelStore:
    def __init__(
        self,
        bucket: str,
        *,
        models_prefix: str = "models/",
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
        files = sorted(p for p in Path(staged).rglob("*") if p.is_file())
        files.sort(key=lambda p: p.relative_to(staged).as_posix() == CARD)
        for path in files:
            rel = path.relative_to(staged).as_posix()
            s3io.upload(self.s3, path, self.bucket, self._key(name, version, rel))
        self.s3.delete_object(Bucket=self.bucket, Key=self._key(name, version, RESERVATION))
        shutil.rmtree(staged, ignore_errors=True)
        return self.uri(name, version)

    def release(self, name: str, version: str) -> None:
        if s3io.head(self.s3, self.bucket, self._key(name, version, CARD)) is None:
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(name, version, RESERVATION))

    def promote(self, name: str, version: str) -> None:
        s3io.promote(self.s3, self.bucket, name, version, models_prefix=self.prefix)

    def current(self, name: str) -> str | None:
        found = s3io.get_json(self.s3, self.bucket, f"{self.prefix}{name}/current.json")
        return str(found[0]["version"]) if found and isinstance(found[0], dict) else None
