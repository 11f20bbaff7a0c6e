"""One valid-pixel rule for training and prediction: nodata, non-finite, GDAL masks, alpha.

The rasters here are written by GDAL the way drone software and QGIS write them: an
internal mask (``GDAL_TIFF_INTERNAL_MASK``), a ``.msk`` sidecar, an RGBA orthomosaic
with unassociated alpha and no nodata value.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from batch_image.model.card import FeatureRecipe
from batch_image.predict.pipeline import predict_file
from batch_image.raster.validity import ValidityRule, data_bands, pixel_validity
from batch_image.train.sampling import sample_pixels
from tests.batch_image.source_scan import PACKAGE
from tests.conftest import class_pattern, make_model, synth_pixels

H, W = 37, 45


def _mask() -> np.ndarray:
    """A collar of masked pixels round the edge, as an orthomosaic has (255 = data)."""
    mask = np.full((H, W), 255, np.uint8)
    mask[:4, :] = 0
    mask[:, -5:] = 0
    mask[20:25, 10:18] = 0
    return mask


def _profile(count: int, dtype: str = "uint8", **extra: object) -> dict:
    return {
        "driver": "GTiff",
        "width": W,
        "height": H,
        "count": count,
        "dtype": dtype,
        "crs": "EPSG:32633",
        "transform": from_origin(500000.0, 5400000.0, 10.0, 10.0),
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
        **extra,
    }


def masked_scene(tmp: Path, *, internal: bool) -> tuple[Path, np.ndarray, np.ndarray]:
    """3 uint8 bands, no nodata value, a GDAL per-dataset mask (internal or .msk)."""
    truth = class_pattern(H, W)
    data = synth_pixels(truth, 3, "uint8", np.random.default_rng(1))
    data[data == 0] = 1  # no pixel is accidentally 0: only the mask marks nodata
    path = tmp / ("internal.tif" if internal else "sidecar.tif")
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=internal),
        rasterio.open(path, "w", **_profile(3)) as dst,
    ):
        dst.write(data)
        dst.write_mask(_mask())
    assert Path(str(path) + ".msk").exists() is (not internal)
    return path, truth, _mask() > 0


def rgba_scene(tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """An RGBA orthomosaic: alpha 0 outside the flight area, no nodata value."""
    truth = class_pattern(H, W)
    rgb = synth_pixels(truth, 3, "uint8", np.random.default_rng(2))
    data = np.concatenate([rgb, _mask()[None]])
    path = tmp / "ortho_rgba.tif"
    with rasterio.open(path, "w", **_profile(4, photometric="RGB", alpha="YES")) as dst:
        dst.write(data)
    with rasterio.open(path) as src:
        assert src.colorinterp[3] == ColorInterp.alpha and src.nodata is None
    return path, truth, _mask() > 0


def test_pixel_validity_needs_every_data_band() -> None:
    block = np.array([[[1, 0, 3]], [[1, 2, 0]]], dtype=np.uint16)  # (2 bands, 1, 3)
    assert pixel_validity(block, 0).tolist() == [[True, False, False]]
    floats = np.array([[[1.0, np.nan, 2.0]], [[np.inf, 1.0, 2.0]]], dtype=np.float32)
    assert pixel_validity(floats, None).tolist() == [[False, False, True]]
    assert pixel_validity(block, None).tolist() == [[True, True, True]]
    # an alpha band takes no part in the value test, its mask decides
    alpha = np.array([[[5, 0, 7]], [[0, 255, 255]]], dtype=np.uint8)
    mask = alpha[1]
    assert pixel_validity(alpha, 0, alpha=(2,), mask=mask).tolist() == [[False, False, True]]


@pytest.mark.parametrize("internal", [True, False], ids=["internal-mask", "msk-sidecar"])
def test_rule_reads_gdal_masks(tmp_path: Path, internal: bool) -> None:
    path, _, expected = masked_scene(tmp_path, internal=internal)
    with rasterio.open(path) as src:
        rule = ValidityRule.of(src)
        assert rule.has_mask and rule.nodata is None and rule.alpha == ()
        got = rule.mask(src, src.read())
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("internal", [True, False], ids=["internal-mask", "msk-sidecar"])
def test_predict_writes_masked_pixels_as_nodata(tmp_path: Path, internal: bool) -> None:
    # Given a raster with a GDAL mask and no nodata value (today's drone collar)
    path, truth, valid = masked_scene(tmp_path, internal=internal)
    model = make_model(tmp_path, path, truth)
    out = tmp_path / "out"
    summary = predict_file(path, model, out)
    with rasterio.open(out / "classes.tif") as cls, rasterio.open(out / "confidence.tif") as conf:
        classes, confidence = cls.read(1), conf.read(1)
    # Then every masked pixel is nodata in both rasters, every other one is a class
    assert np.all(classes[~valid] == 255) and np.all(confidence[~valid] == 255)
    assert np.all(classes[valid] != 255)
    assert summary["raster"]["valid_pixels"] == int(valid.sum())
    assert summary["raster"]["nodata_pixels"] == int((~valid).sum())
    assert sum(c["pixels"] for c in summary["classes"]) == int(valid.sum())


def test_training_and_prediction_skip_the_same_pixels(tmp_path: Path) -> None:
    path, truth, valid = masked_scene(tmp_path, internal=True)
    labels = np.where(valid, truth, 9).astype(np.uint8)  # class 9 only under the mask

    class Everywhere:
        description = "all pixels labelled"

        def read(self, window: object) -> np.ndarray:
            w = window  # rasterio Window
            r, c = int(w.row_off), int(w.col_off)
            return labels[r : r + int(w.height), c : c + int(w.width)]

        def close(self) -> None:
            return None

    sample = sample_pixels([path], [Everywhere()], None, max_per_class=10_000, seed=0)
    assert 9 not in sample.found  # masked pixels are never training pixels
    assert sum(sample.found.values()) == int(valid.sum())


def test_rgba_alpha_is_nodata_and_never_a_feature(tmp_path: Path) -> None:
    path, truth, valid = rgba_scene(tmp_path)
    with rasterio.open(path) as src:
        assert data_bands(src) == (1, 2, 3)
        rule = ValidityRule.of(src)
        assert rule.alpha == (4,) and rule.has_mask
        assert np.array_equal(rule.mask(src, src.read()), valid)
    model = make_model(tmp_path, path, truth, recipe=FeatureRecipe(bands=(1, 2, 3)))
    summary = predict_file(path, model, tmp_path / "out")
    with rasterio.open(tmp_path / "out" / "classes.tif") as cls:
        classes = cls.read(1)
    assert np.all(classes[~valid] == 255) and np.all(classes[valid] != 255)
    assert summary["raster"]["valid_pixels"] == int(valid.sum())


def test_trained_rgba_model_records_rgb_features_only(tmp_path: Path) -> None:
    from batch_image.model.stores import DirectoryStore
    from batch_image.train.fetchers import local_fetcher
    from batch_image.train.manifest import quick_manifest
    from batch_image.train.trainer import train_model

    path, truth, valid = rgba_scene(tmp_path)
    labels = tmp_path / "labels.tif"
    with rasterio.open(labels, "w", **_profile(1, nodata=0)) as dst:
        dst.write(np.where(valid, truth, 0)[None].astype(np.uint8))
    spec = quick_manifest(str(path), str(labels), name="rgba", trees=5, cv_folds=2)
    result = train_model(spec, local_fetcher(tmp_path), DirectoryStore(tmp_path / "m"))
    assert result.card.features.bands == (1, 2, 3)
    assert result.card.band_count == 4  # the file's layout, alpha included


def test_no_other_module_decides_validity() -> None:
    """Masks, non-finite tests and nodata comparisons of image pixels live in validity.py.

    (Label rasters' own nodata, which means "unlabelled", is read in train/labels.py.)
    """
    pattern = re.compile(r"dataset_mask\(|mask_flag_enums|isfinite\(|[!=]=\s*(src|ds)\.nodata")
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name != "validity.py" and pattern.search(p.read_text())
    ]
    assert offenders == []
