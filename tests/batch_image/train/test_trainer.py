"""The full train action: manifests, vector labels, versions, honest metrics, refusals."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import fiona
import numpy as np
import pytest
import rasterio
import yaml
from click.testing import CliRunner
from rasterio.features import shapes
from rasterio.warp import transform_geom

from batch_image.cli.train import train
from batch_image.errors import InvalidInputError
from batch_image.model.card import load_model
from batch_image.model.features import compute_features
from batch_image.model.stores import VersionedStore
from batch_image.synthetic.scene import SAMPLE_CLASSES, make_sample
from batch_image.train.fetchers import local_fetcher
from batch_image.train.manifest import manifest_from_dict, parse_manifest_text
from batch_image.train.trainer import train_model
from tests.batch_image.train.helpers import read, small_sample, write_like

CLASSES = [{"id": i, "name": n, "colour": c} for i, n, c in SAMPLE_CLASSES]
VERSION = re.compile(r"^\d{8}T\d{6}Z(-\d{2})?$")


def _manifest(**over):
    data = {
        "name": "landcover",
        "classes": CLASSES,
        "samples": [{"image": "scene.tif", "labels": "labels.tif"}],
        "estimator": {"type": "random_forest", "params": {"n_estimators": 15}},
        "max_samples_per_class": 400,
        "min_samples_per_class": 20,
        "seed": 0,
        "cv": {"block_size": 40, "folds": 4},
    }
    data.update(over)
    return data


def _vector_from_labels(labels_path, target, crs, driver, by_name=False):
    """Polygons of the label blobs, reprojected to ``crs``, written with fiona."""
    names = {i: n for i, n, _ in SAMPLE_CLASSES}
    with rasterio.open(labels_path) as ds:
        lab = ds.read(1)
        src_crs, transform = ds.crs, ds.transform
    schema = {"geometry": "Polygon", "properties": {"class": "str" if by_name else "int"}}
    with fiona.open(target, "w", driver=driver, crs=crs, schema=schema) as dst:
        for geom, value in shapes(lab, mask=lab > 0, transform=transform):
            value = int(value)
            dst.write(
                {
                    "geometry": transform_geom(src_crs, crs, geom),
                    "properties": {"class": names[value] if by_name else value},
                }
            )
    return target


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    small_sample(d, width=300, height=200, seed=1)
    return d


def _run(args):
    return CliRunner().invoke(train, [str(a) for a in args])


def _write(d, name, data):
    path = d / name
    path.write_text(yaml.safe_dump(data) if name.endswith((".yaml", ".yml")) else json.dumps(data))
    return path


def test_yaml_manifest_writes_versioned_model_and_promotes_only_on_request(scene, tmp_path):
    manifest = _write(scene, "m1.yaml", _manifest())
    root = tmp_path / "models"
    first = _run([manifest, "--out", root])
    assert first.exit_code == 0, first.output
    versions = sorted(p.name for p in (root / "landcover").iterdir())
    assert len(versions) == 1 and VERSION.match(versions[0])
    assert not (root / "landcover" / "current.json").exists()
    files = sorted(p.name for p in (root / "landcover" / versions[0]).iterdir())
    assert {"model.skops", "model.json", "metrics.json", "report.md"} <= set(files)
    assert {"confusion_blocked.png", "confusion_random.png"} <= set(files)
    report = (root / "landcover" / versions[0] / "report.md").read_text()
    assert "These figures describe the training labels, not the map." in report
    assert "python -m batch_image accuracy-sample" in report

    second = _run([manifest, "--out", root, "--promote"])
    assert second.exit_code == 0, second.output
    versions = sorted(p.name for p in (root / "landcover").iterdir() if p.is_dir())
    assert len(versions) == 2
    pointer = json.loads((root / "landcover" / "current.json").read_text())
    assert pointer == {"version": versions[-1]}
    card = json.loads((root / "landcover" / versions[-1] / "model.json").read_text())
    assert card["version"] == versions[-1]
    assert card["training_data"]["samples"][0]["image_sha256"]
    assert card["estimator"]["params"]["n_estimators"] == 15
    assert not list(root.glob(".staging-*"))


def test_manifest_promote_flag_moves_pointer(scene, tmp_path):
    manifest = _write(scene, "m2.json", _manifest(promote=True))
    assert _run([manifest, "--out", tmp_path]).exit_code == 0
    (version,) = [p.name for p in (tmp_path / "landcover").iterdir() if p.is_dir()]
    assert json.loads((tmp_path / "landcover" / "current.json").read_text())["version"] == version


def test_versions_in_the_same_second_never_overwrite(scene, tmp_path):
    store = VersionedStore(tmp_path)
    now = datetime(2026, 11, 26, 9, 15, 0, tzinfo=UTC)
    m = manifest_from_dict(_manifest())
    a = train_model(m, local_fetcher(scene), store, now=now)
    b = train_model(m, local_fetcher(scene), store, now=now)
    assert (a.version, b.version) == ("20261126T091500Z", "20261126T091500Z-01")
    assert sorted([b.version, a.version]) == [a.version, b.version]
    assert (
        json.loads((tmp_path / "landcover" / a.version / "model.json").read_text())["version"]
        == a.version
    )
    assert store.reserve("landcover", "20261126T091500Z") == "20261126T091500Z-02"


def test_blocked_and_random_metrics_both_reported(scene, tmp_path):
    result = train_model(
        manifest_from_dict(_manifest()), local_fetcher(scene), VersionedStore(tmp_path)
    )
    metrics = result.card.extra["metrics"]
    blocked, rnd = metrics["blocked_cv"], metrics["random_cv"]
    for m in (blocked, rnd):
        assert set(m) >= {"overall_accuracy", "kappa", "per_class", "confusion_matrix"}
        assert set(m["per_class"]) == {"1", "2", "3", "4", "5", "6"}
        assert sum(map(sum, m["confusion_matrix"]["matrix"])) == m["n"]
        assert {"precision", "recall", "f1", "support"} <= set(m["per_class"]["3"])
    assert metrics["cv_block_size"] == 40
    assert 0.3 <= blocked["overall_accuracy"] <= 0.99
    assert rnd["overall_accuracy"] >= blocked["overall_accuracy"]
    assert rnd["kappa"] >= blocked["kappa"]
    assert rnd["overall_accuracy"] >= 0.85
    summary = result.summary()
    assert summary["kind"] == "train" and summary["model"]["version"] == result.version
    assert summary["metrics"]["blocked_cv"]["kappa"] == blocked["kappa"]
    assert [c["sampled"] for c in summary["classes"]] == [
        min(c["found"], 400) for c in summary["classes"]
    ]
    json.dumps(summary)


def test_geojson_labels_in_wgs84_are_reprojected_onto_the_grid(scene, tmp_path):
    _vector_from_labels(scene / "labels.tif", scene / "labels.geojson", "EPSG:4326", "GeoJSON")
    raster = train_model(
        manifest_from_dict(_manifest()), local_fetcher(scene), VersionedStore(tmp_path / "r")
    )
    vector = train_model(
        manifest_from_dict(_manifest(samples=[{"image": "scene.tif", "vector": "labels.geojson"}])),
        local_fetcher(scene),
        VersionedStore(tmp_path / "v"),
    )
    found_r = raster.report["class_counts"]["found"]
    found_v = vector.report["class_counts"]["found"]
    assert set(found_v) == set(found_r)
    for k in found_r:
        assert abs(found_v[k] - found_r[k]) <= 0.05 * found_r[k] + 3
    sample = vector.card.extra["training_data"]["samples"][0]
    assert sample["vector"] == "labels.geojson" and len(sample["vector_sha256"]) == 64


def test_geopackage_with_class_names_in_another_crs(scene, tmp_path):
    _vector_from_labels(
        scene / "labels.tif", scene / "labels.gpkg", "EPSG:3857", "GPKG", by_name=True
    )
    manifest = _write(
        scene,
        "m_gpkg.yaml",
        _manifest(
            samples=[{"image": "scene.tif", "vector": "labels.gpkg", "class_field": "class"}]
        ),
    )
    result = _run([manifest, "--out", tmp_path])
    assert result.exit_code == 0, result.output
    assert "water" in result.output and "blocked CV" in result.output


def test_ndvi_recipe_round_trips_through_compute_features(scene, tmp_path):
    m = manifest_from_dict(
        _manifest(bands=["green", "red", "nir"], derived=[{"name": "ndvi", "a": "nir", "b": "red"}])
    )
    result = train_model(m, local_fetcher(scene), VersionedStore(tmp_path))
    estimator, card = load_model(tmp_path / "landcover" / result.version)
    assert card.features.names(card.band_names) == ["green", "red", "nir", "ndvi"]
    assert result.card.to_dict()["features"]["names"] == ["green", "red", "nir", "ndvi"]
    data = read(scene / "scene.tif")
    valid = (data != 0).all(axis=0)
    pixels = data[:, valid].T
    # The in-memory pipeline: features built by hand, the estimator training returned.
    red, nir = pixels[:, 2].astype(np.float64), pixels[:, 3].astype(np.float64)
    ndvi = (nir - red) / (nir + red)
    by_hand = np.column_stack([pixels[:, 1:4], ndvi]).astype(np.float32)
    features = compute_features(pixels, card.features, card.band_names)
    np.testing.assert_allclose(features[:, 3], ndvi, atol=1e-6)
    expected = result.estimator.predict(by_hand)
    assert np.array_equal(estimator.predict(features), expected)
    assert 0.0 < np.mean(expected == 1) < 0.5  # it predicts several classes, not one


def test_quick_form_matches_one_sample_manifest(scene, tmp_path):
    quick = _run(
        [
            "--image", scene / "scene.tif",
            "--labels", scene / "labels.tif",
            "--out", tmp_path / "quick",
            "--name", "landcover",
            "--trees", "15",
            "--max-per-class", "400",
            "--cv-block", "40",
            "--folds", "4",
        ]
    )  # fmt: skip
    assert quick.exit_code == 0, quick.output
    m = _manifest(cv={"block_size": 40, "folds": 4})
    full = train_model(manifest_from_dict(m), local_fetcher(scene), VersionedStore(tmp_path))
    q = json.loads((tmp_path / "quick" / "model.json").read_text())
    f = full.card.to_dict()
    for key in ("classes", "bands", "features", "metrics"):
        assert q[key] == f[key], key
    assert q["estimator"] == f["estimator"]
    assert q["training_data"]["class_counts"] == f["training_data"]["class_counts"]
    qm = json.loads((tmp_path / "quick" / "metrics.json").read_text())
    assert qm["evaluation"] == full.report["evaluation"]


def test_sampling_caps_each_class_and_is_deterministic(scene, tmp_path):
    m = manifest_from_dict(_manifest(max_samples_per_class=50, min_samples_per_class=5))
    a = train_model(m, local_fetcher(scene), VersionedStore(tmp_path / "a"))
    b = train_model(m, local_fetcher(scene), VersionedStore(tmp_path / "b"))
    counts = a.report["class_counts"]
    assert all(v == 50 for v in counts["sampled"].values())
    assert all(v > 50 for v in counts["found"].values())
    assert a.report["evaluation"] == b.report["evaluation"]


# -- refusals: exit 2, one line on stderr saying what to fix --------------------------


def _refusal(result, phrase):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error [invalid_input/")]
    assert errors == lines[-1:], result.stderr  # one error line, the last one
    assert phrase in errors[0], errors[0]
    assert not result.stdout.strip()


def test_refuses_labels_that_do_not_overlap(scene, tmp_path):
    with rasterio.open(scene / "labels.tif") as ds:
        t = ds.transform
    from affine import Affine

    far = Affine(t.a, t.b, t.c + 500_000, t.d, t.e, t.f)
    write_like(
        scene / "labels.tif", tmp_path / "far.tif", read(scene / "labels.tif")[0], transform=far
    )
    m = _write(
        tmp_path,
        "m.json",
        _manifest(samples=[{"image": str(scene / "scene.tif"), "labels": "far.tif"}]),
    )
    _refusal(_run([m, "--out", tmp_path / "out"]), "do not overlap")


def test_refuses_label_values_missing_from_classes(scene, tmp_path):
    m = _write(scene, "m_missing.json", _manifest(classes=CLASSES[:5]))
    _refusal(_run([m, "--out", tmp_path]), "label values [6] are not among the manifest's classes")


def test_refuses_class_below_minimum(scene, tmp_path):
    m = _write(scene, "m_min.json", _manifest(min_samples_per_class=100_000))
    result = _run([m, "--out", tmp_path])
    _refusal(result, "fewer than min_samples_per_class 100000")
    assert not (tmp_path / "landcover").exists()


def test_refuses_images_whose_bands_differ_from_the_first(scene, tmp_path):
    other = make_sample(tmp_path / "three", width=200, height=200, bands=3, seed=2)
    m = _write(
        tmp_path,
        "m.json",
        _manifest(
            samples=[
                {"image": str(scene / "scene.tif"), "labels": str(scene / "labels.tif")},
                {"image": str(other.scene), "labels": str(other.labels)},
            ]
        ),
    )
    _refusal(_run([m, "--out", tmp_path / "out"]), "no band named ['nir']")


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("name: [unclosed\n", "neither JSON nor YAML"),
        ('{"name": "x"}', "missing field(s): classes, samples"),
        ("- just\n- a list\n", "must be a mapping"),
        (json.dumps(_manifest(samples=[{"image": "scene.tif"}])), "exactly one of labels"),
        (json.dumps(_manifest(estimator={"type": "svm"})), "estimator type 'svm'"),
        (
            json.dumps(_manifest(estimator={"params": {"n_trees": 3}})),
            "has no parameter(s) ['n_trees']",
        ),
        (json.dumps(_manifest(bands=["blue", "swir9"])), "band 'swir9' is not one of"),
    ],
)
def test_refuses_bad_manifests(scene, tmp_path, text, phrase):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    if "scene.tif" in text:
        path = scene / f"bad_{abs(hash(text))}.json"
        path.write_text(text)
    _refusal(_run([path, "--out", tmp_path]), phrase)


def test_refuses_vector_with_unknown_class_name(scene, tmp_path):
    gj = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"class": "glacier"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[13.4, 52.5], [13.41, 52.5], [13.41, 52.51], [13.4, 52.5]]],
                },
            }
        ],
    }
    (tmp_path / "g.geojson").write_text(json.dumps(gj))
    m = _write(
        tmp_path,
        "m.json",
        _manifest(samples=[{"image": str(scene / "scene.tif"), "vector": "g.geojson"}]),
    )
    _refusal(_run([m, "--out", tmp_path / "o"]), "['glacier']")


def test_json_and_yaml_manifests_parse_the_same():
    data = _manifest(derived=[{"name": "ndvi", "a": "nir", "b": "red"}])
    assert parse_manifest_text(json.dumps(data)) == parse_manifest_text(yaml.safe_dump(data))
    with pytest.raises(InvalidInputError, match="colour"):
        manifest_from_dict(_manifest(classes=[{"id": 1, "name": "a", "colour": "red"}]))
    m = manifest_from_dict(_manifest(estimator={"type": "HistGradientBoosting"}))
    assert m.estimator.type == "hist_gradient_boosting"


def test_resolve_uri_against_local_dir_and_s3_prefix():
    from batch_image.train.fetchers import resolve_uri

    assert resolve_uri("s3://b/training/x/", "scenes/a.tif") == "s3://b/training/x/scenes/a.tif"
    assert resolve_uri("s3://b/training/x/", "../y/a.tif") == "s3://b/training/y/a.tif"
    assert resolve_uri("s3://b/training/x/", "s3://c/k.tif") == "s3://c/k.tif"
    assert resolve_uri("/data/m", "a.tif") == "/data/m/a.tif"
    with pytest.raises(InvalidInputError, match="climbs out"):
        resolve_uri("s3://b/t/", "../../etc/passwd")


def test_label_raster_in_another_crs_is_warped_onto_the_image_grid(scene, tmp_path):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(scene / "labels.tif") as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds
        )
        profile = src.profile | {
            "crs": "EPSG:4326",
            "transform": transform,
            "width": width,
            "height": height,
        }
        with rasterio.open(tmp_path / "labels_4326.tif", "w", **profile) as dst:
            reproject(
                rasterio.band(src, 1),
                rasterio.band(dst, 1),
                resampling=Resampling.nearest,
                dst_nodata=0,
            )
            dst.update_tags(**src.tags())
    m = manifest_from_dict(
        _manifest(
            samples=[
                {"image": str(scene / "scene.tif"), "labels": str(tmp_path / "labels_4326.tif")}
            ]
        )
    )
    warped = train_model(m, local_fetcher(tmp_path), VersionedStore(tmp_path / "w"))
    direct = train_model(
        manifest_from_dict(_manifest()), local_fetcher(scene), VersionedStore(tmp_path / "d")
    )
    found_w = warped.report["class_counts"]["found"]
    found_d = direct.report["class_counts"]["found"]
    assert set(found_w) == set(found_d)
    for k in found_d:
        assert abs(found_w[k] - found_d[k]) <= 0.15 * found_d[k] + 5


def test_two_images_float_nan_nodata_and_labels_on_nodata_skipped(scene, tmp_path):
    other = make_sample(tmp_path / "f", width=300, height=220, dtype="float32", seed=4)
    # Label the whole nodata border as water: none of it may be sampled.
    data = read(other.scene)
    labels = read(other.labels)[0]
    border = np.isnan(data).all(axis=0)
    assert border.any()
    labels[border] = 1
    write_like(other.labels, tmp_path / "f" / "labels_border.tif", labels)
    m = manifest_from_dict(
        _manifest(
            samples=[
                {"image": str(scene / "scene.tif"), "labels": str(scene / "labels.tif")},
                {"image": str(other.scene), "labels": str(tmp_path / "f" / "labels_border.tif")},
            ],
            max_samples_per_class=100_000,
        )
    )
    only_first = manifest_from_dict(_manifest(max_samples_per_class=100_000))
    both = train_model(m, local_fetcher(tmp_path), VersionedStore(tmp_path / "a"))
    first = train_model(only_first, local_fetcher(scene), VersionedStore(tmp_path / "b"))
    original = read(other.labels)[0]
    for k, n in first.report["class_counts"]["found"].items():
        expected = n + int((original == int(k)).sum())
        assert both.report["class_counts"]["found"][k] == expected
    assert len(both.card.extra["training_data"]["samples"]) == 2


def test_sampling_reads_across_many_windows(tmp_path):
    from batch_image.train.labels import RasterLabels
    from batch_image.train.sampling import sample_pixels

    paths = make_sample(tmp_path, width=2600, height=300, seed=8, nodata_fraction=0.0)
    with rasterio.open(paths.scene) as ds:
        source = RasterLabels(paths.labels, ds)
    try:
        result = sample_pixels([paths.scene], [source], None, max_per_class=60, seed=1)
    finally:
        source.close()
    assert all(n == 60 for n in result.sampled.values())
    scene = read(paths.scene)
    labels = read(paths.labels)[0]
    # Picks spread over every 1024-pixel column window that holds labels.
    labelled_windows = np.unique(np.nonzero(labels)[1] // 1024)
    assert labelled_windows.size == 3
    assert np.array_equal(np.unique(result.cols // 1024), labelled_windows)
    assert np.array_equal(result.pixels, scene[:, result.rows, result.cols].T.astype(np.float32))
    assert np.array_equal(result.labels, labels[result.rows, result.cols])


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("extra_trees", "ExtraTreesClassifier"),
        ("hist_gradient_boosting", "HistGradientBoostingClassifier"),
    ],
)
def test_other_estimators_train_and_load_through_the_trusted_check(scene, tmp_path, kind, cls):
    params = {"n_estimators": 10} if kind == "extra_trees" else {"max_iter": 20}
    m = manifest_from_dict(_manifest(estimator={"type": kind, "params": params}))
    result = train_model(m, local_fetcher(scene), VersionedStore(tmp_path), workers=1)
    estimator, card = load_model(tmp_path / "landcover" / result.version)
    assert type(estimator).__name__ == cls
    assert card.extra["estimator"] == {
        "type": kind,
        "class": cls,
        "params": {
            **params,
            "random_state": 0,
            **({"n_jobs": 1} if kind == "extra_trees" else {}),
        },
    }
    assert [int(c) for c in estimator.classes_] == [1, 2, 3, 4, 5, 6]


def test_readme_manifest_example_parses():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("**Manifest**", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    m = parse_manifest_text(example, source="README")
    assert m.name == "landcover" and len(m.classes) == 3 and len(m.samples) == 3
    assert m.samples[1].vector == "scenes/b_fields.geojson"
    assert (m.samples[2].image, m.samples[2].buffer) == ("scenes/c.vrt", 1)
    assert m.derived[0].name == "ndvi" and m.cv_block_size == 64
    assert m.estimator.params == {"n_estimators": 200, "min_samples_leaf": 2}


def test_usage_errors_exit_2(scene, tmp_path):
    no_out = _run(["--image", scene / "scene.tif", "--labels", scene / "labels.tif"])
    assert no_out.exit_code == 2 and "--out" in no_out.output
    both = _run([scene / "m1.yaml", "--image", scene / "scene.tif"])
    assert both.exit_code == 2 and "not both" in both.output
    quick = ["--image", scene / "scene.tif", "--labels", scene / "labels.tif"]
    promote = _run([*quick, "--out", tmp_path, "--promote"])
    assert promote.exit_code == 2 and "--promote applies to a manifest" in promote.output
    missing = _run([tmp_path / "nope.yaml", "--out", tmp_path])
    _refusal(missing, "cannot be read")


def test_refuses_labels_only_on_nodata(scene, tmp_path):
    data = read(scene / "scene.tif")
    labels = np.where((data == 0).all(axis=0), 2, 0).astype(np.uint8)
    assert labels.any()
    write_like(scene / "labels.tif", tmp_path / "on_nodata.tif", labels)
    result = _run(
        [
            "--image", scene / "scene.tif",
            "--labels", tmp_path / "on_nodata.tif",
            "--out", tmp_path / "m",
        ]
    )  # fmt: skip
    _refusal(result, "no labelled valid pixels")
    assert not (tmp_path / "m").exists()
