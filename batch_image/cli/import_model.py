"""``python -m batch_image import-model FILE --out DIR``: a model fitted elsewhere → a model
directory predict can use (``model.skops`` + ``model.json``), checked before it is written.

A ``.skops`` file is read with the trusted-type check; a pickle or joblib file only with
``--trust-pickle`` (it is unpickled here, on your machine, and converted to skops: the
service never unpickles anything). ``--evaluate MANIFEST`` scores the model on labelled
data without refitting and writes ``metrics.json`` and ``report.md`` beside it.
"""

from __future__ import annotations

from pathlib import Path

import click

from batch_image.cli.options import ManifestFile, ManifestFileType, exits_categorized
from batch_image.errors import InvalidInputError
from batch_image.model.card import ModelCard, NormalizedDifference, Target


def _bands(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    names = tuple(b.strip() for b in value.split(",") if b.strip())
    if len(set(names)) != len(names):
        raise click.BadParameter("band names repeat", param_hint="--bands")
    return names


def _derived(value: str | None) -> tuple[NormalizedDifference, ...]:
    """``ndvi:nir:red,ndwi:green:nir`` → normalized differences (a - b) / (a + b)."""
    out = []
    for item in (value or "").split(","):
        if not item.strip():
            continue
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 3 or not all(parts):
            raise click.BadParameter(f"{item!r} is not NAME:A:B", param_hint="--derived")
        out.append(NormalizedDifference(*parts))
    return tuple(out)


@click.command("import-model")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="imported", show_default=True, help="Model name.")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None,
              help="Default: classification when the model has predict_proba.")  # fmt: skip
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False, path_type=Path),
              help="CLASSES.yaml: [{id, name, colour}] (default: the model's ids).")  # fmt: skip
@click.option("--bands", help="Input band names in feature order: blue,green,red,nir.")
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["uint8", "uint16", "int16", "uint32", "int32", "float32",
                                 "float64"]),
              help="The input rasters' data type.")  # fmt: skip
@click.option("--derived", help="Derived features after the bands: ndvi:nir:red,...")
@click.option("--target", default=None, help="Regression: the target's name (default value).")
@click.option("--unit", default="", help="Regression: the target's unit (t/ha).")
@click.option("--trust-pickle", is_flag=True,
              help="Unpickle a .pkl/.joblib file you trust (it can run any code).")  # fmt: skip
@click.option("--evaluate", "manifest", type=ManifestFileType(), default=None,
              help="Score it on a training manifest's labelled pixels (no refit).")  # fmt: skip
def import_model(
    source: Path,
    out: Path,
    name: str,
    task: str | None,
    classes_file: Path | None,
    bands: str | None,
    dtype: str,
    derived: str | None,
    target: str | None,
    unit: str,
    trust_pickle: bool,
    manifest: ManifestFile | None,
) -> None:
    """Turn a fitted scikit-learn estimator or pipeline into a model directory."""
    from batch_image.train.importing import ImportSpec
    from batch_image.train.importing import import_model as run_import

    spec = ImportSpec(
        name=name,
        task=task,
        classes_file=classes_file,
        bands=_bands(bands),
        dtype=dtype,
        derived=_derived(derived),
        target=Target(target or "value", unit) if task == "regression" or target else None,
        trust_pickle=trust_pickle,
    )
    with exits_categorized():
        card = run_import(source, out, spec)
        line = f"imported {source.name} as {card.task} model {card.name} {card.version} → {out}/"
        if manifest is not None:
            line += _evaluate(out, card, manifest)
    click.echo(line)


def _evaluate(out: Path, card: ModelCard, manifest: ManifestFile) -> str:
    """Score the imported model on the manifest's labelled pixels; the summary's tail."""
    from batch_image.model.card import load_estimator
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.importing import evaluate_model, write_evaluation

    spec = manifest.read()
    if spec.task != card.task:
        raise InvalidInputError(
            f"manifest {manifest.path.name} is a {spec.task}, the model a {card.task}",
            code="task_mismatch",
        )
    estimator = load_estimator(out, card)
    evaluation = evaluate_model(estimator, card, spec, local_fetcher(manifest.folder))
    write_evaluation(out, card, evaluation)
    m = evaluation["imported"]
    if card.is_regression:
        return f"; on {m['n']} labelled pixels: R2 {m['r2']:.3f}, RMSE {m['rmse']:.4g}"
    return f"; on {m['n']} labelled pixels: accuracy {m['overall_accuracy']:.3f}"
