"""Workloads (scene × model), the plans that pick them, and their cached inputs.

Scenes come from ``python -m batch_image sample`` and models from
``python -m batch_image train``, both run as the user would, and are cached
under the work directory keyed by their parameters, so a second run reuses them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import rasterio

from bench.measure import python_cmd

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORK = REPO / "bench" / "work"

VARIANTS = ("rasterdrop", "plain_script", "pyspatialml", "model_floor", "io_floor")
ALL = VARIANTS
NO_PEER = ("rasterdrop", "plain_script", "model_floor", "io_floor")
OWN_ONLY = ("rasterdrop", "model_floor", "io_floor")
FLOOR_ONLY = ("rasterdrop", "model_floor")

# sample classes (docs/contracts.md), for the manifest of the non-default models
SAMPLE_CLASSES = (
    (1, "water"),
    (2, "forest"),
    (3, "grassland"),
    (4, "cropland"),
    (5, "built-up"),
    (6, "bare soil"),
)


@dataclass(frozen=True)
class SceneSpec:
    width: int = 2600
    height: int = 2000
    bands: int = 4
    dtype: str = "uint16"
    seed: int = 0
    nodata_fraction: float = 0.08

    @property
    def key(self) -> str:
        return (
            f"{self.width}x{self.height}-{self.bands}b-{self.dtype}"
            f"-seed{self.seed}-nd{self.nodata_fraction:g}"
        )


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "rf100" | "hgb" | "rf100-regression" (the label in the results)
    trees: int = 100  # random forest only
    trained_on: SceneSpec = field(default_factory=SceneSpec)

    @property
    def key(self) -> str:
        size = f"-t{self.trees}" if self.kind != "hgb" else ""
        return f"{self.kind}{size}-{self.trained_on.key}"

    @property
    def regression(self) -> bool:
        return self.kind.endswith("-regression")


@dataclass(frozen=True)
class Workload:
    name: str
    scene: SceneSpec
    model: ModelSpec
    reps: int = 3
    variants: tuple[str, ...] = ALL
    # time the model floor on at most this many rows and scale (0: all rows)
    floor_max_rows: int = 0
    note: str = ""
    options: tuple[str, ...] = ()  # extra `predict` options (--probabilities)


@dataclass(frozen=True)
class Prepared:
    workload: Workload
    scene: Path
    model: Path
    file_mb: float
    megapixels: float
    valid_fraction: float


RF100 = ModelSpec("rf100")
HGB = ModelSpec("hgb")
RF100_REGRESSION = ModelSpec("rf100-regression")  # biomass from values.tif, with uncertainty
PROBABILITIES_WORKLOAD = "scene-40mb-probabilities"
REGRESSION_WORKLOAD = "scene-40mb-regression"
SCENE_40 = SceneSpec()


def _sweep(mb: int, width: int, height: int, **kw: object) -> Workload:
    return Workload(f"sweep-{mb}mb", SceneSpec(width, height), RF100, **kw)  # type: ignore[arg-type]


PLANS: dict[str, list[Workload]] = {
    # `make bench`: ~15 min on a quiet 2-core machine (estimated from CPU seconds measured
    # under load); every comparison, 3 repetitions, on the 40 MB scene; the other
    # workloads only what their targets need (see the notes in latest.md)
    "default": [
        Workload("scene-40mb", SCENE_40, RF100),
        Workload(
            "scene-40mb-hgb",
            SCENE_40,
            HGB,
            reps=1,
            variants=NO_PEER,
            note="1 repetition, no pyspatialml (its all-thread OpenMP calls per small block "
            "take minutes); `--plan full` runs them",
        ),
        Workload(
            "scene-40mb-nodata50",
            SceneSpec(nodata_fraction=0.5),
            RF100,
            variants=OWN_ONLY,
            note="rasterdrop and the floors only (the target is about rasterdrop)",
        ),
        _sweep(10, 1300, 1000, variants=OWN_ONLY, note="rasterdrop and the floors only"),
        Workload(
            PROBABILITIES_WORKLOAD,
            SCENE_40,
            RF100,
            variants=FLOOR_ONLY,
            options=("--probabilities",),
            note="probabilities.tif on; its floor is the same one predict_proba call",
        ),
        Workload(
            REGRESSION_WORKLOAD,
            SCENE_40,
            RF100_REGRESSION,
            variants=FLOOR_ONLY,
            note="forest regression with uncertainty.tif; its floor is every tree's "
            "predictions, their mean and standard deviation, in memory, all cores",
        ),
        _sweep(
            160,
            5200,
            4000,
            reps=1,
            variants=OWN_ONLY,
            floor_max_rows=4_000_000,
            note="1 repetition; rasterdrop and the floors only (the plain script needs ~4 GB "
            "and 4 min here: `--plan full`); model floor timed on 4 M rows and scaled",
        ),
        _sweep(
            640,
            10400,
            8000,
            reps=1,
            variants=OWN_ONLY,
            floor_max_rows=4_000_000,
            note="1 repetition; rasterdrop and the floors only (`--plan full` runs the others); "
            "model floor timed on 4 M rows and scaled",
        ),
    ],
    # everything, every variant: about an hour on 2 cores
    "full": [
        Workload("scene-40mb", SCENE_40, RF100),
        Workload("scene-40mb-hgb", SCENE_40, HGB),
        Workload("scene-40mb-nodata50", SceneSpec(nodata_fraction=0.5), RF100),
        Workload(
            PROBABILITIES_WORKLOAD,
            SCENE_40,
            RF100,
            variants=FLOOR_ONLY,
            options=("--probabilities",),
        ),
        Workload(REGRESSION_WORKLOAD, SCENE_40, RF100_REGRESSION, variants=FLOOR_ONLY),
        _sweep(10, 1300, 1000),
        _sweep(160, 5200, 4000, reps=1, note="1 repetition"),
        _sweep(640, 10400, 8000, reps=1, note="1 repetition"),
    ],
    # the harness's own smoke test: a tiny scene and forest, one repetition
    "smoke": [
        Workload(
            "smoke",
            SceneSpec(256, 192, seed=1),
            ModelSpec("rf100", trees=5, trained_on=SceneSpec(256, 192, seed=1)),
            reps=1,
            variants=NO_PEER,
        ),
    ],
}

SWEEP_PREFIX = "sweep-"
MAIN_WORKLOAD = "scene-40mb"


def _run(cmd: list[str]) -> None:
    # one OpenMP thread: gradient boosting's OpenMP barriers crawl on a busy machine,
    # and the fitted model does not depend on the thread count
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def _fresh(final: Path) -> Path:
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def scene_dir(spec: SceneSpec, work: Path) -> Path:
    """``scene.tif``, ``labels.tif`` and ``values.tif`` for ``spec``, generated once."""
    final = work / "scenes" / spec.key
    if (final / "meta.json").is_file() and (final / "values.tif").is_file():
        return final
    tmp = _fresh(final)
    _run(
        python_cmd(
            "-m",
            "batch_image",
            "sample",
            "--out",
            str(tmp),
            "--width",
            str(spec.width),
            "--height",
            str(spec.height),
            "--bands",
            str(spec.bands),
            "--dtype",
            spec.dtype,
            "--seed",
            str(spec.seed),
            "--nodata-fraction",
            str(spec.nodata_fraction),
            "--values",
        )
    )
    (tmp / "meta.json").write_text(json.dumps(scene_meta(tmp / "scene.tif")) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    return final


def scene_meta(path: Path) -> dict[str, float]:
    """File size, megapixels and the fraction of pixels valid in every band."""
    import numpy as np

    from batch_image.raster.validity import ValidityRule
    from batch_image.raster.windows import plan_windows

    valid = 0
    with rasterio.open(path) as src:
        rule = ValidityRule.of(src)
        for window in plan_windows(src.width, src.height, src.block_shapes[0], 1 << 22):
            valid += int(np.count_nonzero(rule.mask(src, src.read(window=window), window)))
        pixels = src.width * src.height
    return {
        "file_mb": path.stat().st_size / 2**20,
        "megapixels": pixels / 1e6,
        "valid_fraction": valid / pixels,
    }


def _manifest(spec: ModelSpec, scene: Path) -> dict[str, object]:
    estimator: dict[str, object] = (
        {"type": "hist_gradient_boosting", "params": {}}
        if spec.kind == "hgb"
        else {"type": "random_forest", "params": {"n_estimators": spec.trees}}
    )
    return {
        "name": f"bench-{spec.kind}",
        "classes": [{"id": i, "name": n} for i, n in SAMPLE_CLASSES],
        "samples": [{"image": str(scene / "scene.tif"), "labels": str(scene / "labels.tif")}],
        "estimator": estimator,
        "seed": 0,
    }


def model_dir(spec: ModelSpec, work: Path) -> Path:
    """A trained model directory for ``spec``, trained once on its scene."""
    final = work / "models" / spec.key
    if (final / "model.json").is_file():
        return final
    scene = scene_dir(spec.trained_on, work)
    tmp = _fresh(final)
    if spec.regression:
        _run(
            python_cmd(
                "-m", "batch_image", "train", "--image", str(scene / "scene.tif"),
                "--labels", str(scene / "values.tif"), "--out", str(tmp),
                "--trees", str(spec.trees), "--name", "bench-rf-regression",
                "--task", "regression", "--target", "biomass", "--unit", "t/ha",
            )
        )  # fmt: skip
    elif spec.kind == "rf100":
        _run(
            python_cmd(
                "-m",
                "batch_image",
                "train",
                "--image",
                str(scene / "scene.tif"),
                "--labels",
                str(scene / "labels.tif"),
                "--out",
                str(tmp),
                "--trees",
                str(spec.trees),
                "--name",
                "bench-rf",
            )
        )
    else:
        root = tmp.with_name(tmp.name + "-root")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        manifest = root / "manifest.json"
        manifest.write_text(json.dumps(_manifest(spec, scene), indent=2))
        _run(python_cmd("-m", "batch_image", "train", str(manifest), "--out", str(root)))
        found = (root / f"bench-{spec.kind}").glob("*/model.json")
        (version,) = [p.parent for p in found]
        os.replace(version, tmp)
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def prepare(workload: Workload, work: Path) -> Prepared:
    scene = scene_dir(workload.scene, work)
    model = model_dir(workload.model, work)
    meta = json.loads((scene / "meta.json").read_text())
    return Prepared(
        workload,
        scene / "scene.tif",
        model,
        file_mb=float(meta["file_mb"]),
        megapixels=float(meta["megapixels"]),
        valid_fraction=float(meta["valid_fraction"]),
    )
