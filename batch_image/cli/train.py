"""``python -m batch_image train``: fit a model from a manifest or one image + labels.

Three forms, one code path (:func:`batch_image.train.trainer.train_model`):

* ``train MANIFEST.yaml [--out models] [--promote]`` writes
  ``<out>/<name>/<version>/`` and moves ``<out>/<name>/current.json`` on promotion;
* ``train --image scene.tif --labels labels.tif --out MODEL_DIR [--name N]``
  builds a one-sample manifest and writes the model straight into MODEL_DIR;
* ``train --bucket B --key training/<name>/manifest.json [--version-id V]`` (the
  Batch job, settings from the environment): see :mod:`batch_image.jobs.train_job`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from batch_image.cli.options import bucket_option, fail, key_option, version_id_option
from batch_image.errors import RasterdropError
from batch_image.jobs import settings


@click.command("train")
@click.argument("manifest", required=False, type=click.Path(dir_okay=False, path_type=Path))
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
@click.option(
    "--trees", default=100, show_default=True, type=click.IntRange(1, 5000), help="Quick form."
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Quick form.")
@click.option(
    "--max-per-class",
    default=5000,
    show_default=True,
    type=click.IntRange(1),
    help="Quick form: pixels sampled per class at most.",
)
@click.option(
    "--cv-block",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Quick form: spatial CV block size in pixels.",
)
@click.option(
    "--folds",
    default=5,
    show_default=True,
    type=click.IntRange(2, 20),
    help="Quick form: cross-validation folds (each scheme).",
)
def train(
    manifest: Path | None,
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
) -> None:
    """Train a pixel classifier; report blocked and random CV metrics.

    \b
    train MANIFEST.yaml [--out models] [--promote]
        writes <out>/<name>/<version>/ (model, card, report); --promote moves current.json
    train --image scene.tif --labels labels.tif --out MODEL_DIR [--name N]
        one image, a label raster, the model straight into MODEL_DIR
    train --bucket B --key training/<name>/manifest.json [--version-id V]
        S3 mode (the Batch job): models/<name>/<version>/ and runs/<V>/summary.json

    Bad input exits 2 with one "error [...]:" line on stderr saying what to fix.
    """
    from batch_image.model.stores import DirectoryStore, VersionedStore
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.manifest import parse_manifest_text, quick_manifest
    from batch_image.train.trainer import train_model

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    if bucket is not None or key is not None:
        if manifest or image or labels or out or promote:
            raise click.UsageError("S3 mode takes only --bucket, --key and --version-id")
        if not bucket or not key:
            raise click.UsageError("S3 mode needs both --bucket and --key")
        _train_s3(bucket, key, version_id, log)
        return
    if version_id is not None:
        raise click.UsageError("--version-id belongs to S3 mode (--bucket/--key)")
    try:
        workers = settings.workers_from_env()
        if manifest is not None:
            if image or labels:
                raise click.UsageError("give a MANIFEST or --image/--labels, not both")
            try:
                text = manifest.read_bytes()
            except OSError as exc:
                from batch_image.errors import InvalidInputError

                raise InvalidInputError(
                    f"manifest {manifest} cannot be read: {exc.strerror}", code="not_found"
                ) from exc
            spec = parse_manifest_text(text, source=manifest.name)
            store = VersionedStore(out or Path("models"))
            result = train_model(
                spec,
                local_fetcher(manifest.resolve().parent),
                store,
                promote=promote,
                log=log,
                workers=workers,
            )
        else:
            if not (image and labels and out):
                raise click.UsageError("give a MANIFEST, or --image, --labels and --out")
            if promote:
                raise click.UsageError(
                    "--promote applies to a manifest's versioned models, not to --image/--out"
                )
            spec = quick_manifest(
                str(image.resolve()),
                str(labels.resolve()),
                name=name or "model",
                trees=trees,
                seed=seed,
                max_samples_per_class=max_per_class,
                cv_block_size=cv_block,
                cv_folds=folds,
            )
            result = train_model(
                spec, local_fetcher(Path.cwd()), DirectoryStore(out), log=log, workers=workers
            )
    except RasterdropError as exc:
        fail(exc)
        return
    click.echo(result.location)


def _train_s3(bucket: str, key: str, version_id: str | None, log: Any) -> None:
    from batch_image.jobs.settings import from_env
    from batch_image.jobs.train_job import run_s3_training

    try:
        outcome = run_s3_training(bucket, key, version_id, from_env(), say=log)
    except RasterdropError as exc:
        fail(exc)
        return
    click.echo(f"{outcome.status}: {outcome.document.get('model_uri')} ({outcome.report_key})")
