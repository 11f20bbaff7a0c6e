"""``python -m batch_image sample``: write a synthetic scene and sparse labels."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from batch_image.errors import RasterdropError


@click.command("sample")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--width", default=2600, show_default=True, type=click.IntRange(16, 200_000))
@click.option("--height", default=2000, show_default=True, type=click.IntRange(16, 200_000))
@click.option("--bands", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--dtype",
    default="uint16",
    show_default=True,
    type=click.Choice(["uint8", "uint16", "int16", "float32"]),
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--nodata-fraction",
    default=0.08,
    show_default=True,
    type=click.FloatRange(0, 0.9, max_open=True),
)
@click.option(
    "--compress",
    default="none",
    show_default=True,
    type=click.Choice(["none", "deflate", "lzw", "zstd"]),
    help="GDAL codec for scene.tif (none keeps the default ~40 MB on disk).",
)
@click.option(
    "--truth", is_flag=True, help="Also write truth.tif, every pixel's true class (0 on nodata)."
)
@click.option(
    "--values",
    is_flag=True,
    help="Also write values.tif: biomass (t/ha) on the labelled pixels, for a regression.",
)
def sample(
    out_dir: Path,
    width: int,
    height: int,
    bands: int,
    dtype: str,
    seed: int,
    nodata_fraction: float,
    compress: str,
    truth: bool,
    values: bool,
) -> None:
    """Write DIR/scene.tif (multi-band, UTM, 10 m) and DIR/labels.tif (sparse classes)."""
    from batch_image.synthetic.scene import make_sample

    start = time.perf_counter()
    try:
        paths = make_sample(
            out_dir,
            width=width,
            height=height,
            bands=bands,
            dtype=dtype,
            seed=seed,
            nodata_fraction=nodata_fraction,
            compress=None if compress == "none" else compress,
            truth=truth,
            values=values,
        )
    except RasterdropError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    took = time.perf_counter() - start
    click.echo(f"wrote {paths.scene} and {paths.labels} in {took:.1f} s")
