"""Where the job's model comes from: ``RASTERDROP_MODEL_URI`` resolved to one version.

``s3://B/models/<name>/`` follows ``current.json`` (``{"version": "<v>"}``) to
``s3://B/models/<name>/<v>/``; ``s3://B/models/<name>/<v>/`` is used as is; a
local directory works the same way (with or without a ``current.json``). The
card (``model.json``, small) is fetched first so that the input can be checked
against it before the (possibly large) ``model.skops`` is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_image import s3io
from batch_image.errors import ConfigError, ModelError
from batch_image.model.card import CARD_NAME, ESTIMATOR_NAME, MAX_MODEL_BYTES
from batch_image.publish.layout import MODEL_POINTER as POINTER


@dataclass(frozen=True)
class ModelSource:
    """One resolved model version: an S3 prefix or a local directory."""

    uri: str
    s3: s3io.S3Uri | None = None
    local: Path | None = None


def _pointer_version(data: Any, where: str) -> str:
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or not version or "/" in version or version in (".", ".."):
        raise ModelError(f"{where} does not name a model version", code="model_pointer_invalid")
    return version


def resolve(uri: str | None, s3: Any = None) -> ModelSource:
    """Resolve the configured model URI to one version (following ``current.json``)."""
    if not uri:
        raise ConfigError("RASTERDROP_MODEL_URI is not set")
    if s3io.is_s3_uri(uri):
        try:
            loc = s3io.parse_s3_uri(uri if uri.endswith("/") else uri + "/")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        pointer = _s3_call(lambda: s3io.get_json(s3, loc.bucket, loc.join(POINTER).key), uri)
        if pointer is not None:
            version = _pointer_version(pointer[0], str(loc.join(POINTER)))
            loc = loc.join(version + "/")
        return ModelSource(uri=str(loc), s3=loc)
    path = Path(uri)
    if (path / POINTER).is_file():
        try:
            data = json.loads((path / POINTER).read_text())
        except ValueError as exc:
            raise ModelError(f"{path / POINTER} is not JSON", code="model_pointer_invalid") from exc
        path = path / _pointer_version(data, str(path / POINTER))
    return ModelSource(uri=str(path), local=path)


def _s3_call(fn: Any, where: str) -> Any:
    """Run an S3 read of the model; access and bucket problems are configuration errors."""
    from botocore.exceptions import ClientError

    try:
        return fn()
    except ClientError as exc:
        code = s3io.error_code(exc)
        if code in ("AccessDenied", "NoSuchBucket", "403", "AllAccessDisabled"):
            raise ModelError(
                f"cannot read the model at {where}: {code}", code="model_access_denied"
            ) from exc
        raise


def fetch_file(source: ModelSource, name: str, dest_dir: Path, s3: Any = None) -> Path:
    """A local copy of one file of the model version (``model.json`` / ``model.skops``)."""
    if source.local is not None:
        path = source.local / name
        if not path.is_file():
            raise ModelError(f"no {name} in model directory {source.uri}", code="model_missing")
        return path
    assert source.s3 is not None
    obj = source.s3.join(name)
    meta = _s3_call(lambda: s3io.head(s3, obj.bucket, obj.key), str(obj))
    if meta is None:
        raise ModelError(f"no model at {obj}", code="model_missing", uri=str(obj))
    if int(meta.get("ContentLength") or 0) > MAX_MODEL_BYTES:
        raise ModelError(f"{obj} is larger than {MAX_MODEL_BYTES} bytes", code="model_too_large")
    dest_dir.mkdir(parents=True, exist_ok=True)
    return _s3_call(lambda: s3io.download(s3, obj.bucket, obj.key, dest_dir / name), str(obj))


def fetch_card_file(source: ModelSource, dest_dir: Path, s3: Any = None) -> Path:
    return fetch_file(source, CARD_NAME, dest_dir, s3).parent


def fetch_estimator_file(source: ModelSource, dest_dir: Path, s3: Any = None) -> Path:
    return fetch_file(source, ESTIMATOR_NAME, dest_dir, s3).parent
