"""The benchmark harness: measurement, scheduling, target checks, and a tiny end-to-end run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.harness import run_plan, schedule
from bench.measure import RunFailed, run_measured
from bench.report import checks, document, machine, markdown
from bench.workloads import NO_PEER, ModelSpec, Prepared, SceneSpec, Workload, scene_meta
from tests.conftest import make_model, make_scene

VARIANT_KEYS = {"wall_s", "peak_rss_mb"}


def test_peak_rss_is_the_childs_own() -> None:
    grab = "import numpy as np; a = np.ones(300 * 2**20 // 8); print('{\"n\": 1}')"
    big = run_measured([sys.executable, "-c", grab])
    small = run_measured([sys.executable, "-c", "pass"])
    assert big.peak_rss_mb >= 300
    assert small.peak_rss_mb < big.peak_rss_mb - 250  # not the running maximum of all children
    assert big.report == {"n": 1}
    assert big.wall_s > 0


def test_failed_command_raises_with_its_stderr() -> None:
    with pytest.raises(RunFailed, match="boom"):
        run_measured([sys.executable, "-c", "import sys; sys.exit('boom')"])


def _prepared(name: str, reps: int, variants: tuple[str, ...]) -> Prepared:
    w = Workload(name, SceneSpec(), ModelSpec("rf100"), reps=reps, variants=variants)
    return Prepared(w, Path("s.tif"), Path("m"), 40.0, 5.2, 0.9)


def test_schedule_interleaves_repetitions_and_rotates_variants() -> None:
    a = _prepared("a", 3, ("x", "y", "z"))
    b = _prepared("b", 1, ("x", "y"))
    order = [(rep, p.workload.name, v) for rep, p, v in schedule([a, b], skip={"y"})]
    assert order == [
        (0, "a", "x"), (0, "a", "z"), (0, "b", "x"),
        (1, "a", "z"), (1, "a", "x"),
        (2, "a", "x"), (2, "a", "z"),
    ]  # fmt: skip


def _entry(name: str, mb: float, mpx: float, valid: float, a: float, a_mb: float) -> dict:
    return {
        "name": name,
        "model": "rf100",
        "file_mb": mb,
        "megapixels": mpx,
        "valid_fraction": valid,
        "rasterdrop": {"wall_s": a, "peak_rss_mb": a_mb},
        "plain_script": {"wall_s": 12.0, "peak_rss_mb": 1200.0},
        "pyspatialml": None,
        "model_floor": {"wall_s": 9.0},
        "io_floor": {"wall_s": 0.5},
    }


def test_target_checks_pass_and_fail_on_the_numbers() -> None:
    doc = {
        "machine": "m",
        "date": "d",
        "workloads": [
            _entry("scene-40mb", 40, 5.2, 0.9, 10.0, 280.0),
            _entry("scene-40mb-nodata50", 40, 5.2, 0.45, 5.2, 280.0),
            _entry("sweep-10mb", 10, 1.3, 0.9, 2.6, 250.0),
            _entry("sweep-160mb", 160, 20.8, 0.9, 40.0, 400.0),
            _entry("scene-40mb-probabilities", 40, 5.2, 0.9, 10.3, 300.0),  # floor 9.0
            _entry("scene-40mb-regression", 40, 5.2, 0.9, 11.8, 300.0),  # floor 9.0
        ],
    }
    status = {c.name.split(":")[1].strip(): c.status for c in checks(doc)}
    assert status == {
        "rasterdrop ≤ 1.15 × model floor": "PASS",  # 10.0 ≤ 10.35
        "rasterdrop no slower than the plain script": "PASS",
        "rasterdrop peak memory ≤ 25 % of the plain script's": "PASS",  # 280 ≤ 300
        "rasterdrop peak memory within 1.3× across sizes": "FAIL",  # 400 / 250
        "rasterdrop seconds per megapixel within 1.2× across sizes": "PASS",
        "time proportional to valid pixels (±15 %)": "PASS",  # 0.52 for 0.5
        "rasterdrop ≤ 1.15 × its model floor": "PASS",  # 10.3 ≤ 10.35
        "rasterdrop ≤ 1.3 × its model floor": "FAIL",  # 11.8 > 11.7
    }
    names = [c.name for c in checks(doc)]
    assert "40 MB with probabilities: rasterdrop ≤ 1.15 × its model floor" in names
    assert "40 MB forest regression with uncertainty: rasterdrop ≤ 1.3 × its model floor" in names
    doc["workloads"] = doc["workloads"][:1]
    skipped = {c.name: c.status for c in checks(doc) if "its model floor" in c.name}
    assert set(skipped.values()) == {"SKIP"}


@pytest.mark.slow
def test_tiny_end_to_end_run_writes_the_results_shape(tmp_path: Path) -> None:
    scene, truth = make_scene(tmp_path, width=64, height=48)
    model = make_model(tmp_path, scene, truth, trees=3)
    meta = scene_meta(scene)
    w = Workload("scene-40mb", SceneSpec(64, 48), ModelSpec("rf100"), reps=1, variants=NO_PEER)
    p = Prepared(w, scene, model, meta["file_mb"], meta["megapixels"], meta["valid_fraction"])
    assert 0.5 < p.valid_fraction < 1.0  # the scene has nodata holes
    results = run_plan([p], tmp_path / "runs", log=lambda _: None)
    assert not any(r.errors for r in results["scene-40mb"].values())
    doc = json.loads(json.dumps(document([p], results, machine())))
    assert set(doc) == {"machine", "date", "workloads"}
    assert "cores" in doc["machine"]
    (entry,) = doc["workloads"]
    assert set(entry) == {
        "name", "model", "file_mb", "megapixels", "valid_fraction",
        "rasterdrop", "plain_script", "pyspatialml", "model_floor", "io_floor",
    }  # fmt: skip
    assert entry["model"] == "rf100"
    assert entry["megapixels"] == pytest.approx(64 * 48 / 1e6, abs=1e-3)
    for variant in ("rasterdrop", "plain_script"):
        assert set(entry[variant]) == VARIANT_KEYS
        assert entry[variant]["wall_s"] > 0
        assert entry[variant]["peak_rss_mb"] > 50
    assert entry["pyspatialml"] is None
    assert set(entry["model_floor"]) == {"wall_s"}
    assert set(entry["io_floor"]) == {"wall_s"}
    found = checks(doc)
    assert [c.status for c in found[:3]] != ["SKIP"] * 3
    table = markdown(doc, [p], [], found, "--plan smoke")
    assert "| scene-40mb | rf100 |" in table


def test_the_sharded_row_reads_its_measurements() -> None:
    from bench.sharded import markdown

    r = {
        "workload": "sweep-160mb", "file_mb": 168.0, "megapixels": 20.8, "cores": 2,
        "children": 2, "whole_s": 129.1, "whole_vcpu_s": 254.9, "plan_s": 0.2,
        "children_s": 191.0, "assemble_s": 14.7, "sharded_s": 205.9, "sharded_vcpu_s": 398.6,
        "speedup": 0.63, "pixels_identical": True, "date": "2026-12-02T05:08:46Z",
    }  # fmt: skip
    rows = markdown(r).splitlines()
    assert rows[4] == "| sweep-160mb | 168 | 20.8 | 1 job | 129.1 | – | – | – | 255 | 1.00 | |"
    assert rows[5] == (
        "| sweep-160mb | 168 | 20.8 | 2 children + assemble | 205.9 | 0.2 | 191.0 | 14.7 "
        "| 399 | 0.63 | yes |"
    )
    assert markdown({**r, "pixels_identical": False}).splitlines()[5].endswith("| NO |")
