"""``accuracy-sample`` and ``assess``: the Olofsson et al. (2014) accuracy workflow.

``accuracy-sample CLASSES.tif --n N --out sample.gpkg`` draws a stratified random sample
to label in QGIS; ``assess CLASSES.tif sample.gpkg --out DIR`` turns the labelled sample
into accuracy and error-adjusted areas. ``assess --bucket B --key assessments/<path>.gpkg``
is the Batch job (:mod:`batch_image.jobs.assess_job`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from batch_image.cli.options import (
    bucket_option,
    exits_categorized,
    key_option,
    log_format_option,
    version_id_option,
)
from batch_image.errors import InvalidInputError
from batch_image.logs import setup_logging


class AllocationType(click.ParamType):
    """``CLASS=COUNT,...`` → ``{class: count}``; CLASS is a class id or a class name."""

    name = "allocation"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        out: dict[int | str, int] = {}
        for item in str(value).split(","):
            key, sep, count = item.strip().rpartition("=")
            if not sep or not key.strip():
                self.fail(f"{item!r} is not CLASS=COUNT", param, ctx)
            try:
                points = int(count)
            except ValueError:
                self.fail(f"{item!r}: COUNT must be a whole number", param, ctx)
            key = key.strip()
            out[int(key) if key.isdigit() else key] = points
        return out


@click.command("accuracy-sample")
@click.argument("classes_tif", metavar="CLASSES.tif", type=click.Path(path_type=Path))
@click.option("--n", "n", type=click.IntRange(min=2), help="Total points (proportional design).")
@click.option(
    "--min-per-class",
    type=click.IntRange(min=2),
    default=None,
    help="Proportional design: at least this many points per class [default: 50].",
)
@click.option(
    "--allocation",
    type=AllocationType(),
    help="Exact points per class: CLASS=COUNT,... (class id or name; every class).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def accuracy_sample(
    classes_tif: Path,
    n: int | None,
    min_per_class: int | None,
    allocation: dict | None,
    seed: int,
    out: Path,
) -> None:
    """Draw a stratified random sample of CLASSES.tif to label in QGIS (sample.gpkg)."""
    from batch_image.accuracy.samplefile import draw_sample

    if allocation and (n or min_per_class):
        raise click.UsageError("--allocation sets every count: leave out --n / --min-per-class")
    if not allocation and not n:
        raise click.UsageError("give --n N (proportional) or --allocation CLASS=COUNT,...")
    with exits_categorized():
        _exists(classes_tif)
        design = draw_sample(
            classes_tif, out, n=n, min_per_class=min_per_class, allocation=allocation, seed=seed
        )
    counts = ", ".join(
        f"{c['name']} {design['allocation']['counts'].get(str(c['id']), 0)}"
        for c in design["classes"]
        if str(c["id"]) in design["allocation"]["counts"]
    )
    click.echo(f"wrote {out}: {design['n']} points ({design['allocation']['method']}: {counts})")


@click.command("assess")
@click.argument(
    "classes_tif", metavar="[CLASSES.tif]", required=False, type=click.Path(path_type=Path)
)
@click.argument(
    "sample_gpkg", metavar="[SAMPLE.gpkg]", required=False, type=click.Path(path_type=Path)
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path))
@bucket_option("labelled sample")
@key_option("S3 mode: the labelled sample's key, assessments/<path>.gpkg.")
@version_id_option("labelled sample")
@log_format_option
def assess(
    classes_tif: Path | None,
    sample_gpkg: Path | None,
    out_dir: Path | None,
    bucket: str | None,
    key: str | None,
    version_id: str | None,
    log_format: str | None,
) -> None:
    """Accuracy and error-adjusted areas of CLASSES.tif from a labelled SAMPLE.gpkg."""
    if bucket or key:
        if classes_tif or sample_gpkg or out_dir:
            raise click.UsageError("S3 mode (--bucket/--key) takes no local paths")
        if not (bucket and key):
            raise click.UsageError("S3 mode needs both --bucket and --key")
        _assess_s3(bucket, key, version_id, log_format)
        return
    if not (classes_tif and sample_gpkg and out_dir):
        raise click.UsageError("give CLASSES.tif SAMPLE.gpkg --out DIR (or --bucket/--key)")
    from batch_image.accuracy.assessment import assess as run_assessment
    from batch_image.accuracy.reports import write_reports

    with exits_categorized():
        _exists(classes_tif)
        _exists(sample_gpkg)
        result = run_assessment(classes_tif, sample_gpkg)
        paths = write_reports(result, out_dir)
    doc = result.to_dict()
    click.echo(
        f"overall accuracy {doc['overall_accuracy']['value']:.3f}; wrote "
        + ", ".join(str(p) for p in paths.values())
    )


def _assess_s3(bucket: str, key: str, version_id: str | None, log_format: str | None) -> None:
    """The Batch job: outcome first on stdout, then the exit code Batch acts on."""
    from batch_image.jobs import assess_job
    from batch_image.jobs.request import JobRequest
    from batch_image.jobs.settings import from_env

    with exits_categorized():
        settings = from_env()
        request = JobRequest.from_cli(bucket, key, version_id, None, None)
    setup_logging(log_format or settings.log_format)
    with exits_categorized():
        outcome = assess_job.run(request, settings)
    click.echo(f"{outcome.status}: {outcome.message} (s3://{bucket}/{outcome.output_prefix})")


def _exists(path: Path) -> None:
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist", code="not_found")
