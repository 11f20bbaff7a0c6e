"""``python -m bench variants``: the engine's parallel schemes and window sizes, compared.

Each variant is a whole process calling :func:`batch_image.predict.pipeline.predict_file`
with its own :class:`~batch_image.predict.pipeline.PredictOptions` (and environment),
repetitions interleaved like the main harness. Writes ``variants.json`` and
``variants.md`` next to the main results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import clean_env
from bench.measure import RunFailed, python_cmd, run_measured
from bench.workloads import DEFAULT_WORK, PLANS, REPO, prepare


@dataclass(frozen=True)
class EngineVariant:
    label: str
    parallel: str = "windows"
    target_pixels: int = 1 << 18
    env: tuple[tuple[str, str], ...] = ()


VARIANTS = [
    *(
        EngineVariant(f"{scheme} {px >> 10}k px", scheme, px)
        for scheme in ("windows", "model")
        for px in (1 << 16, 1 << 18, 1 << 20, 1 << 22)
    ),
    EngineVariant("windows 256k px, GDAL_CACHEMAX=64", env=(("GDAL_CACHEMAX", "64"),)),
]


@dataclass
class Collected:
    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    model_s: list[float] = field(default_factory=list)
    finalize_s: list[float] = field(default_factory=list)
    startup_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)


def child(argv: list[str]) -> None:
    """Run one prediction in this process and print its summary timings as JSON."""
    from batch_image.predict.pipeline import PredictOptions, predict_file

    scene, model, out, parallel, target = argv
    summary = predict_file(
        Path(scene),
        Path(model),
        Path(out),
        PredictOptions(parallel=parallel, target_pixels=int(target)),
    )
    print(json.dumps({**summary["timings_s"], "windows": summary["windows"]}))


def main(argv: list[str]) -> int:
    if argv[:1] == ["child"]:
        child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench variants")
    parser.add_argument("--workload", default="scene-40mb")
    parser.add_argument("--plan", default="default", choices=sorted(PLANS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="+", help="variant labels to run")
    parser.add_argument("--work", default=str(DEFAULT_WORK))
    parser.add_argument("--results", default=str(REPO / "bench" / "results"))
    args = parser.parse_args(argv)
    (workload,) = [w for w in PLANS[args.plan] if w.name == args.workload]
    p = prepare(workload, Path(args.work))
    variants = [v for v in VARIANTS if not args.only or v.label in args.only]
    scratch = Path(args.work) / "runs-variants"
    got: dict[str, Collected] = {v.label: Collected() for v in variants}
    base = clean_env()
    for rep in range(args.reps):
        shift = rep % len(variants)
        for v in variants[shift:] + variants[:shift]:
            out = scratch / "out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = python_cmd(
                "-m", "bench", "variants", "child", str(p.scene), str(p.model), str(out),
                v.parallel, str(v.target_pixels),
            )  # fmt: skip
            try:
                m = run_measured(cmd, env={**base, **dict(v.env)}, cwd=REPO)
            except RunFailed as exc:
                print(f"{v.label} rep {rep + 1}: FAILED {exc}", flush=True)
                continue
            t = m.report or {}
            c = got[v.label]
            c.walls.append(m.wall_s)
            c.rss.append(m.peak_rss_mb)
            c.cpu_s.append(m.cpu_s)
            c.model_s.append(float(t.get("model", 0.0)))
            c.finalize_s.append(float(t.get("finalize", 0.0)))
            c.startup_s.append(m.wall_s - float(t.get("total", 0.0)))
            print(
                f"{v.label} rep {rep + 1}: {m.wall_s:.2f} s, cpu {m.cpu_s:.1f} s, "
                f"peak {m.peak_rss_mb:.0f} MB, "
                f"{t.get('windows')} windows, finalize {t.get('finalize')} s",
                flush=True,
            )
    shutil.rmtree(scratch, ignore_errors=True)
    med = statistics.median
    rows = [
        {
            "variant": label,
            "wall_s": round(med(c.walls), 3),
            "peak_rss_mb": round(med(c.rss), 1),
            "model_cpu_s": round(med(c.model_s), 3),
            "finalize_s": round(med(c.finalize_s), 3),
            "startup_s": round(med(c.startup_s), 3),
            "cpu_s": round(med(c.cpu_s), 2),
            "reps": len(c.walls),
        }
        for label, c in got.items()
        if c.walls
    ]
    rows.sort(key=lambda r: r["wall_s"])
    doc = {
        "workload": workload.name,
        "megapixels": round(p.megapixels, 3),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "variants": rows,
    }
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / "variants.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"Engine variants on {workload.name} ({p.megapixels:.1f} Mpx), {args.reps} "
        f"interleaved repetitions, medians, {doc['date']}; fastest first.",
        "",
        "| variant | wall s | CPU s | peak MB | model thread-s | finalize s | start-up s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {r['variant']} | {r['wall_s']:.2f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['model_cpu_s']:.1f} | {r['finalize_s']:.2f} | {r['startup_s']:.2f} |"
            for r in rows
        ),
        "",
        "model thread-s: seconds spent in model calls summed over the predicting threads; "
        "CPU s: user + system seconds of the process (less sensitive to other load than wall); "
        "start-up: process wall minus the engine's own total (imports, model load, exit).",
    ]
    (results / "variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
