"""accuracy-sample → label → assess on small maps shaped like classes.tif."""

from __future__ import annotations

import json
import sqlite3

import fiona
import numpy as np
import pytest
from click.testing import CliRunner

from batch_image.accuracy.assessment import assess
from batch_image.accuracy.maps import read_strata
from batch_image.accuracy.reports import write_reports
from batch_image.accuracy.samplefile import draw_sample, read_sample
from batch_image.cli.main import main
from batch_image.errors import InvalidInputError
from tests.batch_image.accuracy.conftest import class_array, label, write_map


def test_proportional_allocation_keeps_the_minimum_and_the_total(class_map, tmp_path):
    design = draw_sample(class_map, tmp_path / "s.gpkg", n=200, min_per_class=30, seed=1)
    counts = {int(k): v for k, v in design["allocation"]["counts"].items()}
    assert sum(counts.values()) == 200
    assert counts[1] == 30  # water is rare: the minimum, not its proportional 8
    strata = read_strata(class_map)
    share = dict(zip(strata.ids, strata.counts / strata.counts.sum(), strict=True))
    # the rest is split in proportion to area
    assert counts[2] / counts[3] == pytest.approx(share[2] / share[3], rel=0.05)
    assert design["allocation"]["method"] == "proportional"


def test_points_lie_on_their_class_inside_valid_pixels_and_are_reproducible(class_map, tmp_path):
    a = draw_sample(class_map, tmp_path / "a.gpkg", n=150, seed=7)
    b = draw_sample(class_map, tmp_path / "b.gpkg", n=150, seed=7)
    c = draw_sample(class_map, tmp_path / "c.gpkg", n=150, seed=8)
    pa, pb, pc = (read_sample(tmp_path / f"{x}.gpkg").points for x in "abc")
    assert [(p.row, p.col) for p in pa] == [(p.row, p.col) for p in pb]
    assert [(p.row, p.col) for p in pa] != [(p.row, p.col) for p in pc]
    grid = class_array()
    for p in pa:
        assert grid[p.row, p.col] == p.map_class != 255
        assert p.reference is None
        assert p.x == pytest.approx(500000 + 10 * (p.col + 0.5))
        assert p.y == pytest.approx(5000000 - 10 * (p.row + 0.5))
    assert len({(p.row, p.col) for p in pa}) == 150  # without replacement
    assert a["fingerprint"] == b["fingerprint"] == c["fingerprint"]


def test_fixed_allocation_by_name_or_id_and_every_class_required(class_map, tmp_path):
    design = draw_sample(
        class_map, tmp_path / "s.gpkg", allocation={"water": 5, 2: 6, "Cropland": 7}
    )
    assert design["allocation"] == {
        "method": "fixed",
        "requested": None,
        "min_per_class": None,
        "counts": {"1": 5, "2": 6, "3": 7},
    }
    with pytest.raises(InvalidInputError, match="missing: 3 \\(cropland\\)"):
        draw_sample(class_map, tmp_path / "t.gpkg", allocation={1: 5, 2: 5})
    with pytest.raises(InvalidInputError, match="'snow'"):
        draw_sample(class_map, tmp_path / "t.gpkg", allocation={"snow": 5, 2: 5, 3: 5})


def test_the_geopackage_opens_styled_in_qgis_with_a_drop_down_of_class_names(class_map, tmp_path):
    draw_sample(class_map, tmp_path / "s.gpkg", n=60, seed=0)
    with sqlite3.connect(tmp_path / "s.gpkg") as db:
        ((qml, default),) = db.execute(
            "SELECT styleQML, useAsDefault FROM layer_styles WHERE f_table_name = 'sample'"
        ).fetchall()
        contents = {r[0] for r in db.execute("SELECT table_name FROM gpkg_contents")}
    assert default == 1 and {"sample", "layer_styles"} <= contents
    assert '<field name="reference"><editWidget type="ValueMap">' in qml
    for cid, name in ((1, "water"), (2, "forest"), (3, "cropland")):
        assert f'name="{name}" value="{cid}"' in qml
    assert '<field name="map_class"><editWidget type="Hidden">' in qml  # blind labelling
    assert (tmp_path / "s.qml").read_text() == qml


def test_assess_a_sample_labelled_with_known_errors(class_map, tmp_path):
    """Every 5th forest point is really cropland: the estimates follow Olofsson's formulas."""
    draw_sample(class_map, tmp_path / "s.gpkg", allocation={1: 20, 2: 50, 3: 40}, seed=3)
    seen = {"forest": 0}

    def truth(props):
        if props["map_class"] == 2:
            seen["forest"] += 1
            return 3 if seen["forest"] % 5 == 0 else 2
        return props["map_class"]

    labelled = label(tmp_path / "s.gpkg", tmp_path / "l.gpkg", truth)
    result = assess(class_map, labelled)
    doc = result.to_dict()
    assert doc["error_matrix"]["counts"] == [[20, 0, 0], [0, 40, 10], [0, 0, 40]]
    strata = read_strata(class_map)
    w = strata.counts / strata.counts.sum()
    forest = doc["classes"][1]
    assert forest["users_accuracy"]["value"] == pytest.approx(0.8)
    assert forest["users_accuracy"]["se"] == pytest.approx(np.sqrt(0.8 * 0.2 / 49), abs=1e-6)
    total = strata.counts.sum() * 100.0
    assert forest["area"]["value"] == pytest.approx(total * w[1] * 0.8, abs=0.01)
    cropland = doc["classes"][2]
    assert cropland["area"]["value"] == pytest.approx(total * (w[2] + 0.2 * w[1]), abs=0.01)
    assert forest["mapped_pixels"] == int(strata.counts[1])
    assert doc["overall_accuracy"]["value"] == pytest.approx(w[0] + 0.8 * w[1] + w[2], abs=1e-6)
    paths = write_reports(result, tmp_path / "out")
    assert json.loads(paths["assessment.json"].read_text()) == doc
    md = paths["assessment.md"].read_text()
    assert "| forest |" in md and "0.800 ±" in md
    assert paths["assessment.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unlabelled_points_are_left_out_and_counted(class_map, tmp_path):
    draw_sample(class_map, tmp_path / "s.gpkg", allocation={1: 10, 2: 10, 3: 10}, seed=3)
    n = {"i": 0}

    def some(props):
        n["i"] += 1
        return None if n["i"] % 3 == 0 else props["map_class"]

    result = assess(class_map, label(tmp_path / "s.gpkg", tmp_path / "l.gpkg", some))
    assert result.to_dict()["points"] == {"labelled": 20, "unlabelled": 10}


@pytest.mark.parametrize(
    ("reference", "code", "text"),
    [
        (lambda p: 9, "bad_reference", "are not classes of the map"),
        (lambda p: "forest" if p["map_class"] == 2 else p["map_class"], None, None),
        (lambda p: None if p["map_class"] == 1 and p["point_id"] % 7 else p["map_class"],
         "stratum_too_small", "water"),
        (lambda p: None, "not_labelled", "none of its"),
    ],
)  # fmt: skip
def test_clear_refusals_of_labels(class_map, tmp_path, reference, code, text):
    draw_sample(class_map, tmp_path / "s.gpkg", allocation={1: 3, 2: 10, 3: 10}, seed=5)
    labelled = tmp_path / "l.gpkg"
    if code is None:  # a class name where the id belongs: understood (QGIS forms)
        with fiona.open(tmp_path / "s.gpkg") as src:
            schema = src.schema
        schema["properties"]["reference"] = "str"
        label(tmp_path / "s.gpkg", labelled, reference, schema)
        assert assess(class_map, labelled).labelled == 23
        return
    label(tmp_path / "s.gpkg", labelled, reference)
    with pytest.raises(InvalidInputError, match=text) as err:
        assess(class_map, labelled)
    assert err.value.code == code
    assert "l.gpkg" in err.value.message and str(tmp_path) not in err.value.message


def test_a_sample_of_another_map_is_refused(class_map, tmp_path):
    draw_sample(class_map, tmp_path / "s.gpkg", n=60, seed=0)
    labelled = label(tmp_path / "s.gpkg", tmp_path / "l.gpkg", lambda p: p["map_class"])
    other = class_array()
    other[100, 10] = 3  # one pixel differs: a re-prediction
    other_map = write_map(tmp_path / "other.tif", other)
    with pytest.raises(InvalidInputError, match="drawn from another map") as err:
        assess(other_map, labelled)
    assert err.value.code == "sample_of_another_map"


def test_the_fingerprint_ignores_the_file_layout(tmp_path):
    a = read_strata(write_map(tmp_path / "a.tif", class_array(), tiled=True))
    b = read_strata(write_map(tmp_path / "b.tif", class_array(), tiled=False))
    assert a.fingerprint == b.fingerprint


def test_points_off_the_map_or_on_nodata_are_refused(class_map, tmp_path):
    draw_sample(class_map, tmp_path / "s.gpkg", n=60, seed=0)
    for name, xy, code in (("off", (400000.0, 5000000.0), "point_off_map"),
                           ("nodata", (500055.0, 4999945.0), "point_on_nodata")):  # fmt: skip
        with fiona.open(tmp_path / "s.gpkg") as src:
            schema, crs, tags, feats = src.schema, src.crs_wkt, src.tags(), list(src)
        dest = tmp_path / f"{name}.gpkg"
        with fiona.open(dest, "w", driver="GPKG", schema=schema, crs_wkt=crs, layer="sample") as d:
            for i, f in enumerate(feats):
                props = dict(f.properties) | {"reference": f.properties["map_class"]}
                geom = {"type": "Point", "coordinates": xy} if i == 4 else f.geometry
                d.write({"geometry": geom, "properties": props})
            d.update_tags(tags)
        with pytest.raises(InvalidInputError) as err:
            assess(class_map, dest)
        assert err.value.code == code
        assert "point(s) 5 " in err.value.message


def test_a_geopackage_that_is_not_a_sample_is_refused(class_map, tmp_path):
    dest = tmp_path / "mine.gpkg"
    schema = {"geometry": "Point", "properties": {"reference": "int"}}
    with fiona.open(dest, "w", driver="GPKG", schema=schema, crs="EPSG:32633") as d:
        d.write({"geometry": {"type": "Point", "coordinates": (500100.0, 4999900.0)},
                 "properties": {"reference": 1}})  # fmt: skip
    with pytest.raises(InvalidInputError, match="not an accuracy sample"):
        assess(class_map, dest)


def test_cli_end_to_end_and_usage_errors(class_map, tmp_path):
    runner = CliRunner()
    sample = tmp_path / "s.gpkg"
    made = runner.invoke(
        main, ["accuracy-sample", str(class_map), "--n", "90", "--out", str(sample)]
    )
    assert made.exit_code == 0, made.output
    assert "90 points (proportional" in made.output
    labelled = label(sample, tmp_path / "l.gpkg", lambda p: p["map_class"])
    done = runner.invoke(
        main, ["assess", str(class_map), str(labelled), "--out", str(tmp_path / "o")]
    )
    assert done.exit_code == 0, done.output
    assert "overall accuracy 1.000" in done.output
    bad = runner.invoke(
        main, ["accuracy-sample", str(class_map), "--allocation", "water", "--out", "x"]
    )
    assert bad.exit_code == 2 and "CLASS=COUNT" in bad.output
    refused = runner.invoke(
        main, ["assess", str(class_map), str(sample), "--out", str(tmp_path / "p")]
    )
    assert refused.exit_code == 2
    assert "error [invalid_input/not_labelled]" in refused.output


def test_a_class_of_one_pixel_is_sampled_completely_and_assessed(tmp_path):
    grid = class_array()
    grid[150, 250] = 1  # a lone water pixel far from the lake: its own stratum of one
    grid[:30, 200:] = 3  # (and no lake)
    classes = write_map(tmp_path / "c.tif", grid)
    design = draw_sample(classes, tmp_path / "s.gpkg", n=60, min_per_class=10, seed=2)
    assert design["allocation"]["counts"]["1"] == 1
    result = assess(classes, label(tmp_path / "s.gpkg", tmp_path / "l.gpkg",
                                   lambda p: p["map_class"]))  # fmt: skip
    water = result.to_dict()["classes"][0]
    assert water["area"]["value"] == pytest.approx(100.0) and water["area"]["se"] == 0.0


def test_a_sample_saved_in_another_crs_is_reprojected_not_refused(class_map, tmp_path):
    """QGIS "Save Features As…" in WGS 84: the points are the same places."""
    from fiona.transform import transform_geom

    draw_sample(class_map, tmp_path / "s.gpkg", n=60, seed=0)
    with fiona.open(tmp_path / "s.gpkg") as src:
        schema, tags, feats, crs = src.schema, src.tags(), list(src), src.crs_wkt
    dest = tmp_path / "wgs84.gpkg"
    with fiona.open(dest, "w", driver="GPKG", schema=schema, crs="EPSG:4326", layer="sample") as d:
        for f in feats:
            geom = transform_geom(crs, "EPSG:4326", f.geometry)
            props = dict(f.properties) | {"reference": f.properties["map_class"]}
            d.write({"geometry": geom, "properties": props})
        d.update_tags(tags)
    assert assess(class_map, dest).estimates.overall.value == pytest.approx(1.0)
