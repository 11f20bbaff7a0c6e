"""The synthetic sample: deterministic, georeferenced, tiled, nodata, sparse aligned labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from batch_image.cli.sample import sample
from batch_image.errors import InvalidInputError
from batch_image.synthetic.scene import CLASSES_TAG, SAMPLE_CLASSES, band_names, make_sample


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds.tags(), ds.descriptions


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    a = make_sample(tmp_path / "a", width=300, height=200, seed=3)
    b = make_sample(tmp_path / "b", width=300, height=200, seed=3)
    c = make_sample(tmp_path / "c", width=300, height=200, seed=4)
    assert np.array_equal(_read(a.scene)[0], _read(b.scene)[0])
    assert np.array_equal(_read(a.labels)[0], _read(b.labels)[0])
    assert not np.array_equal(_read(a.scene)[0], _read(c.scene)[0])
    assert not np.array_equal(_read(a.labels)[0], _read(c.labels)[0])


def test_georeferenced_tiled_with_nodata(tmp_path):
    paths = make_sample(tmp_path, width=700, height=520, seed=1, nodata_fraction=0.1)
    with rasterio.open(paths.scene) as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.crs.is_projected
        assert (ds.res, ds.transform.b, ds.transform.d) == ((10.0, 10.0), 0.0, 0.0)
        assert ds.count == 4 and ds.dtypes == ("uint16",) * 4
        assert ds.nodata == 0
        assert ds.block_shapes == [(256, 256)] * 4
        assert ds.profile["tiled"] is True
        assert ds.descriptions == ("blue", "green", "red", "nir")
        data = ds.read()
    nodata = (data == 0).all(axis=0)
    assert ((data == 0).any(axis=0) == nodata).all()  # nodata is per pixel, all bands
    assert 0.07 <= nodata.mean() <= 0.13
    assert nodata[:, 0].all()  # the left border
    assert not nodata[:, -1].all()
    # Holes inside the image, not only the border.
    assert nodata[:, data.shape[2] // 2 :].any()
    valid = data[:, ~nodata]
    assert valid.min() >= 1 and valid.max() < 10000


def test_nodata_fraction_zero_has_no_holes(tmp_path):
    paths = make_sample(tmp_path, width=300, height=200, nodata_fraction=0.0)
    data = _read(paths.scene)[0]
    assert not (data == 0).any()


def test_labels_sparse_aligned_tagged_and_never_on_nodata(tmp_path):
    paths = make_sample(tmp_path, width=800, height=600, seed=2)
    with rasterio.open(paths.scene) as s, rasterio.open(paths.labels) as lab:
        assert (lab.crs, lab.transform, lab.shape) == (s.crs, s.transform, s.shape)
        assert lab.dtypes == ("uint8",) and lab.nodata == 0
        labels = lab.read(1)
        scene = s.read()
        tags = lab.tags()
        cmap = lab.colormap(1)
    share = (labels > 0).mean()
    assert 0.005 < share < 0.15
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5, 6}
    assert not (labels[(scene == 0).all(axis=0)] > 0).any()
    classes = json.loads(tags[CLASSES_TAG])
    assert [(c["id"], c["name"], c["colour"]) for c in classes] == list(SAMPLE_CLASSES)
    assert cmap[1][:3] == (0x1F, 0x78, 0xB4)
    # Labels sit on land covers whose spectra fit: water is dark in nir, vegetation bright.
    nir = scene[3].astype(float)
    assert nir[labels == 1].mean() < 0.3 * nir[labels == 2].mean()
    assert nir[labels == 4].mean() > nir[labels == 5].mean()
    # Blobs, not scattered pixels: most labelled pixels have labelled neighbours.
    inner = labels[1:-1, 1:-1] > 0
    neighbours = (labels[:-2, 1:-1] > 0) & (labels[2:, 1:-1] > 0)
    assert (neighbours[inner]).mean() > 0.8


@pytest.mark.parametrize(
    ("bands", "dtype"), [(1, "uint8"), (3, "float32"), (6, "int16"), (9, "uint16")]
)
def test_band_counts_and_dtypes(tmp_path, bands, dtype):
    paths = make_sample(tmp_path, width=260, height=300, bands=bands, dtype=dtype, seed=5)
    data, profile, _, descriptions = _read(paths.scene)
    assert data.shape == (bands, 300, 260) and data.dtype == np.dtype(dtype)
    assert list(descriptions) == band_names(bands)
    assert len(set(descriptions)) == bands
    if dtype == "float32":
        assert np.isnan(profile["nodata"])
        hole = np.isnan(data).all(axis=0)
        assert np.isnan(data).any(axis=0).sum() == hole.sum() > 0
        assert np.nanmax(data) < 1.0 and np.nanmin(data) > 0
    else:
        hole = (data == profile["nodata"]).all(axis=0)
        assert hole.any()
        assert not (data[:, ~hole] == profile["nodata"]).any()


def test_band_names_extend_past_known():
    assert band_names(4) == ["blue", "green", "red", "nir"]
    assert band_names(14)[-2:] == ["band13", "band14"]


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(InvalidInputError, match="dtype"):
        make_sample(tmp_path, width=100, height=100, dtype="complex64")
    with pytest.raises(InvalidInputError, match="16 × 16"):
        make_sample(tmp_path, width=8, height=100)


def test_cli_writes_both_files(tmp_path):
    out = tmp_path / "s"
    result = CliRunner().invoke(
        sample,
        ["--out", str(out), "--width", "300", "--height", "200", "--bands", "5", "--seed", "9"],
    )
    assert result.exit_code == 0, result.output
    assert (out / "scene.tif").is_file() and (out / "labels.tif").is_file()
    with rasterio.open(out / "scene.tif") as ds:
        assert (ds.count, ds.width, ds.height) == (5, 300, 200)
