"""Pure key arithmetic shared with the job's convention (docs/contracts.md, S3 layout).

``input/<path>.tif`` → ``output/<path>/`` (extension ``.tif``/``.tiff`` dropped, any case);
``training/<name>/manifest.json`` → ``models/<name>/runs/<manifest version>/``.
Keys are used raw, exactly as S3 stores them: never URL-decoded here.
"""

from __future__ import annotations

import hashlib
import json
import re

RASTER_SUFFIXES = (".tif", ".tiff")
TRAINING_PREFIX = "training/"
MODELS_PREFIX = "models/"
MARKER_PREFIX = "notified/"
_TRAINING_RE = re.compile(r"^training/(?P<name>[^/]+)/manifest\.json$")


def output_prefix_for(
    key: str, input_prefix: str = "input/", output_prefix: str = "output/"
) -> str:
    """Return ``output/<path>/`` for ``input/<path>.tif``; ValueError for anything else."""
    if not key.startswith(input_prefix):
        raise ValueError(f"key is not under {input_prefix!r}: {key!r}")
    rest = key[len(input_prefix) :]
    stem = _strip_raster_suffix(rest)
    if stem is None:
        raise ValueError(f"key does not end in .tif or .tiff: {key!r}")
    if not stem or stem.endswith("/"):
        raise ValueError(f"key has an empty file name: {key!r}")
    return f"{output_prefix}{stem}/"


def is_raster_key(key: str) -> bool:
    return _strip_raster_suffix(key) is not None


def tenant_of(key: str, input_prefix: str = "input/") -> str | None:
    """First path segment under ``input/`` when the key has one (``input/t/x.tif`` → ``t``)."""
    if not key.startswith(input_prefix):
        return None
    first, sep, _rest = key[len(input_prefix) :].partition("/")
    return first if sep and first else None


def training_name(key: str) -> str | None:
    """``<name>`` for ``training/<name>/manifest.json``, else None."""
    match = _TRAINING_RE.match(key)
    return match.group("name") if match else None


def training_run_prefix(name: str, manifest_version: str | None) -> str:
    """Where the train job writes its run report: ``models/<name>/runs/<version>/``."""
    return f"{MODELS_PREFIX}{name}/runs/{manifest_version or 'null'}/"


def file_name(key: str) -> str:
    """The last path segment of a key (what a user recognises as the file)."""
    return key.rstrip("/").rsplit("/", 1)[-1]


def marker_key(bucket: str, key: str, input_version: str | None, model_version: str | None) -> str:
    """``notified/<sha256(bucket, key, input version, model version)>.json``.

    The four values are hashed as a JSON array, so no choice of separator can make two
    different tuples collide (``("a/b", "c")`` vs ``("a", "b/c")``).
    """
    material = json.dumps([bucket, key, input_version or "", model_version or ""])
    return f"{MARKER_PREFIX}{hashlib.sha256(material.encode()).hexdigest()}.json"


def _strip_raster_suffix(path: str) -> str | None:
    lower = path.lower()
    for suffix in RASTER_SUFFIXES:
        if lower.endswith(suffix):
            return path[: -len(suffix)]
    return None
