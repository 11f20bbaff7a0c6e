"""Training data as people have it: masked images, float label rasters, vector labels.

Rasters are written by rasterio/GDAL, vectors by fiona (OGR) in the formats QGIS saves:
GeoPackage, GeoJSON, FlatGeobuf, Shapefile sets. Train and predict must agree on the
valid pixels of every masked image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio

from batch_image.errors import RasterdropError
from batch_image.model.stores import DirectoryStore
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.train.fetchers import local_fetcher
from batch_image.train.labels import VectorLabels
from batch_image.train.manifest import manifest_from_dict
from batch_image.train.trainer import train_model
from tests.batch_image import real_files as rf
from tests.conftest import CLASSES

MANIFEST_CLASSES = [{"id": c.id, "name": c.name, "colour": c.colour} for c in CLASSES]


def _labels(tmp: Path, values: np.ndarray, *, dtype: str = "uint8", nodata=None) -> Path:
    path = tmp / f"labels_{dtype}.tif"
    with rasterio.open(path, "w", **rf.profile(1, dtype, nodata=nodata)) as dst:
        dst.write(values.astype(dtype), 1)
    return path


def _train(tmp: Path, image: Path, **sample) -> object:
    spec = manifest_from_dict(
        {
            "name": "real",
            "classes": MANIFEST_CLASSES,
            "samples": [{"image": image.name, **sample}],
            "estimator": {"type": "random_forest", "params": {"n_estimators": 8}},
            "max_samples_per_class": 100_000,
            "min_samples_per_class": 5,
            "cv": {"folds": 2, "block_size": 16},
        }
    )
    return train_model(spec, local_fetcher(tmp), DirectoryStore(tmp / "model"))


MASKED: dict[str, Callable[[Path], tuple[Path, rf.Truth]]] = {
    "jpeg-ycbcr-internal-mask": rf.jpeg_ycbcr_masked,
    "rgba": rf.rgba,
    "msk-sidecar": rf.msk_sidecar,
}


@pytest.mark.parametrize("row", sorted(MASKED))
def test_train_and_predict_agree_on_the_valid_pixels(tmp_path: Path, row: str) -> None:
    image, truth = MASKED[row](tmp_path)
    # labels everywhere, under the mask too: only the image says what is data
    labels = _labels(tmp_path, truth.classes)
    result = _train(tmp_path, image, labels=labels.name)
    found = result.report["class_counts"]["found"]
    assert sum(found.values()) == int(truth.valid.sum())  # training saw only valid pixels
    assert result.card.features.bands == (1, 2, 3)  # alpha is never a feature
    assert result.card.to_dict()["features"]["names"] == ["b1", "b2", "b3"]
    out = tmp_path / "out"
    predict_file(image, tmp_path / "model", out, PredictOptions(workers=1))
    with rasterio.open(out / "classes.tif") as cls:
        classes = cls.read(1)
    assert np.array_equal(classes != 255, truth.valid)  # predict classified the same pixels
    assert np.array_equal(classes, rf.expected_classes(tmp_path / "model", truth))


def test_rgba_trained_model_records_alpha_and_runs_on_rgb(tmp_path: Path) -> None:
    image, truth = rf.rgba(tmp_path)
    result = _train(tmp_path, image, labels=_labels(tmp_path, truth.classes).name)
    card = result.card.to_dict()
    assert card["bands"]["count"] == 4 and card["bands"]["alpha"] == [4]
    rgb = tmp_path / "rgb.tif"  # the same pixels without alpha: the model still applies
    with rasterio.open(rgb, "w", **rf.profile(3)) as dst:
        dst.write(truth.data)
    predict_file(rgb, tmp_path / "model", tmp_path / "out", PredictOptions(workers=1))
    everything = rf.Truth(truth.data, np.ones_like(truth.valid), truth.classes)
    with rasterio.open(tmp_path / "out" / "classes.tif") as cls:
        assert np.array_equal(cls.read(1), rf.expected_classes(tmp_path / "model", everything))


def test_float_labels_holding_whole_numbers_train(tmp_path: Path) -> None:
    image, truth = rf.msk_sidecar(tmp_path)
    values = truth.classes.astype(np.float32)
    values[:, :6] = -9999.0  # nodata: unlabelled
    values[5, 10:20] = np.nan  # NaN: unlabelled
    labels = _labels(tmp_path, values, dtype="float32", nodata=-9999.0)
    result = _train(tmp_path, image, labels=labels.name)
    labelled = truth.valid & (values > 0) & np.isfinite(values)
    found = result.report["class_counts"]["found"]
    assert found == {str(c): int((labelled & (truth.classes == c)).sum()) for c in (1, 2, 3)}


def test_float_labels_that_are_not_whole_are_refused_naming_values(tmp_path: Path) -> None:
    image, truth = rf.msk_sidecar(tmp_path)
    values = truth.classes.astype(np.float64)
    values[10, 10] = 2.5
    values[11, 11] = 1.25
    labels = _labels(tmp_path, values, dtype="float64")
    with pytest.raises(RasterdropError) as info:
        _train(tmp_path, image, labels=labels.name)
    assert (info.value.code, info.value.exit_code) == ("labels_not_integer", 2)
    assert info.value.details["values"] == [1.25, 2.5]
    assert labels.name in info.value.message and "Round them" in info.value.message


# --- vector labels -------------------------------------------------------------------


def _centre(row: int, col: int) -> tuple[float, float]:
    t = rf.TRANSFORM
    return (t.c + (col + 0.5) * t.a, t.f + (row + 0.5) * t.e)


def _square(r0: int, c0: int, r1: int, c1: int) -> list[list[tuple[float, float]]]:
    """The outline of pixels r0..r1-1 × c0..c1-1 (their edges)."""
    t = rf.TRANSFORM
    x0, x1 = t.c + c0 * t.a, t.c + c1 * t.a
    y0, y1 = t.f + r0 * t.e, t.f + r1 * t.e
    return [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]


def _write_vector(path: Path, driver: str, geometry: str, features: list, field="str") -> Path:
    schema = {"geometry": geometry, "properties": {"class": field}}
    with fiona.open(path, "w", driver=driver, crs=rf.CRS, schema=schema) as dst:
        for geom, value in features:
            dst.write({"geometry": geom, "properties": {"class": value}})
    return path


def _read_all(labels: VectorLabels) -> np.ndarray:
    from rasterio.windows import Window

    return labels.read(Window(0, 0, rf.W, rf.H))


def _vector_labels(tmp: Path, path: Path, buffer: int = 0) -> np.ndarray:
    image, _ = rf.msk_sidecar(tmp)
    with rasterio.open(image) as ds:
        return _read_all(VectorLabels(path, ds, "class", CLASSES, buffer=buffer))


@pytest.mark.parametrize("buffer", [0, 1, 2])
def test_points_label_their_pixel_and_its_buffer(tmp_path: Path, buffer: int) -> None:
    points = [((5, 7), "water"), ((20, 30), "2"), ((36, 44), "built-up")]  # by name or id
    path = _write_vector(
        tmp_path / "points.gpkg",
        "GPKG",
        "Point",
        [({"type": "Point", "coordinates": _centre(r, c)}, v) for (r, c), v in points],
    )
    got = _vector_labels(tmp_path, path, buffer)
    want = np.zeros((rf.H, rf.W), np.uint8)
    yy, xx = np.mgrid[0 : rf.H, 0 : rf.W]
    for (r, c), cid in zip([p for p, _ in points], (1, 2, 3), strict=True):
        want[(yy - r) ** 2 + (xx - c) ** 2 <= buffer**2] = cid
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    ("name", "driver"),
    [("fields.geojson", "GeoJSON"), ("fields.fgb", "FlatGeobuf"), ("fields.shp", "ESRI Shapefile")],
)
def test_multipolygons_in_every_format(tmp_path: Path, name: str, driver: str) -> None:
    multi = {"type": "MultiPolygon", "coordinates": [_square(2, 3, 6, 9), _square(30, 30, 35, 40)]}
    single = {"type": "Polygon", "coordinates": _square(10, 20, 15, 25)}
    path = _write_vector(tmp_path / name, driver, "Unknown", [(multi, "forest"), (single, "1")])
    got = _vector_labels(tmp_path, path)
    want = np.zeros((rf.H, rf.W), np.uint8)
    want[2:6, 3:9] = want[30:35, 30:40] = 2
    want[10:15, 20:25] = 1
    assert np.array_equal(got, want)


@pytest.mark.parametrize("missing", [".dbf", ".shx", ".prj"])
def test_incomplete_shapefile_names_the_missing_file(tmp_path: Path, missing: str) -> None:
    square = {"type": "Polygon", "coordinates": _square(2, 3, 6, 9)}
    path = _write_vector(tmp_path / "fields.shp", "ESRI Shapefile", "Polygon", [(square, "1")])
    (tmp_path / f"fields{missing}").unlink()
    with pytest.raises(RasterdropError) as info:
        _vector_labels(tmp_path, path)
    assert (info.value.code, info.value.exit_code) == ("shapefile_incomplete", 2)
    assert f"fields{missing}" in info.value.message and "fields.shp" in info.value.message


def test_vector_sample_trains_with_a_point_buffer(tmp_path: Path) -> None:
    image, _ = rf.msk_sidecar(tmp_path)
    rows = [(r, c) for r in range(6, 34, 4) for c in range(6, 42, 4)]
    truth = rf.spectra(3, seed=3)[1]
    feats = [({"type": "Point", "coordinates": _centre(r, c)}, int(truth[r, c])) for r, c in rows]
    path = _write_vector(tmp_path / "pts.gpkg", "GPKG", "Point", feats, field="int")
    result = _train(tmp_path, image, vector=path.name, buffer=1)
    assert result.card.extra["training_data"]["samples"][0]["buffer"] == 1
    assert sum(result.report["class_counts"]["found"].values()) > len(rows)


def test_vector_files_are_read_by_their_extension_only(tmp_path: Path) -> None:
    """An OGR VRT renamed .geojson would read other files: it is read as GeoJSON, and fails."""
    evil = tmp_path / "labels.geojson"
    evil.write_text(
        '<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>/etc/passwd</SrcDataSource>'
        "</OGRVRTLayer></OGRVRTDataSource>"
    )
    with pytest.raises(RasterdropError) as info:
        _vector_labels(tmp_path, evil)
    assert (info.value.code, info.value.exit_code) == ("labels_unreadable", 2)
    assert "labels.geojson" in info.value.message


def test_label_vrt_reading_files_elsewhere_is_refused(tmp_path: Path) -> None:
    image, _ = rf.msk_sidecar(tmp_path)
    labels = tmp_path / "labels.vrt"
    labels.write_text(rf.vrt_xml(["/etc/hosts.tif"], ["class"], dtype="Byte", relative="0"))
    with pytest.raises(RasterdropError) as info:
        _train(tmp_path, image, labels=labels.name)
    assert (info.value.code, info.value.exit_code) == ("vrt_source_refused", 2)
    assert "labels labels.vrt" in info.value.message
