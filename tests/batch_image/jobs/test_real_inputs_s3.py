"""Real data in S3 mode, against moto's server over real HTTP: a VRT over band files in
``input/`` (predict) and in ``training/`` (train), and a shapefile set (train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fiona
import numpy as np
import pytest
import rasterio

from batch_image.errors import InvalidInputError
from batch_image.jobs import predict_job
from batch_image.jobs.request import JobRequest
from batch_image.jobs.settings import Settings
from batch_image.jobs.train_job import run_s3_training
from tests.batch_image import real_files as rf
from tests.conftest import CLASSES, s3_client, versioned_bucket

pytestmark = pytest.mark.xdist_group("moto_server_real_inputs")


@pytest.fixture
def world(endpoint: str, tmp_path: Path) -> tuple[Any, str]:
    s3 = s3_client(endpoint)
    return s3, versioned_bucket(s3, "real")


def _upload_model(s3: Any, bucket: str, model: Path) -> str:
    for name in ("model.json", "model.skops"):
        s3.upload_file(str(model / name), bucket, f"models/rgbn/v1/{name}")
    return f"s3://{bucket}/models/rgbn/v1/"


def _upload_stack(s3: Any, bucket: str, tmp: Path, prefix: str) -> rf.Truth:
    vrt, truth = rf.vrt_stack(tmp)
    for band in sorted((tmp / "stack.bands").iterdir()):
        s3.upload_file(str(band), bucket, f"{prefix}stack.bands/{band.name}")
    s3.upload_file(str(vrt), bucket, f"{prefix}stack.vrt")  # last: its event starts the job
    return truth


def _settings(tmp: Path, model_uri: str | None = None, **kw: Any) -> Settings:
    return Settings(model_uri=model_uri, scratch_dir=tmp / "scratch", workers=1, **kw)


def test_vrt_over_band_files_predicts_in_s3(world, tmp_path: Path) -> None:
    s3, bucket = world
    truth = _upload_stack(s3, bucket, tmp_path, "input/landsat/")
    model = rf.fit_model(tmp_path, truth, name="rgbn", band_names=rf.RGBN)
    uri = _upload_model(s3, bucket, model)
    outcome = predict_job.run(
        JobRequest(bucket, "input/landsat/stack.vrt"), _settings(tmp_path, uri), s3=s3
    )
    assert outcome.status == "succeeded" and outcome.output_prefix == "output/landsat/stack/"
    s3.download_file(bucket, "output/landsat/stack/classes.tif", str(tmp_path / "c.tif"))
    with rasterio.open(tmp_path / "c.tif") as cls:
        assert np.array_equal(cls.read(1), rf.expected_classes(model, truth))
    summary = json.loads(
        s3.get_object(Bucket=bucket, Key="output/landsat/stack/summary.json")["Body"].read()
    )
    assert summary["raster"]["count"] == 4
    assert not list((tmp_path / "scratch").iterdir())  # scratch removed


def test_a_vrt_uploaded_again_after_its_band_files_changed_is_recomputed(
    world, tmp_path: Path
) -> None:
    """The reuse rule compares the VRT's own bytes; its band files can change under the
    same VRT text, so a VRT is never reused (docs/contracts.md, predict order)."""
    s3, bucket = world
    truth = _upload_stack(s3, bucket, tmp_path, "input/l/")
    model = rf.fit_model(tmp_path, truth, name="rgbn", band_names=rf.RGBN)
    uri = _upload_model(s3, bucket, model)
    request = JobRequest(bucket, "input/l/stack.vrt")
    assert predict_job.run(request, _settings(tmp_path, uri), s3=s3).status == "succeeded"
    bands = sorted((tmp_path / "stack.bands").iterdir())
    s3.upload_file(str(bands[1]), bucket, f"input/l/stack.bands/{bands[0].name}")  # new content
    s3.upload_file(str(tmp_path / "stack.vrt"), bucket, "input/l/stack.vrt")  # same VRT bytes
    again = predict_job.run(request, _settings(tmp_path, uri), s3=s3)
    assert again.status == "succeeded"
    summary = json.loads(
        s3.get_object(Bucket=bucket, Key="output/l/stack/summary.json")["Body"].read()
    )
    assert "reused_from" not in summary


def test_vrt_with_a_missing_band_file_is_refused_before_download(world, tmp_path: Path) -> None:
    s3, bucket = world
    truth = _upload_stack(s3, bucket, tmp_path, "input/l/")
    s3.delete_object(Bucket=bucket, Key="input/l/stack.bands/scene_B3.tif")
    uri = _upload_model(s3, bucket, rf.fit_model(tmp_path, truth, name="rgbn", band_names=rf.RGBN))
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(JobRequest(bucket, "input/l/stack.vrt"), _settings(tmp_path, uri), s3=s3)
    assert (info.value.code, info.value.exit_code) == ("vrt_source_missing", 2)
    assert "stack.bands/scene_B3.tif" in info.value.message
    err = json.loads(s3.get_object(Bucket=bucket, Key="output/l/stack/error.json")["Body"].read())
    assert err["code"] == "vrt_source_missing"


def test_vrt_pointing_outside_its_folder_is_refused(world, tmp_path: Path) -> None:
    s3, bucket = world
    truth = _upload_stack(s3, bucket, tmp_path, "input/x/")
    text = rf.vrt_xml([f"../../models/rgbn/v1/{n}" for n in ("a.tif",) * 4], list(rf.RGBN))
    s3.put_object(Bucket=bucket, Key="input/x/evil.vrt", Body=text.encode())
    uri = _upload_model(s3, bucket, rf.fit_model(tmp_path, truth, name="rgbn", band_names=rf.RGBN))
    with pytest.raises(InvalidInputError) as info:
        predict_job.run(JobRequest(bucket, "input/x/evil.vrt"), _settings(tmp_path, uri), s3=s3)
    assert (info.value.code, info.value.exit_code) == ("vrt_source_refused", 2)
    assert "outside the VRT's folder" in info.value.message


def _manifest(sample: dict) -> bytes:
    return json.dumps(
        {
            "name": "real",
            "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in CLASSES],
            "samples": [sample],
            "estimator": {"type": "random_forest", "params": {"n_estimators": 5}},
            "min_samples_per_class": 3,
            "cv": {"folds": 2, "block_size": 16},
        }
    ).encode()


def _shapefile(tmp: Path) -> list[Path]:
    """Polygons per class in a shapefile set (.shp .shx .dbf .prj .cpg), as QGIS saves."""
    t = rf.TRANSFORM
    schema = {"geometry": "Polygon", "properties": {"klasse": "str"}}
    path = tmp / "felder.shp"
    with fiona.open(path, "w", driver="ESRI Shapefile", crs=rf.CRS, schema=schema,
                    encoding="UTF-8") as dst:  # fmt: skip
        for i, name in enumerate(("water", "forest", "built-up")):
            x0, y0 = t.c + t.a * (1 + 12 * i), t.f + 8 * t.e  # 8 columns × 20 rows each
            ring = [(x0, y0), (x0 + 80, y0), (x0 + 80, y0 - 200), (x0, y0 - 200), (x0, y0)]
            dst.write({"geometry": {"type": "Polygon", "coordinates": [ring]},
                       "properties": {"klasse": name}})  # fmt: skip
    files = sorted(tmp.glob("felder.*"))
    assert {p.suffix for p in files} >= {".shp", ".shx", ".dbf", ".prj", ".cpg"}
    return files


def test_shapefile_set_and_vrt_train_in_s3(world, tmp_path: Path) -> None:
    s3, bucket = world
    _upload_stack(s3, bucket, tmp_path, "training/real/")
    for f in _shapefile(tmp_path):
        s3.upload_file(str(f), bucket, f"training/real/labels/{f.name}")
    key = "training/real/manifest.json"
    put = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=_manifest(
            {"image": "stack.vrt", "vector": "labels/felder.shp", "class_field": "klasse"}
        ),
    )
    outcome = run_s3_training(bucket, key, put["VersionId"], _settings(tmp_path / "new"), s3=s3)
    assert outcome.status == "succeeded", outcome.document
    card = json.loads(
        s3.get_object(
            Bucket=bucket,
            Key=f"{outcome.document['model']['location'].split(bucket + '/')[1]}model.json",
        )["Body"].read()
    )
    assert card["bands"]["names"] == list(rf.RGBN)
    assert sum(card["training_data"]["class_counts"]["found"].values()) == 3 * 8 * 20
    assert (tmp_path / "new" / "scratch").is_dir()  # created, as predict creates its own


def test_shapefile_without_its_dbf_is_refused_in_s3(world, tmp_path: Path) -> None:
    s3, bucket = world
    _upload_stack(s3, bucket, tmp_path, "training/real/")
    for f in _shapefile(tmp_path):
        if f.suffix != ".dbf":
            s3.upload_file(str(f), bucket, f"training/real/{f.name}")
    key = "training/real/manifest.json"
    put = s3.put_object(
        Bucket=bucket, Key=key, Body=_manifest({"image": "stack.vrt", "vector": "felder.shp"})
    )
    with pytest.raises(InvalidInputError) as info:
        run_s3_training(bucket, key, put["VersionId"], _settings(tmp_path), s3=s3)
    assert (info.value.code, info.value.exit_code) == ("shapefile_incomplete", 2)
    assert "felder.dbf" in info.value.message


def test_msk_sidecar_uploaded_beside_the_tif_masks_the_s3_prediction(world, tmp_path) -> None:
    s3, bucket = world
    path, truth = rf.msk_sidecar(tmp_path)
    model = rf.fit_model(tmp_path, truth, name="rgb")
    for name in ("model.json", "model.skops"):
        s3.upload_file(str(model / name), bucket, f"models/rgb/v1/{name}")
    s3.upload_file(str(path) + ".msk", bucket, "input/drone/sidecar.tif.msk")  # first
    s3.upload_file(str(path), bucket, "input/drone/sidecar.tif")
    settings = _settings(tmp_path, f"s3://{bucket}/models/rgb/v1/")
    outcome = predict_job.run(JobRequest(bucket, "input/drone/sidecar.tif"), settings, s3=s3)
    assert outcome.status == "succeeded"
    s3.download_file(bucket, "output/drone/sidecar/classes.tif", str(tmp_path / "c.tif"))
    with rasterio.open(tmp_path / "c.tif") as cls:
        assert np.array_equal(cls.read(1), rf.expected_classes(model, truth))
