"""Where a result lives: a local directory or an S3 prefix, behind one small interface.

The protocol (:mod:`batch_image.publish.protocol`) never knows which one it writes
to, so local predict, the predict job, the train job's run reports and the model
stores publish the same way. Local JSON and files are replaced atomically
(``os.replace`` of a complete temp file); S3 PUTs are atomic per object already.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from batch_image import s3io


class ResultSink(Protocol):
    """One result location; names are relative (``summary.json``, ``classes.tif``)."""

    def location(self, name: str) -> str:
        """Where ``name`` ends up: a local path or an S3 key."""
        ...

    def read_json(self, name: str) -> Any | None: ...

    def put_file(self, source: Path, name: str) -> str: ...

    def put_json(self, name: str, document: Any) -> str: ...

    def delete(self, name: str) -> None: ...


def write_json_atomic(path: Path, document: Any) -> None:
    """Write ``path`` so a reader sees the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalDir:
    """A local directory; files are moved in when they come from the same disk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def location(self, name: str) -> str:
        return str(self.root / name)

    def read_json(self, name: str) -> Any | None:
        path = self.root / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def put_file(self, source: Path, name: str) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(source).resolve() != target.resolve():
            try:
                os.replace(source, target)
            except OSError:  # another file system: copy beside the target, then rename
                tmp = target.with_name(f".{target.name}.tmp")
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
        return str(target)

    def put_json(self, name: str, document: Any) -> str:
        write_json_atomic(self.root / name, document)
        return str(self.root / name)

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class S3Prefix:
    """``s3://bucket/prefix``; ``guard`` runs before every write (the run's lease check)."""

    def __init__(
        self, s3: Any, bucket: str, prefix: str, *, guard: Callable[[], None] | None = None
    ) -> None:
        self.s3, self.bucket = s3, bucket
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.guard = guard or (lambda: None)

    def location(self, name: str) -> str:
        return self.prefix + name

    def read_json(self, name: str) -> Any | None:
        found = s3io.get_json(self.s3, self.bucket, self.location(name))
        return None if found is None else found[0]

    def put_file(self, source: Path, name: str) -> str:
        self.guard()
        s3io.upload(self.s3, source, self.bucket, self.location(name))
        return self.location(name)

    def put_json(self, name: str, document: Any) -> str:
        self.guard()
        s3io.put_json(self.s3, self.bucket, self.location(name), document)
        return self.location(name)

    def delete(self, name: str) -> None:
        self.guard()
        self.s3.delete_object(Bucket=self.bucket, Key=self.location(name))
