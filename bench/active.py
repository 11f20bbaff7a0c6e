"""Does labelling where the model is unsure beat labelling at random? (``python -m bench active``)

The labelling loop of the README, with ``truth.tif`` of the sample scene standing in for
the person: start from the sample's ``labels.tif``; each round predict the scene, take
the ``review.gpkg`` points the prediction wrote (uncertainty arm) or as many random
valid pixels (random arm), label them from the truth, add all points labelled so far to
the manifest as a point sample (``vector``, ``class_field: label``) and retrain with the
same settings. After each round the map's overall accuracy against the truth (every
valid pixel) is recorded for both arms. Everything runs through the product's own code:
``predict_file`` (review selection included) and ``train_model``.

``python -m bench active [--width 800 --height 600 --rounds 3 --points 200]`` writes
``bench/results/active.json`` and ``active.md`` (the table the README shows).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import fiona
import numpy as np
import rasterio

from batch_image.model.stores import VersionedStore
from batch_image.predict.pipeline import PredictOptions, predict_file
from batch_image.predict.review import LAYER, REVIEW_GPKG
from batch_image.synthetic.scene import SAMPLE_CLASSES, make_sample
from batch_image.train.fetchers import local_fetcher
from batch_image.train.manifest import manifest_from_dict
from batch_image.train.trainer import train_model

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
ARMS = ("uncertainty", "random")


def accuracy(classes_tif: Path, truth_tif: Path) -> float:
    """Share of the map's valid pixels whose class is the true one."""
    with rasterio.open(classes_tif) as m, rasterio.open(truth_tif) as t:
        classes, truth = m.read(1), t.read(1)
    valid = (classes != 255) & (truth > 0)
    return float(np.mean(classes[valid] == truth[valid]))


def review_cells(out_dir: Path) -> list[tuple[int, int]]:
    with fiona.open(out_dir / REVIEW_GPKG, layer=LAYER) as src:
        return [(int(f.properties["row"]), int(f.properties["col"])) for f in src]


def random_cells(classes_tif: Path, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    with rasterio.open(classes_tif) as m:
        valid = np.argwhere(m.read(1) != 255)
    pick = rng.choice(len(valid), size=min(n, len(valid)), replace=False)
    return [(int(r), int(c)) for r, c in valid[pick]]


def write_points(path: Path, cells: list[tuple[int, int]], truth_tif: Path) -> None:
    """The labelled points (``label`` from the truth) as a GeoPackage point sample."""
    with rasterio.open(truth_tif) as t:
        truth, transform, crs = t.read(1), t.transform, t.crs
    schema = {"geometry": "Point", "properties": {"label": "int"}}
    path.unlink(missing_ok=True)
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs_wkt=crs.to_wkt()) as dst:
        dst.writerecords(
            {
                "geometry": {"type": "Point", "coordinates": transform * (c + 0.5, r + 0.5)},
                "properties": {"label": int(truth[r, c]) or None},
            }
            for r, c in cells
        )


def manifest(points: Path | None, trees: int, seed: int) -> Any:
    samples: list[dict[str, Any]] = [{"image": "scene.tif", "labels": "labels.tif"}]
    if points is not None:
        samples.append({"image": "scene.tif", "vector": points.name, "class_field": "label"})
    return manifest_from_dict(
        {
            "name": "active",
            "classes": [{"id": i, "name": n, "colour": c} for i, n, c in SAMPLE_CLASSES],
            "samples": samples,
            "estimator": {"type": "random_forest", "params": {"n_estimators": trees}},
            "min_samples_per_class": 1,
            "seed": seed,
            "cv": {"block_size": 64, "folds": 3},
        }
    )


def _predict(scene: Path, model: Path, out: Path, points: int, workers: int | None) -> float:
    options = PredictOptions(workers=workers, review_points=points)
    predict_file(scene, model, out, options)
    return accuracy(out / "classes.tif", scene.parent / "truth.tif")


def run_loop(
    work: Path,
    *,
    width: int = 800,
    height: int = 600,
    rounds: int = 3,
    points: int = 200,
    trees: int = 60,
    seed: int = 7,
    workers: int | None = None,
    say: Any = print,
) -> dict[str, Any]:
    """Both arms from the same start; returns the per-round accuracies."""
    work.mkdir(parents=True, exist_ok=True)
    paths = make_sample(work, width=width, height=height, seed=seed, truth=True)
    store = VersionedStore(work / "models")
    fetch = local_fetcher(work)
    t0 = time.perf_counter()
    base = train_model(manifest(None, trees, seed), fetch, store)
    start = _predict(paths.scene, Path(base.location), work / "out-base", points, workers)
    say(f"round 0: accuracy {start:.4f} (sample labels only)")
    table = {arm: [start] for arm in ARMS}
    labelled: dict[str, list[tuple[int, int]]] = {arm: [] for arm in ARMS}
    last_out = {arm: work / "out-base" for arm in ARMS}
    rng = np.random.default_rng(seed)
    for r in range(1, rounds + 1):
        for arm in ARMS:
            prev = last_out[arm]
            new = review_cells(prev) if arm == "uncertainty" else random_cells(
                prev / "classes.tif", points, rng
            )  # fmt: skip
            labelled[arm] += new
            gpkg = work / f"points-{arm}.gpkg"
            write_points(gpkg, labelled[arm], paths.truth)
            result = train_model(manifest(gpkg, trees, seed), fetch, store)
            out = work / f"out-{arm}-{r}"
            table[arm].append(_predict(paths.scene, Path(result.location), out, points, workers))
            last_out[arm] = out
            say(f"round {r} {arm}: {len(labelled[arm])} points, accuracy {table[arm][-1]:.4f}")
    return {
        "scene": {"width": width, "height": height, "seed": seed},
        "rounds": rounds,
        "points_per_round": points,
        "trees": trees,
        "accuracy": table,
        "labelled_points": {arm: len(v) for arm, v in labelled.items()},
        "distinct_points": {arm: len(set(v)) for arm, v in labelled.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def render_review(out_dir: Path, png: Path, scale: int = 1) -> Path:
    """A screenshot-like picture: the map in its colours, the review points over it drawn
    as QGIS draws them (by confidence: red least sure), numbered legend at the bottom."""
    from PIL import Image, ImageDraw

    from batch_image.accuracy.qgis import CONFIDENCE_BANDS

    with rasterio.open(out_dir / "classes.tif") as src:
        classes, cmap = src.read(1), src.colormap(1)
    lut = np.zeros((256, 3), dtype=np.uint8)
    for cid, rgba in cmap.items():
        lut[cid] = rgba[:3]
    lut[255] = (255, 255, 255)
    image = Image.fromarray(lut[classes]).convert("RGB")
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    canvas = Image.new("RGB", (image.width, image.height + 24), "white")
    canvas.paste(image)
    draw = ImageDraw.Draw(canvas)
    with fiona.open(out_dir / REVIEW_GPKG, layer=LAYER) as src:
        points = [dict(f.properties) for f in src]
    for p in points:
        band = next(b for b in CONFIDENCE_BANDS if p["confidence"] <= b[1])
        x, y = (p["col"] + 0.5) * scale, (p["row"] + 0.5) * scale
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=band[2], outline="black")
    x = 6
    for _, _, colour, label in CONFIDENCE_BANDS:
        draw.ellipse((x, image.height + 8, x + 8, image.height + 16), fill=colour, outline="black")
        draw.text((x + 12, image.height + 6), label.replace("–", "-"), fill="black")
        x += 150
    canvas.save(png)
    return png


def markdown(result: dict[str, Any]) -> str:
    """The README's table: accuracy against the truth after each round, both arms."""
    s = result["scene"]
    lines = [
        f"Sample scene {s['width']} × {s['height']} (seed {s['seed']}), random forest of "
        f"{result['trees']} trees, {result['points_per_round']} points a round, labelled from "
        "`truth.tif`; overall accuracy of the whole map against the truth:",
        "",
        "| round | labelled points | review points (uncertainty) | random points | difference |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    unc, rnd = result["accuracy"]["uncertainty"], result["accuracy"]["random"]
    for r, (a, b) in enumerate(zip(unc, rnd, strict=True)):
        lines.append(
            f"| {r} | {r * result['points_per_round']} | {a:.4f} | {b:.4f} | {a - b:+.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench active", description=__doc__)
    parser.add_argument("--work", default="/tmp/rasterdrop-bench-active")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--trees", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--png", help="also render the first review points over the map here")
    args = parser.parse_args(argv)
    result = run_loop(
        Path(args.work),
        width=args.width,
        height=args.height,
        rounds=args.rounds,
        points=args.points,
        trees=args.trees,
        seed=args.seed,
        workers=args.workers,
        say=lambda m: print(m, file=sys.stderr, flush=True),
    )
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / "active.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (results / "active.md").write_text(table)
    print(table)
    if args.png:
        render_review(Path(args.work) / "out-base", Path(args.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
