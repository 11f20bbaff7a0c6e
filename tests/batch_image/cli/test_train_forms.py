"""``train``'s three forms: usage checks first, then one library call each (faked here)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner

from batch_image.cli import train as cli
from batch_image.cli.options import ManifestFile
from batch_image.errors import InvalidInputError
from batch_image.model.stores import DirectoryStore, VersionedStore
from batch_image.train import manifest as manifest_module
from batch_image.train.manifest import Manifest, quick_manifest

GOOD = json.dumps(
    {
        "name": "lc",
        "classes": [{"id": 1, "name": "a"}],
        "samples": [{"image": "s.tif", "labels": "l.tif"}],
    }
).encode()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``train_model`` and ``run_s3_training`` recorded instead of run."""
    import batch_image.jobs.train_job as train_job
    import batch_image.train.trainer as trainer

    seen: list[dict[str, Any]] = []

    def train_model(spec: Manifest, fetch: Any, store: Any, **kw: Any) -> Any:
        seen.append({"spec": spec, "fetch": fetch, "store": store, **kw})
        return SimpleNamespace(location="LOCATION")

    def run_s3_training(bucket: str, key: str, version_id: Any, settings: Any, **kw: Any) -> Any:
        seen.append({"bucket": bucket, "key": key, "version_id": version_id, **kw})
        return SimpleNamespace(
            status="succeeded", document={"model_uri": "s3://b/m/"}, report_key="REPORT"
        )

    monkeypatch.setattr(trainer, "train_model", train_model)
    monkeypatch.setattr(train_job, "run_s3_training", run_s3_training)
    monkeypatch.setenv("RASTERDROP_WORKERS", "3")
    return seen


def _invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli.train, [str(a) for a in args])


def test_manifest_form_trains_into_a_versioned_store_relative_to_the_manifest(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    (tmp_path / "m.json").write_bytes(GOOD)
    result = _invoke(tmp_path / "m.json", "--out", tmp_path / "models", "--promote")
    assert result.exit_code == 0, result.output
    assert result.stdout == "LOCATION\n"
    (call,) = calls
    assert call["spec"].name == "lc" and call["promote"] is True and call["workers"] == 3
    assert isinstance(call["store"], VersionedStore)
    assert call["store"].root == tmp_path / "models"
    (tmp_path / "s.tif").write_bytes(b"")
    assert call["fetch"]("s.tif") == tmp_path / "s.tif"  # relative to the manifest's folder


def test_manifest_form_defaults_to_models_in_the_working_directory(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    (tmp_path / "m.json").write_bytes(GOOD)
    assert _invoke(tmp_path / "m.json").exit_code == 0
    assert calls[0]["store"].root == Path("models") and calls[0]["promote"] is False


def test_quick_form_builds_the_one_sample_manifest_from_its_options(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    args = ["--image", "a.tif", "--labels", "b.tif", "--out", tmp_path / "m", "--name", "q"]
    result = _invoke(*args, "--trees", 7, "--seed", 2, "--max-per-class", 9, "--cv-block", 11)
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert isinstance(call["store"], DirectoryStore)
    assert call["store"].directory == tmp_path / "m"
    expected = quick_manifest(
        str(Path("a.tif").resolve()),
        str(Path("b.tif").resolve()),
        name="q",
        trees=7,
        seed=2,
        max_samples_per_class=9,
        cv_block_size=11,
    )
    assert call["spec"] == expected and call["workers"] == 3
    assert "promote" not in call


def test_s3_form_runs_the_job_and_prints_its_outcome(calls: list[dict[str, Any]]) -> None:
    result = _invoke("--bucket", "b", "--key", "training/x/manifest.json", "--version", "V1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "succeeded: s3://b/m/ (REPORT)\n"
    assert calls[0]["bucket"] == "b" and calls[0]["version_id"] == "V1"


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--bucket", "b", "--key", "k", "--promote"], "S3 mode takes only"),
        (["m.json", "--bucket", "b", "--key", "k"], "S3 mode takes only"),
        (["--key", "k"], "needs both --bucket and --key"),
        (["--version-id", "v"], "--version-id belongs to S3 mode"),
        (["missing.json", "--image", "a.tif"], "not both"),  # usage first, file unread
        (["--image", "a.tif", "--labels", "b.tif"], "--image, --labels and --out"),
        (["--image", "a", "--labels", "b", "--out", "o", "--promote"], "--promote applies"),
        ([], "give a MANIFEST"),
    ],
)
def test_mixed_or_incomplete_forms_are_usage_errors(
    args: list[str], phrase: str, calls: list[dict[str, Any]]
) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2
    assert phrase in result.output
    assert calls == []


def test_an_unreadable_manifest_is_a_categorized_refusal(
    tmp_path: Path, calls: list[dict[str, Any]]
) -> None:
    result = _invoke(tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith("error [invalid_input/not_found]: manifest ")
    assert "cannot be read" in result.stderr and calls == []
    with pytest.raises(InvalidInputError) as caught:
        ManifestFile(tmp_path / "nope.yaml").read()
    assert caught.value.code == "not_found"


def test_a_bad_workers_setting_is_a_configuration_error(
    tmp_path: Path, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASTERDROP_WORKERS", "many")
    result = _invoke("--image", "a.tif", "--labels", "b.tif", "--out", tmp_path)
    assert result.exit_code == 3
    assert "error [model_error/config_invalid]: RASTERDROP_WORKERS='many'" in result.stderr
    assert calls == []


def test_quick_form_defaults_are_the_manifest_defaults() -> None:
    """One source for the defaults: the CLI options, quick_manifest and Manifest agree."""
    params = {p.name: p for p in cli.train.params}
    defaults = {
        "trees": manifest_module.DEFAULT_TREES,
        "seed": Manifest.__dataclass_fields__["seed"].default,
        "max_per_class": Manifest.__dataclass_fields__["max_samples_per_class"].default,
        "cv_block": Manifest.__dataclass_fields__["cv_block_size"].default,
        "folds": Manifest.__dataclass_fields__["cv_folds"].default,
    }
    assert {k: params[k].default for k in defaults} == defaults
    signature = inspect.signature(quick_manifest).parameters
    assert signature["trees"].default == manifest_module.DEFAULT_TREES
    assert signature["max_samples_per_class"].default == defaults["max_per_class"]
    assert signature["cv_block_size"].default == defaults["cv_block"]
    assert signature["cv_folds"].default == defaults["folds"]
    parsed = manifest_module.manifest_from_dict(json.loads(GOOD))
    assert (parsed.seed, parsed.max_samples_per_class, parsed.cv_block_size, parsed.cv_folds) == (
        defaults["seed"],
        defaults["max_per_class"],
        defaults["cv_block"],
        defaults["folds"],
    )
    assert parsed.min_samples_per_class == manifest_module.DEFAULT_MIN_SAMPLES_PER_CLASS
    folds = params["folds"].type
    assert isinstance(folds, click.IntRange)
    assert (folds.min, folds.max) == manifest_module.CV_FOLDS_RANGE
