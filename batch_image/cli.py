"""``python -m batch_image``: click commands over the package's pure functions."""

from __future__ import annotations

import click

from batch_image import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rasterdrop")
def main() -> None:
    """rasterdrop: predict every pixel of a GeoTIFF with a scikit-learn model."""


def _register() -> None:
    from batch_image.cli_predict import predict
    from batch_image.cli_sample import sample
    from batch_image.cli_train import train

    main.add_command(predict)
    main.add_command(sample)
    main.add_command(train)


_register()
