"""``python -m bench active`` runs the labelling loop end to end on a tiny scene."""

from __future__ import annotations

import fiona
import rasterio

from bench import active


def test_the_loop_labels_from_the_truth_and_scores_every_round(tmp_path):
    result = active.run_loop(
        tmp_path / "work", width=160, height=120, rounds=2, points=15, trees=5, say=lambda m: None
    )
    unc, rnd = result["accuracy"]["uncertainty"], result["accuracy"]["random"]
    assert len(unc) == len(rnd) == 3 and unc[0] == rnd[0]  # the same start
    assert result["labelled_points"] == {"uncertainty": 30, "random": 30}
    work = tmp_path / "work"
    # each round's accuracy is the map's against the truth
    assert unc[2] == active.accuracy(work / "out-uncertainty-2" / "classes.tif", work / "truth.tif")
    # the labelled points are the first rounds' review points, with the truth's classes
    first = active.review_cells(work / "out-base")
    points = work / "points-uncertainty.gpkg"
    with fiona.open(points) as src, rasterio.open(work / "truth.tif") as t:
        truth, inverse = t.read(1), ~t.transform
        labels = [(f.properties["label"], f.geometry.coordinates) for f in src]
    cells = [tuple(int(v) for v in inverse * xy)[::-1] for _, xy in labels]
    assert cells[:15] == first
    assert all(label == truth[r, c] for (label, _), (r, c) in zip(labels, cells, strict=True))
    table = active.markdown(result)
    assert f"| 2 | 30 | {unc[2]:.4f} | {rnd[2]:.4f} | {unc[2] - rnd[2]:+.4f} |" in table


def test_the_rendering_draws_each_review_point_in_its_confidence_colour(tmp_path):
    from PIL import Image

    from batch_image.accuracy.qgis import CONFIDENCE_BANDS

    active.run_loop(
        tmp_path / "w", width=120, height=90, rounds=1, points=10, trees=3, say=lambda m: None
    )
    out = tmp_path / "w" / "out-base"
    png = active.render_review(out, tmp_path / "review.png")
    image = Image.open(png).convert("RGB")
    assert image.size == (120, 90 + 24)
    with fiona.open(out / "review.gpkg") as src:
        points = [dict(f.properties) for f in src]
    assert len(points) == 10
    for p in points:
        colour = next(b[2] for b in CONFIDENCE_BANDS if p["confidence"] <= b[1])
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        # the pixel itself may sit under a later point's disc, so look at its centre's colour
        assert image.getpixel((p["col"], p["row"])) in {rgb} | {
            tuple(int(b[2][i : i + 2], 16) for i in (1, 3, 5)) for b in CONFIDENCE_BANDS
        }
