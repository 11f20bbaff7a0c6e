"""The labelling loop through the sandbox (the synthesized template's rules, jobs and
handlers): train (the stack's default gate, no current version) → predict → review.gpkg
linked in the email → label it from the truth → add it to the manifest as a point sample
and upload → train job → the gate compares on the same blocks and promotes → predict
with the promoted version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fiona
import pytest
import rasterio

from batch_image.synthetic.scene import SAMPLE_CLASSES, make_sample
from sandbox.core import Options, Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-loop")]

CONTEXT = {"model_name": "demo", "notification_emails": ["ops@example.com"], "review_points": 40}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    data = tmp_path_factory.mktemp("loop-data")
    make_sample(data, width=160, height=120, seed=3, truth=True)
    with Sandbox(Options(context=CONTEXT, work_dir=tmp_path_factory.mktemp("loop"))) as sandbox:
        yield sandbox, data


def _json(sb: Sandbox, key: str) -> dict:
    return json.loads(sb.s3.get_object(Bucket=sb.bucket, Key=key)["Body"].read())


def _manifest(samples: list[dict]) -> bytes:
    return json.dumps(
        {
            "name": "demo",
            "classes": [{"id": i, "name": n, "colour": c} for i, n, c in SAMPLE_CLASSES],
            "samples": samples,
            "estimator": {"type": "random_forest", "params": {"n_estimators": 10}},
            "min_samples_per_class": 5,
            "cv": {"block_size": 32, "folds": 3},
            "promote_tolerance": 0.05,
        }
    ).encode()


def _label_from_truth(review: Path, truth: Path, out: Path) -> int:
    """What the person does in QGIS: pick the class of each point from the drop-down."""
    with rasterio.open(truth) as t:
        classes = t.read(1)
    with fiona.open(review) as src:
        schema, crs, layer = src.schema, src.crs, src.name
        feats = [
            {
                "geometry": f.geometry,
                "properties": dict(f.properties)
                | {"label": int(classes[f.properties["row"], f.properties["col"]]) or None},
            }
            for f in src
        ]
    with fiona.open(out, "w", driver="GPKG", schema=schema, crs=crs, layer=layer) as dst:
        dst.writerecords(feats)
    return sum(f["properties"]["label"] is not None for f in feats)


def test_the_labelling_loop_promotes_the_retrained_model(sb, tmp_path):
    sandbox, data = sb
    base = [{"image": "scene.tif", "labels": "labels.tif"}]
    sandbox.upload(data / "scene.tif", "training/demo/scene.tif")
    sandbox.upload(data / "labels.tif", "training/demo/labels.tif")
    sandbox.upload(_manifest(base), "training/demo/manifest.json")  # no "promote": the stack's
    sandbox.run_until_idle()
    first = _json(sandbox, "models/demo/current.json")["version"]
    [trained] = sandbox.messages()
    assert "why: promoted: there is no current version yet" in " ".join(trained.body.split())

    sandbox.upload(data / "scene.tif", "input/acme/field.tif")
    sandbox.run_until_idle()
    ready = sandbox.messages()[-1]
    assert ready.subject == "rasterdrop: field.tif ready"
    assert "Points to label next, where the model is least sure (GeoPackage for QGIS):" in (
        ready.body
    )
    summary = _json(sandbox, "output/acme/field/summary.json")
    assert summary["model"]["version"] == first
    assert summary["outputs"]["review"] == "output/acme/field/review.gpkg"
    assert summary["review"]["points"] == 40

    review = sandbox.download("output/acme/field/review.gpkg", tmp_path / "review.gpkg")
    labelled = tmp_path / "review-labelled.gpkg"
    assert _label_from_truth(review, data / "truth.tif", labelled) == 40
    sandbox.upload(labelled, "training/demo/review-1.gpkg")
    points = {"image": "scene.tif", "vector": "review-1.gpkg", "class_field": "label"}
    sandbox.upload(_manifest([*base, points]), "training/demo/manifest.json")
    sandbox.run_until_idle()
    train_job = sandbox.jobs[-1]
    assert train_job.definition.logical_id == "TrainJobDefinition"
    assert train_job.status == "SUCCEEDED", train_job.attempts[-1].log_path.read_text()[-2000:]
    second = _json(sandbox, "models/demo/current.json")["version"]
    assert second > first  # promoted by the gate
    card = _json(sandbox, f"models/demo/{second}/model.json")
    assert card["training_data"]["class_counts"]["found"]  # the review points took part
    trained = sandbox.messages()[-1]
    body = " ".join(trained.body.split())
    assert "Promoted yes: predictions now use it" in body
    assert f"for {first} on the same blocks" in body
    assert "Compared current version -> this one, on the same blocks:" in body

    sandbox.upload(data / "scene.tif", "input/acme/field-2.tif")
    sandbox.run_until_idle()
    assert _json(sandbox, "output/acme/field-2/summary.json")["model"]["version"] == second
