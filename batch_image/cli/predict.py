"""``python -m batch_image predict``: local files, or one S3 object (the Batch job).

Exactly one mode: ``INPUT.tif --model MODEL --out DIR`` (local) or
``--bucket B --key K [--version-id V] [--etag E] [--size N]`` (S3, settings from
the environment, see :mod:`batch_image.jobs.settings`). The command only sorts
the arguments into one of the two; each mode is one function that ends in one
library call (:func:`~batch_image.predict.pipeline.predict_file`,
:func:`batch_image.jobs.predict_job.run`) and reports its result.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from batch_image.cli.options import (
    bucket_option,
    etag_option,
    exits_categorized,
    fail,
    key_option,
    log_format_option,
    size_option,
    version_id_option,
    workers_option,
)
from batch_image.errors import InvalidInputError
from batch_image.logs import setup_logging
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.predict.postprocess import PostProcess
from batch_image.predict.review import DEFAULT_REVIEW_POINTS
from batch_image.raster.checks import DEFAULT_MAX_PIXELS


class Terminated(BaseException):
    """SIGTERM (spot reclaim, job cancelled): unwind, clean up, exit for a retry."""


EXIT_TERMINATED = 128 + signal.SIGTERM


@click.command()
@click.argument(
    "input_path", metavar="[INPUT.tif]", required=False, type=click.Path(path_type=Path)
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    help="Local mode: a model directory (model.skops, model.json), or a models/<name>/ "
    "directory whose current.json names the version to use.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Local mode: output directory (created).",
)
@bucket_option("input")
@key_option("S3 mode: the input's key, exactly as stored (not URL-encoded).")
@version_id_option("input")
@etag_option("input")
@size_option("input")
@workers_option()
@click.option(
    "--parallel",
    type=click.Choice(["windows", "model"]),
    default="windows",
    show_default=True,
    help="windows: several windows at once, one core each; "
    "model: one window at a time, the estimator's threads on all cores.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse rasters with more pixels than this.",
)
@click.option(
    "--mmu-pixels",
    type=click.IntRange(min=0),
    default=0,
    help="Minimum mapping unit: merge class patches smaller than this many pixels into "
    "their neighbours (GDAL sieve) [default: off; a model card's postprocess entry wins].",
)
@click.option(
    "--connectivity", type=click.Choice(["4", "8"]), default="8", show_default=True,
    help="Neighbours that make a patch for --mmu-pixels and --polygons.",
)  # fmt: skip
@click.option("--polygons", is_flag=True, help="Also write classes.gpkg (class polygons).")
@click.option(
    "--accuracy-sample",
    "accuracy_sample_n",
    type=click.IntRange(min=0),
    default=0,
    help="Also draw sample.gpkg, a stratified random sample of N points to label in QGIS.",
)
@click.option(
    "--probabilities",
    is_flag=True,
    help="Also write probabilities.tif: every class's probability (0-100), one band each.",
)
@click.option(
    "--review-points",
    type=click.IntRange(min=0),
    default=DEFAULT_REVIEW_POINTS,
    show_default=True,
    help="Points where the model is least sure, to label next: review.gpkg (0: none).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar [default: when stderr is a terminal].",
)
@click.option(
    "--part",
    default=None,
    help="S3 mode, set by a sharded run's planner: 'shard' (an array job's child) or 'assemble'.",
)
@click.option("--shards", default=None, help="S3 mode: children of the sharded run (parts).")
@log_format_option
def predict(
    input_path: Path | None,
    model_dir: Path | None,
    out_dir: Path | None,
    bucket: str | None,
    key: str | None,
    version_id: str | None,
    etag: str | None,
    size: str | None,
    workers: int | None,
    parallel: str,
    max_pixels: int,
    mmu_pixels: int,
    connectivity: str,
    polygons: bool,
    accuracy_sample_n: int,
    probabilities: bool,
    review_points: int,
    progress: bool | None,
    part: str | None,
    shards: str | None,
    log_format: str | None,
) -> None:
    """Predict every pixel of INPUT.tif into OUT (classes.tif, confidence.tif, preview.png,
    summary.json; a regression model: prediction.tif and for forests uncertainty.tif), or
    of the S3 object --bucket/--key into output/<path>/.

    Exit codes: 0 done (or already done, or reused), 2 bad input, 3 model or configuration
    error, 4 superseded by a newer version, 5 in progress in another job or planned as a
    sharded run (another job sends the email), anything else: retry."""
    if bucket is not None or key is not None:
        if input_path or model_dir or out_dir:
            raise click.UsageError("give either INPUT.tif with --model/--out, or --bucket/--key")
        if not bucket or key is None:
            raise click.UsageError("S3 mode needs both --bucket and --key")
        predict_s3(
            bucket,
            key,
            version_id,
            etag,
            size,
            workers=workers,
            log_format=log_format,
            part=part,
            shards=shards,
        )
    if input_path is None or model_dir is None or out_dir is None:
        raise click.UsageError("give INPUT.tif with --model and --out, or --bucket and --key")
    if any(v is not None for v in (version_id, etag, size, part, shards)):
        raise click.UsageError(
            "--version-id/--etag/--size/--part/--shards belong to S3 mode (--bucket/--key)"
        )
    options = PredictOptions(
        workers=workers,
        parallel=parallel,
        max_pixels=max_pixels,
        progress=sys.stderr.isatty() if progress is None else progress,
        postprocess=PostProcess(
            mmu_pixels=mmu_pixels,
            connectivity=int(connectivity),
            polygons=polygons,
            accuracy_sample_n=accuracy_sample_n,
            source="command line",
        ),
        probabilities=probabilities,
        review_points=review_points,
    )
    predict_local(input_path, model_dir, out_dir, options, log_format=log_format)


def predict_local(
    input_path: Path,
    model: Path,
    out_dir: Path,
    options: PredictOptions,
    *,
    log_format: str | None = None,
) -> None:
    """Local mode: :func:`predict_file`, then one line saying where the result is.

    Without ``--log-format`` the log format is ``$RASTERDROP_LOG_FORMAT`` or text (the
    job's settings are not parsed: local runs need none of them).
    """
    setup_logging(log_format)
    if not input_path.exists():
        fail(InvalidInputError(f"{input_path} does not exist", code="missing"))
    with _sigterm_unwinds(), exits_categorized():  # scratch is removed on SIGTERM too
        summary = predict_file(input_path, model, out_dir, options)
    t = summary["timings_s"]
    click.echo(
        f"{input_path.name}: {summary['raster']['valid_pixels']:,} pixels predicted in "
        f"{t['total']:.1f} s (peak {summary['peak_rss_mb']:.0f} MB) → {out_dir}/"
    )


def predict_s3(
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str | None,
    size: str | None,
    *,
    workers: int | None = None,
    log_format: str | None = None,
    part: str | None = None,
    shards: str | None = None,
) -> NoReturn:
    """S3 mode (the Batch job): :func:`predict_job.run`; the outcome is the first word on
    stdout and the exit code."""
    # imported here: local runs need neither boto3 nor the job's settings
    from batch_image.jobs import predict_job
    from batch_image.jobs.request import JobRequest
    from batch_image.jobs.settings import from_env

    with exits_categorized():
        settings = from_env()
        request = JobRequest.from_cli(bucket, key, version_id, etag, size, part, shards)
    setup_logging(log_format or settings.log_format)
    with _sigterm_unwinds(), exits_categorized():
        outcome = predict_job.run(request, settings, workers=workers)
    where = f"s3://{bucket}/{outcome.output_prefix}"
    if outcome.status == "succeeded" and outcome.summary:
        s = outcome.summary
        click.echo(
            f"succeeded: {s['raster']['valid_pixels']:,} pixels predicted in "
            f"{s['timings_s']['job_total']:.1f} s ({s.get('resumed_windows', 0)} windows resumed) "
            f"→ {where}"
        )
    else:
        click.echo(f"{outcome.status}: {outcome.message} ({where})")
    sys.exit(outcome.exit_code)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the body, so every ``finally`` (scratch,
    checkpoints, lease heartbeat) runs; then exit 143: Batch retries the job."""

    def on_sigterm(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except Terminated:
        click.echo("error [internal/terminated]: SIGTERM received; exiting for a retry", err=True)
        sys.exit(EXIT_TERMINATED)
    finally:
        signal.signal(signal.SIGTERM, previous)
