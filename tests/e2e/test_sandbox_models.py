"""Models as users have them, through the sandbox (the synthesized stack on moto's server):
a notebook's pipeline imported with ``import-model`` predicts in the S3 job exactly as in
the notebook, and a regression model's email carries its values and links."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import rasterio
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sandbox.core import Options, Sandbox
from tests.conftest import CLASSES, make_regression_model, make_scene

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-models")]

CONTEXT = {"model_name": "demo", "notification_emails": ["ops@example.com"]}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("models-sandbox")
    with Sandbox(Options(context=CONTEXT, work_dir=work)) as sandbox:
        yield sandbox


def _valid(scene: Path) -> tuple[np.ndarray, np.ndarray]:
    from batch_image.raster.validity import ValidityRule

    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data)
    return data.reshape(data.shape[0], -1)[:, valid.reshape(-1)].T.astype(np.float32), valid


def _read(sb: Sandbox, key: str, dest: Path) -> np.ndarray:
    with rasterio.open(sb.download(key, dest)) as src:
        return src.read(1)


def test_imported_notebook_pipeline_predicts_through_the_sandbox(
    sb: Sandbox, tmp_path: Path
) -> None:
    scene, truth = make_scene(tmp_path, width=60, height=50, seed=5)
    x, valid = _valid(scene)
    notebook = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    notebook.fit(x, truth[valid])
    joblib.dump(notebook, tmp_path / "notebook.joblib")
    classes = tmp_path / "classes.yaml"
    classes.write_text(yaml.safe_dump([{"id": c.id, "name": c.name, "colour": c.colour}
                                       for c in CLASSES]))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "batch_image", "import-model", str(tmp_path / "notebook.joblib"),
         "--out", str(tmp_path / "model"), "--name", "demo", "--trust-pickle", "--classes",
         str(classes), "--bands", "b1,b2,b3,b4", "--dtype", "uint16"],
        check=True, capture_output=True,
    )  # fmt: skip
    sb.publish_model(tmp_path / "model", "demo")
    before = len(sb.messages())
    sb.upload(scene, "input/lab/notebook.tif")
    sb.run_until_idle()
    [message] = [m for m in sb.messages()[before:] if "notebook.tif" in m.subject]
    assert message.subject == "rasterdrop: notebook.tif ready"
    got = _read(sb, "output/lab/notebook/classes.tif", tmp_path / "classes.tif")
    assert np.array_equal(got[valid], notebook.predict(x).astype(np.uint8))
    assert (got[~valid] == 255).all()


def test_regression_model_through_the_sandbox(sb: Sandbox, tmp_path: Path) -> None:
    scene, _ = make_scene(tmp_path, width=60, height=50, seed=6)
    model = make_regression_model(tmp_path, scene, name="demo")
    sb.publish_model(model, "demo")
    before = len(sb.messages())
    sb.upload(scene, "input/lab/plots.tif")
    sb.run_until_idle()
    [message] = [m for m in sb.messages()[before:] if "plots.tif" in m.subject]
    assert "Predicted biomass (t/ha)" in message.body
    assert "Prediction (GeoTIFF):" in message.body and "Uncertainty (GeoTIFF):" in message.body
    local = tmp_path / "local"
    subprocess.run([sys.executable, "-m", "batch_image", "predict", str(scene), "--model",
                    str(model), "--out", str(local)], check=True, capture_output=True)  # fmt: skip
    got = _read(sb, "output/lab/plots/prediction.tif", tmp_path / "prediction.tif")
    with rasterio.open(local / "prediction.tif") as src:
        assert np.array_equal(got, src.read(1), equal_nan=True)
