"""``python -m batch_image``: click commands over the package's pure functions."""

from __future__ import annotations

import os

import click

from batch_image import __version__

GDAL_CACHE_MB = "64"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rasterdrop")
def main() -> None:
    """rasterdrop: predict every pixel of a GeoTIFF with a scikit-learn model."""
    # Every block is read once (windows follow the blocks), so a big GDAL block cache
    # only makes memory grow with the file (GDAL's default is 5 % of RAM). Must be set
    # before GDAL first touches its cache; an explicit GDAL_CACHEMAX wins.
    os.environ.setdefault("GDAL_CACHEMAX", GDAL_CACHE_MB)


def _register() -> None:
    from batch_image.cli.accuracy import accuracy_sample, assess
    from batch_image.cli.import_model import import_model
    from batch_image.cli.predict import predict
    from batch_image.cli.sample import sample
    from batch_image.cli.train import train

    main.add_command(accuracy_sample)
    main.add_command(assess)
    main.add_command(import_model)
    main.add_command(predict)
    main.add_command(sample)
    main.add_command(train)


_register()
