"""Run a plan: every variant of every workload as its own process, repetitions interleaved.

Repetition ``r`` runs every workload that still needs one, each workload's
variants in an order rotated by ``r``, so slow drift in machine load (other
processes, thermal, page cache) spreads over all variants instead of
penalising whichever ran last. Medians over the repetitions are reported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Measurement, RunFailed, python_cmd, run_measured
from bench.workloads import REPO, Prepared

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RASTERDROP_WORKERS")


@dataclass
class Runs:
    """Every measurement of one variant on one workload."""

    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, m: Measurement, reported_wall: bool) -> None:
        wall = m.wall_s
        if reported_wall:
            if not m.report or "wall_s" not in m.report:
                raise RunFailed("the floor script printed no wall_s")
            wall = float(m.report["wall_s"])
        self.walls.append(wall)
        self.rss.append(m.peak_rss_mb)
        self.cpu.append(round(m.cpu_s, 2))


def clean_env() -> dict[str, str]:
    """The parent's environment without thread caps: every variant sees all cores."""
    return {k: v for k, v in os.environ.items() if k not in THREAD_VARS}


def command(variant: str, p: Prepared, out: Path) -> list[str]:
    scene, model = str(p.scene), str(p.model)
    if variant == "rasterdrop":
        return python_cmd(
            "-m", "batch_image", "predict", scene, "--model", model, "--out", str(out),
            "--no-progress", *p.workload.options,
        )  # fmt: skip
    if variant == "plain_script":
        return python_cmd("-m", "bench.plain_script", scene, model, str(out))
    if variant == "pyspatialml":
        return python_cmd("-m", "bench.pyspatialml_script", scene, model, str(out))
    if variant == "model_floor":
        cmd = python_cmd("-m", "bench.model_floor", scene, model)
        if p.workload.floor_max_rows:
            cmd += ["--max-rows", str(p.workload.floor_max_rows)]
        return cmd
    if variant == "io_floor":
        return python_cmd("-m", "bench.io_floor", scene, str(out))
    raise ValueError(f"unknown variant {variant!r}")


REPORTED_WALL = {"model_floor", "io_floor"}


def peer_env(env: dict[str, str], peer_site: Path) -> dict[str, str]:
    """``env`` with the peer library's own site directory first on the path."""
    paths = [str(peer_site), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def pyspatialml_status(peer_site: Path) -> str | None:
    """``None`` when pyspatialml imports in a child process, else why not."""
    if not peer_site.is_dir():
        return f"{peer_site} does not exist (`make bench` installs it there)"
    proc = subprocess.run(
        [sys.executable, "-c", "import pyspatialml.raster"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=peer_env(clean_env(), peer_site),
    )
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1][:300] if lines else f"import failed ({proc.returncode})"


def schedule(prepared: list[Prepared], skip: set[str]) -> list[tuple[int, Prepared, str]]:
    """``(rep, workload, variant)`` in run order: reps outermost, variants rotated."""
    order = []
    for rep in range(max(p.workload.reps for p in prepared)):
        for p in prepared:
            if rep >= p.workload.reps:
                continue
            variants = [v for v in p.workload.variants if v not in skip]
            shift = rep % max(1, len(variants))
            for v in variants[shift:] + variants[:shift]:
                order.append((rep, p, v))
    return order


def run_plan(
    prepared: list[Prepared],
    scratch: Path,
    *,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
    peer_site: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Runs]]:
    """Measure everything; returns ``{workload name: {variant: Runs}}``."""
    results: dict[str, dict[str, Runs]] = {p.workload.name: {} for p in prepared}
    base = clean_env()
    peer = peer_env(base, peer_site) if peer_site else base
    order = schedule(prepared, set(skip))
    for n, (rep, p, variant) in enumerate(order, 1):
        out = scratch / f"{p.workload.name}-{variant}"
        shutil.rmtree(out, ignore_errors=True)
        runs = results[p.workload.name].setdefault(variant, Runs())
        try:
            env = peer if variant == "pyspatialml" else base
            m = run_measured(command(variant, p, out), env=env, cwd=REPO)
            runs.add(m, variant in REPORTED_WALL)
            log(
                f"[{n}/{len(order)}] {p.workload.name} {variant} rep {rep + 1}: "
                f"{runs.walls[-1]:.2f} s, peak {m.peak_rss_mb:.0f} MB, cpu {m.cpu_s:.1f} s"
            )
        except RunFailed as exc:
            runs.errors.append(str(exc))
            log(f"[{n}/{len(order)}] {p.workload.name} {variant} rep {rep + 1}: FAILED\n{exc}")
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return results


def median_or_none(values: list[float], digits: int = 3) -> float | None:
    return round(statistics.median(values), digits) if values else None


def summarise(runs: Runs | None, *, with_rss: bool = True) -> dict[str, Any] | None:
    if runs is None or not runs.walls:
        return None
    out: dict[str, Any] = {"wall_s": median_or_none(runs.walls)}
    if with_rss:
        out["peak_rss_mb"] = median_or_none(runs.rss, 1)
    return out
