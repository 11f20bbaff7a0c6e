"""``python -m batch_image train``: fit a model from a manifest or one image + labels.

Three forms, one code path (:func:`batch_image.train.trainer.train_model`), each a
function below ending in its one library call:

* ``train MANIFEST.yaml [--out models] [--promote]`` writes
  ``<out>/<name>/<version>/`` and moves ``<out>/<name>/current.json`` on promotion
  (:func:`train_manifest`);
* ``train --image scene.tif --labels labels.tif --out MODEL_DIR [--name N]``
  builds a one-sample manifest and writes the model straight into MODEL_DIR
  (:func:`train_quick`);
* ``train --bucket B --key training/<name>/manifest.json [--version-id V]`` (the
  Batch job, settings from the environment): see :mod:`batch_image.jobs.train_job`
  (:func:`train_s3`).

Usage errors (mixed or incomplete forms) are found first, before any file is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import click

from batch_image.cli.options import (
    ManifestFile,
    bucket_option,
    exits_categorized,
    key_option,
    manifest_argument,
    version_id_option,
)
from batch_image.train.manifest import (
    CV_FOLDS_RANGE,
    DEFAULT_CV_BLOCK_SIZE,
    DEFAULT_CV_FOLDS,
    DEFAULT_MAX_SAMPLES_PER_CLASS,
    DEFAULT_SEED,
    DEFAULT_TREES,
)

DEFAULT_MODELS_ROOT = Path("models")
DEFAULT_QUICK_NAME = "model"


class Form(Enum):
    MANIFEST = "manifest"
    QUICK = "quick"
    S3 = "s3"


@dataclass(frozen=True)
class QuickOptions:
    """The quick form's knobs; the defaults are the manifest's (train/manifest.py)."""

    name: str = DEFAULT_QUICK_NAME
    trees: int = DEFAULT_TREES
    seed: int = DEFAULT_SEED
    max_per_class: int = DEFAULT_MAX_SAMPLES_PER_CLASS
    cv_block: int = DEFAULT_CV_BLOCK_SIZE
    folds: int = DEFAULT_CV_FOLDS
    task: str = "classification"
    target: str | None = None  # regression: the target's name (default "value")
    unit: str = ""


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


def form_of(
    manifest: ManifestFile | None,
    *,
    out: Path | None,
    promote: bool,
    image: Path | None,
    labels: Path | None,
    bucket: str | None,
    key: str | None,
    version_id: str | None,
) -> Form:
    """Which form the arguments ask for; mixed or incomplete forms are usage errors."""
    if bucket is not None or key is not None:
        if manifest or image or labels or out or promote:
            raise click.UsageError("S3 mode takes only --bucket, --key and --version-id")
        if not bucket or not key:
            raise click.UsageError("S3 mode needs both --bucket and --key")
        return Form.S3
    if version_id is not None:
        raise click.UsageError("--version-id belongs to S3 mode (--bucket/--key)")
    if manifest is not None:
        if image or labels:
            raise click.UsageError("give a MANIFEST or --image/--labels, not both")
        return Form.MANIFEST
    if not (image and labels and out):
        raise click.UsageError("give a MANIFEST, or --image, --labels and --out")
    if promote:
        raise click.UsageError(
            "--promote applies to a manifest's versioned models, not to --image/--out"
        )
    return Form.QUICK


def train_manifest(
    manifest: ManifestFile, out: Path | None, promote: bool, log: Callable[[str], None]
) -> str:
    """``<out>/<name>/<version>/``; paths in the manifest are relative to its folder."""
    from batch_image.jobs.settings import workers_from_env
    from batch_image.model.stores import VersionedStore
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.trainer import train_model

    workers = workers_from_env()
    spec = manifest.read()
    store = VersionedStore(out or DEFAULT_MODELS_ROOT)
    fetch = local_fetcher(manifest.folder)
    return train_model(spec, fetch, store, promote=promote, log=log, workers=workers).location


def train_quick(
    image: Path, labels: Path, out: Path, options: QuickOptions, log: Callable[[str], None]
) -> str:
    """One image and its label raster; the model straight into ``out``."""
    from batch_image.jobs.settings import workers_from_env
    from batch_image.model.stores import DirectoryStore
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.manifest import quick_manifest, target_from
    from batch_image.train.trainer import train_model

    workers = workers_from_env()
    spec = quick_manifest(
        str(image.resolve()),
        str(labels.resolve()),
        name=options.name,
        trees=options.trees,
        seed=options.seed,
        max_samples_per_class=options.max_per_class,
        cv_block_size=options.cv_block,
        cv_folds=options.folds,
        task=options.task,
        target=target_from({"name": options.target or "value", "unit": options.unit}),
    )
    store = DirectoryStore(out)
    return train_model(spec, local_fetcher(Path.cwd()), store, log=log, workers=workers).location


def train_s3(bucket: str, key: str, version_id: str | None, log: Callable[[str], None]) -> str:
    """The Batch job: settings from the environment; the line names model and report."""
    from batch_image.jobs.settings import from_env
    from batch_image.jobs.train_job import run_s3_training

    outcome = run_s3_training(bucket, key, version_id, from_env(), say=log)
    return f"{outcome.status}: {outcome.document.get('model_uri')} ({outcome.report_key})"


def _quick_option(*decls: str, **kw: Any) -> Callable[[Any], Any]:
    return click.option(*decls, show_default=True, **kw)


@click.command("train")
@manifest_argument()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Models root for a manifest (default ./models); the model directory for --image.",
)
@click.option("--promote", is_flag=True, help="Point <out>/<name>/current.json at the new version.")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), help="Quick form: image.")
@click.option(
    "--labels", type=click.Path(dir_okay=False, path_type=Path), help="Quick form: labels."
)
@click.option("--name", default=None, help="Model name (quick form; default: model).")
@bucket_option("manifest")
@key_option("S3 mode: training/<name>/manifest.json.")
@version_id_option("manifest")
@_quick_option("--trees", default=DEFAULT_TREES, type=click.IntRange(1, 5000), help="Quick form.")
@_quick_option("--seed", default=DEFAULT_SEED, type=click.IntRange(0), help="Quick form.")
@_quick_option(
    "--max-per-class",
    default=DEFAULT_MAX_SAMPLES_PER_CLASS,
    type=click.IntRange(1),
    help="Quick form: pixels sampled per class at most.",
)
@_quick_option(
    "--cv-block",
    default=DEFAULT_CV_BLOCK_SIZE,
    type=click.IntRange(1),
    help="Quick form: spatial CV block size in pixels.",
)
@_quick_option(
    "--folds",
    default=DEFAULT_CV_FOLDS,
    type=click.IntRange(*CV_FOLDS_RANGE),
    help="Quick form: cross-validation folds (each scheme).",
)
@_quick_option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    default="classification",
    help="Quick form: class ids in the labels, or continuous values (regression).",
)
@click.option("--target", default=None, help="Quick form, regression: the target's name.")
@click.option("--unit", default="", help="Quick form, regression: the target's unit (t/ha).")
def train(
    manifest: ManifestFile | None,
    out: Path | None,
    promote: bool,
    image: Path | None,
    labels: Path | None,
    name: str | None,
    bucket: str | None,
    key: str | None,
    version_id: str | None,
    trees: int,
    seed: int,
    max_per_class: int,
    cv_block: int,
    folds: int,
    task: str,
    target: str | None,
    unit: str,
) -> None:
    """Train a pixel classifier or regressor; report blocked and random CV metrics.

    \b
    train MANIFEST.yaml [--out models] [--promote]
        writes <out>/<name>/<version>/ (model, card, report); --promote moves current.json
    train --image scene.tif --labels labels.tif --out MODEL_DIR [--name N]
        one image, a label raster, the model straight into MODEL_DIR
        (--task regression --target biomass --unit t/ha: the labels are values)
    train --bucket B --key training/<name>/manifest.json [--version-id V]
        S3 mode (the Batch job): models/<name>/<version>/ and runs/<V>/summary.json

    Bad input exits 2 with one "error [...]:" line on stderr saying what to fix.
    """
    form = form_of(
        manifest,
        out=out,
        promote=promote,
        image=image,
        labels=labels,
        bucket=bucket,
        key=key,
        version_id=version_id,
    )
    with exits_categorized():
        if form is Form.S3:
            assert bucket and key
            line = train_s3(bucket, key, version_id, _echo_err)
        elif form is Form.MANIFEST:
            assert manifest is not None
            line = train_manifest(manifest, out, promote, _echo_err)
        else:
            assert image and labels and out
            quick = QuickOptions(
                name or DEFAULT_QUICK_NAME, trees, seed, max_per_class, cv_block, folds,
                task, target, unit,
            )  # fmt: skip
            line = train_quick(image, labels, out, quick, _echo_err)
    click.echo(line)
