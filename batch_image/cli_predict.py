"""``python -m batch_image predict``: local files (S3 mode is added by the job module)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from batch_image.errors import InvalidInputError, RasterdropError
from batch_image.logs import setup_logging
from batch_image.predict import PredictOptions, predict_file
from batch_image.validate import DEFAULT_MAX_PIXELS


def fail(exc: RasterdropError) -> None:
    """One clear line on stderr, then the exit code Batch acts on."""
    click.echo(f"error [{exc.category}/{exc.code}]: {exc.message}", err=True)
    sys.exit(exc.exit_code)


@click.command()
@click.argument("input_path", metavar="INPUT.tif", type=click.Path(path_type=Path))
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Model directory holding model.skops and model.json.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output directory (created).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Cores to use [default: all]."
)
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
    "--progress/--no-progress",
    default=None,
    help="Progress bar [default: when stderr is a terminal].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log format [default: $RASTERDROP_LOG_FORMAT or text].",
)
def predict(
    input_path: Path,
    model_dir: Path,
    out_dir: Path,
    workers: int | None,
    parallel: str,
    max_pixels: int,
    progress: bool | None,
    log_format: str | None,
) -> None:
    """Predict every pixel of INPUT.tif into OUT: classes.tif, confidence.tif, preview.png,
    summary.json. Exit codes: 0 done, 2 bad input, 3 model error."""
    setup_logging(log_format)
    if not input_path.exists():
        fail(InvalidInputError(f"{input_path} does not exist", code="missing"))
    options = PredictOptions(
        workers=workers,
        parallel=parallel,
        max_pixels=max_pixels,
        progress=sys.stderr.isatty() if progress is None else progress,
    )
    try:
        summary = predict_file(input_path, model_dir, out_dir, options)
    except RasterdropError as exc:
        fail(exc)
    t = summary["timings_s"]
    click.echo(
        f"{input_path.name}: {summary['raster']['valid_pixels']:,} pixels predicted in "
        f"{t['total']:.1f} s (peak {summary['peak_rss_mb']:.0f} MB) → {out_dir}/"
    )
