"""Shared fixtures: tiny rasters written by rasterio and tiny models saved with skops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from sklearn.ensemble import RandomForestClassifier

from batch_image.model.card import FeatureRecipe, ModelCard, ModelClass, save_model

CLOCK_OFFSET_ENV = "RASTERDROP_TEST_CLOCK_OFFSET_DAYS"
CLOCKSHIFT_DIR = Path(__file__).resolve().parent / "clockshift"


def pytest_configure(config: pytest.Config) -> None:
    """``RASTERDROP_TEST_CLOCK_OFFSET_DAYS=365 make unit`` runs the whole suite a year
    ahead (``make test-future``): this process, every xdist worker and, through
    ``tests/clockshift/sitecustomize.py``, every Python subprocess the tests start."""
    import os

    offset = os.environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not offset:
        return
    from datetime import UTC, datetime, timedelta

    import time_machine

    paths = [str(CLOCKSHIFT_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
    os.environ["PYTHONPATH"] = ":".join(dict.fromkeys(paths))
    import sys

    started_by_site = getattr(sys.modules.get("sitecustomize"), "SHIFTED", False)
    if not started_by_site:  # xdist workers inherit PYTHONPATH: already shifted at start-up
        time_machine.travel(datetime.now(UTC) + timedelta(days=float(offset)), tick=True).start()


CLASSES = (
    ModelClass(1, "water", "#1f78b4"),
    ModelClass(2, "forest", "#33a02c"),
    ModelClass(3, "built-up", "#e31a1c"),
)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    nodata: float | None = None,
    block: int | None = 16,
    crs: str = "EPSG:32633",
) -> Path:
    """Write ``(bands, h, w)`` as a GeoTIFF (tiled with ``block`` unless None)."""
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": from_origin(500000.0, 5400000.0, 10.0, 10.0),
        "nodata": nodata,
    }
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def class_pattern(height: int, width: int) -> np.ndarray:
    """Three classes in spatial blocks, deterministic."""
    yy, xx = np.mgrid[0:height, 0:width]
    return (1 + ((yy // 7 + xx // 5) % 3)).astype(np.uint8)


def synth_pixels(truth: np.ndarray, bands: int, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Class-specific spectra plus noise, in ``dtype``'s range."""
    centres = {1: 0.15, 2: 0.45, 3: 0.75}
    base = np.vectorize(centres.get)(truth).astype(np.float64)
    out = []
    for b in range(bands):
        band = base * (1 + 0.1 * b) + rng.normal(0, 0.08, truth.shape)
        band = np.clip(band, 0.0, 1.0)
        if np.dtype(dtype).kind == "f":
            out.append(band.astype(dtype))
        else:
            out.append((band * (np.iinfo(dtype).max - 1)).astype(dtype))
    return np.stack(out)


def make_scene(
    tmp: Path,
    *,
    width: int = 45,
    height: int = 37,
    bands: int = 4,
    dtype: str = "uint16",
    seed: int = 0,
    block: int | None = 16,
    holes: bool = True,
) -> tuple[Path, np.ndarray]:
    """A raster whose size is not a multiple of its block, with nodata holes."""
    rng = np.random.default_rng(seed)
    truth = class_pattern(height, width)
    data = synth_pixels(truth, bands, dtype, rng)
    if np.dtype(dtype).kind == "f":
        nodata: float = float("nan")
    else:
        nodata = 0
    if holes:
        data[:, :3, :] = nodata  # border
        data[:, 10:14, 20:26] = nodata  # hole
        if np.dtype(dtype).kind == "f":
            data[1, 30, 5] = np.inf  # non-finite pixel in one band only
    path = write_raster(tmp / f"scene_{bands}b_{dtype}.tif", data, nodata=nodata, block=block)
    return path, truth


def make_model(
    tmp: Path,
    scene: Path,
    truth: np.ndarray,
    *,
    name: str = "test-model",
    trees: int = 10,
    recipe: FeatureRecipe | None = None,
    band_names: tuple[str, ...] | None = None,
) -> Path:
    """Fit a small random forest on every valid pixel of ``scene`` and save it."""
    from batch_image.model.features import compute_features
    from batch_image.raster.validity import ValidityRule

    with rasterio.open(scene) as src:
        data = src.read()
        valid = ValidityRule.of(src).mask(src, data).reshape(-1)
        dtype = src.dtypes[0]
    count = data.shape[0]
    band_names = band_names or tuple(f"b{i}" for i in range(1, count + 1))
    recipe = recipe or FeatureRecipe(bands=tuple(range(1, count + 1)))
    pixels = data.reshape(count, -1)[:, valid].T
    x = compute_features(pixels, recipe, band_names)
    y = truth.reshape(-1)[valid]
    est = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1).fit(x, y)
    card = ModelCard(
        name=name,
        version="20261126T000000Z",
        classes=CLASSES,
        band_count=count,
        band_names=band_names,
        dtype=dtype,
        features=recipe,
    )
    out = tmp / f"model-{name}-{count}b-{dtype}"
    save_model(out, est, card)
    return out


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server over real HTTP on a free port, one per test module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of moto's server at ``endpoint`` (moto's fake credentials)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def versioned_bucket(s3: Any, prefix: str = "rd") -> str:
    """A new bucket with a unique name, versioned like the stack's data bucket."""
    import uuid

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def scene4(tmp_path: Path) -> tuple[Path, np.ndarray]:
    return make_scene(tmp_path)


@pytest.fixture
def model4(tmp_path: Path, scene4: tuple[Path, np.ndarray]) -> Path:
    return make_model(tmp_path, *scene4)
