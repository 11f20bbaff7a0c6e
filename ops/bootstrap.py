"""`make bootstrap-model`: give a freshly deployed stack the model its predict jobs use.

Predict jobs read `models/<model_name>/current.json` (`RASTERDROP_MODEL_URI`); a new stack
has none, so every upload would fail as `model_error` until a model is published and the
pointer written. This publishes a local model directory (`model.json` + `model.skops`, as
`python -m batch_image train ... --out DIR` writes it; by default one trained here on the
sample scene) through the train job's own model store (`S3ModelStore`: files first,
`model.json` last, then `current.json` moved by compare-and-swap), so there is one way a
model reaches S3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_image.model.s3_store import S3ModelStore
from batch_image.publish.layout import MODEL_CARD


@dataclass(frozen=True)
class Bootstrapped:
    name: str
    version: str
    uri: str
    published: bool  # False: that version was there already
    promoted: bool  # whether current.json moved


def publish_model(
    s3: Any, bucket: str, model_dir: Path, name: str, *, promote: bool = True
) -> Bootstrapped:
    """Publish `model_dir` as `models/<name>/<its version>/` and (unless `promote` is False)
    point `current.json` at it.

    Idempotent: a version already published is not uploaded again, only pointed at.
    """
    card = json.loads((Path(model_dir) / MODEL_CARD).read_text(encoding="utf-8"))
    version = str(card["version"])
    store = S3ModelStore(bucket, s3=s3)
    already = _exists(s3, bucket, f"{store.prefix}{name}/{version}/{MODEL_CARD}")
    if not already:
        reserved = store.reserve(name, version)
        if reserved != version:  # a concurrent publisher took it: do not rename a model
            store.release(name, reserved)
            raise RuntimeError(f"version {version} of {name} is being published by someone else")
        staged = store.staging_dir()
        shutil.copytree(model_dir, staged, dirs_exist_ok=True)
        store.publish(staged, name, version)
    promoted = promote and store.promote(name, version, force=True)  # the operator's choice
    return Bootstrapped(name, version, store.uri(name, version), not already, promoted)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception:
        return False
    return True


def train_sample_model(work: Path, name: str, *, size: tuple[int, int] = (600, 500)) -> Path:
    """A model trained here on the sample scene (the same CLI the Batch job runs)."""
    work = Path(work)
    width, height = size
    run = [sys.executable, "-m", "batch_image"]
    subprocess.run(
        [*run, "sample", "--out", str(work), "--width", str(width), "--height", str(height)],
        check=True,
    )
    model = work / "model"
    subprocess.run(
        [*run, "train", "--image", str(work / "scene.tif"), "--labels", str(work / "labels.tif"),
         "--out", str(model), "--name", name, "--trees", "50", "--folds", "3"],
        check=True,
    )  # fmt: skip
    return model


def bootstrap(s3: Any, bucket: str, name: str, model_dir: Path | None = None) -> Bootstrapped:
    """Publish `model_dir`, or a freshly trained sample model, as the stack's model."""
    if model_dir is not None:
        return publish_model(s3, bucket, model_dir, name)
    with tempfile.TemporaryDirectory(prefix="rasterdrop-bootstrap-") as tmp:
        return publish_model(s3, bucket, train_sample_model(Path(tmp), name), name)
