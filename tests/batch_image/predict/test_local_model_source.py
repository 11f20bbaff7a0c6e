"""Local ``predict --model`` resolves the model as S3 mode does (one model source):
a plain model directory, or ``models/<name>/`` whose ``current.json`` names the version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from batch_image.cli.main import main
from tests.conftest import make_model


def _store(root: Path, versions: dict[str, Path], current: str | None) -> Path:
    """``root/demo/<v>/{model.json, model.skops}`` (a VersionedStore's shape) + current.json."""
    name_dir = root / "demo"
    for version, model_dir in versions.items():
        shutil.copytree(model_dir, name_dir / version)
    if current is not None:
        (name_dir / "current.json").write_text(json.dumps({"version": current}))
    return name_dir


def _predict(scene: Path, model: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["predict", str(scene), "--model", str(model), "--out", str(out), "--workers", "1"]
    )
    return result.exit_code, result.output


@pytest.fixture
def two_versions(tmp_path: Path, scene4) -> dict[str, Path]:
    scene, truth = scene4
    return {
        "20261126T000000Z": make_model(tmp_path, scene, truth, name="older", trees=3),
        "20261127T000000Z": make_model(tmp_path, scene, truth, name="newer", trees=5),
    }


@pytest.mark.parametrize("current", ["20261126T000000Z", "20261127T000000Z"])
def test_current_json_picks_the_version(tmp_path, scene4, two_versions, current) -> None:
    models = _store(tmp_path / "models", two_versions, current)
    out = tmp_path / "out"
    code, output = _predict(scene4[0], models, out)
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["name"] == ("older" if current.endswith("26T000000Z") else "newer")
    # the classes are the pointed-at version's, exactly
    code, _ = _predict(scene4[0], two_versions[current], tmp_path / "direct")
    assert code == 0
    with (
        rasterio.open(out / "classes.tif") as a,
        rasterio.open(tmp_path / "direct/classes.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_plain_model_dir_is_used_as_is(tmp_path, scene4, model4) -> None:
    code, output = _predict(scene4[0], model4, tmp_path / "out")
    assert code == 0, output
    assert json.loads((tmp_path / "out/summary.json").read_text())["model"]["name"] == "test-model"


@pytest.mark.parametrize(
    ("pointer", "code_name"),
    [
        ('{"version": "../escape"}', "model_pointer_invalid"),
        ('{"version": ""}', "model_pointer_invalid"),
        ("not json", "model_pointer_invalid"),
        ('{"version": "19990101T000000Z"}', "model_missing"),
    ],
)
def test_bad_pointer_exits_3(tmp_path, scene4, two_versions, pointer, code_name) -> None:
    models = _store(tmp_path / "models", two_versions, None)
    (models / "current.json").write_text(pointer)
    out = tmp_path / "out"
    code, output = _predict(scene4[0], models, out)
    assert code == 3, output
    assert f"error [model_error/{code_name}]" in output
    err = json.loads((out / "error.json").read_text())
    assert (err["category"], err["code"]) == ("model_error", code_name)
    assert not (out / "summary.json").exists()


def test_store_without_pointer_is_not_a_model(tmp_path, scene4, two_versions) -> None:
    models = _store(tmp_path / "models", two_versions, None)
    code, output = _predict(scene4[0], models, tmp_path / "out")
    assert code == 3
    assert "model_missing" in output
