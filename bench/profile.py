"""``python -m bench profile``: where a rasterdrop predict process spends its time.

Two views of the same command (``python -m batch_image predict`` on a workload):

* **cores busy over time**: the process's CPU time (all threads, from
  ``/proc/<pid>/stat``) sampled every 0.1 s, shown per phase (start-up =
  imports + model load, predict, finalize = COGs + preview) from the run's
  ``summary.json``: how many of the machine's cores each phase keeps busy;
* **py-spy** (sampling profiler, every thread, native frames off): samples
  grouped into categories (imports, model load, model call, features, nodata
  mask, raster read, raster write, COG, preview) per thread, plus a
  speedscope file to open at speedscope.app.

Writes ``profile.md`` and ``profile.speedscope.json`` next to the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.harness import clean_env, command
from bench.workloads import DEFAULT_WORK, PLANS, REPO, prepare

TICK = os.sysconf("SC_CLK_TCK")

# the innermost frame that matches a rule names the sample's category
Rule = tuple[str, tuple[str, ...], str]  # (category, function names, file must contain)
RULES: tuple[Rule, ...] = (
    ("imports", ("_find_and_load", "_call_with_frames_removed"), ""),
    ("model load", ("load_estimator", "get_untrusted_types", "load"), "skops"),
    ("model load", ("load_estimator",), ""),
    ("preview", ("render_preview",), ""),
    ("COG finalize", ("to_cog", "cog_translate"), ""),
    ("model call", (), "/sklearn/"),
    ("features", ("compute_features",), ""),
    ("nodata mask", ("mask", "pixel_validity"), "batch_image/raster"),
    ("chunk bookkeeping", ("predict_chunk", "compute"), "batch_image"),
    ("raster read", ("read", "load"), ""),
    ("raster write", ("write", "store"), ""),
    ("engine loop", ("run",), "engine.py"),
)
WAITING = "waiting"
# a sample whose innermost Python frame is one of these is a thread blocked, not working
WAIT_FRAMES = (
    "_worker",
    "wait",
    "acquire",
    "result",
    "get",
    "sleep",
    "join",
    "_wait_for_tstate_lock",
)
CATEGORY_ORDER = (*dict.fromkeys(r[0] for r in RULES), WAITING)


def categorise(frames: list[tuple[str, str]]) -> str:
    """Category of one stack sample, ``frames`` outermost first as ``(name, file)``."""
    short = [(name.rsplit(".", 1)[-1], file) for name, file in frames]
    if short and short[-1][0] in WAIT_FRAMES:
        return WAITING
    for name, file in reversed(short):
        for label, names, where in RULES:
            if (not names or name in names) and where in file:
                return label
    return "other"


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def utilisation(cmd: list[str], env: dict[str, str]) -> tuple[float, list[tuple[float, float]]]:
    """Run ``cmd``; return its wall time and ``(t, cpu seconds so far)`` samples."""
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while proc.poll() is None:
        cpu = cpu_seconds(proc.pid)
        if cpu is not None:
            samples.append((time.perf_counter() - start, cpu))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, samples


def busy_between(samples: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Average cores busy in ``[t0, t1]`` from cumulative CPU samples."""
    inside = [(t, c) for t, c in samples if t0 <= t <= t1]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def pyspy(cmd: list[str], env: dict[str, str], out: Path, rate: int) -> dict[str, Counter]:
    """Record ``cmd`` with py-spy; samples per category per thread."""
    exe = str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        exe = shutil.which("py-spy") or "py-spy"
    subprocess.run(
        [exe, "record", "--idle", "-r", str(rate), "-f", "speedscope", "-o", str(out), "--", *cmd],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    doc = json.loads(out.read_text())
    frames = [(f["name"], f.get("file") or "") for f in doc["shared"]["frames"]]
    per_thread: dict[str, Counter] = defaultdict(Counter)
    for prof in doc["profiles"]:
        thread = prof["name"]
        scale = 1.0 if prof.get("unit") == "seconds" else 1.0 / rate  # weights → seconds
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            per_thread[thread][categorise([frames[i] for i in stack])] += weight * scale
    return per_thread


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench profile")
    parser.add_argument("--workload", default="scene-40mb")
    parser.add_argument("--plan", default="default", choices=sorted(PLANS))
    parser.add_argument("--rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--work", default=str(DEFAULT_WORK))
    parser.add_argument("--results", default=str(REPO / "bench" / "results"))
    parser.add_argument("--no-pyspy", action="store_true")
    args = parser.parse_args(argv)
    (workload,) = [w for w in PLANS[args.plan] if w.name == args.workload]
    p = prepare(workload, Path(args.work))
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    out = Path(args.work) / "runs-profile"
    shutil.rmtree(out, ignore_errors=True)
    cmd = command("rasterdrop", p, out)
    env = clean_env()

    wall, samples = utilisation(cmd, env)
    t = json.loads((out / "summary.json").read_text())["timings_s"]
    startup = wall - t["total"]
    phases = [
        ("start-up (imports, model load)", 0.0, startup),
        ("validate", startup, startup + t["validate"]),
        ("predict (windows)", startup + t["validate"], startup + t["validate"] + t["predict"]),
        ("finalize (COGs, preview)", wall - t["finalize"], wall),
    ]
    cores = os.cpu_count() or 1
    lines = [
        f"Profile of `python -m batch_image predict` on {workload.name} "
        f"({p.megapixels:.1f} Mpx), {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}.",
        "",
        f"Wall {wall:.2f} s; engine timings {t}.",
        "",
        f"| phase | seconds | share | cores busy (of {cores}) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, t0, t1 in phases:
        busy = busy_between(samples, t0, t1)
        lines.append(
            f"| {name} | {t1 - t0:.2f} | {(t1 - t0) / wall:.0%} | "
            f"{'–' if busy is None else f'{busy:.2f}'} |"
        )
    total_busy = samples[-1][1] / samples[-1][0] if samples and samples[-1][0] else 0.0
    lines += ["", f"Whole process: {total_busy:.2f} cores busy on average."]

    if not args.no_pyspy:
        shutil.rmtree(out, ignore_errors=True)
        speedscope = results / "profile.speedscope.json"
        per_thread = pyspy(cmd, env, speedscope, args.rate)
        labels = [*CATEGORY_ORDER, "other"]
        lines += [
            "",
            f"py-spy, {args.rate} samples/s of every thread (idle ones too: `waiting` is a thread "
            "blocked on a queue, lock or future), seconds per thread and category:",
            "",
            "| thread | " + " | ".join(labels) + " | total |",
            "| --- | " + " | ".join("---:" for _ in labels) + " | ---: |",
        ]
        totals: Counter = Counter()
        for thread, counts in sorted(per_thread.items(), key=lambda kv: -sum(kv[1].values())):
            totals.update(counts)
            lines.append(
                f"| {thread} | "
                + " | ".join(f"{counts[c]:.2f}" for c in labels)
                + f" | {sum(counts.values()):.2f} |"
            )
        lines.append(
            "| **all** | "
            + " | ".join(f"{totals[c]:.2f}" for c in labels)
            + f" | {sum(totals.values()):.2f} |"
        )
        lines += ["", f"Flame graph: `{speedscope.name}` (open at speedscope.app)."]
    shutil.rmtree(out, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    (results / "profile.md").write_text(text)
    print(text)
    return 0
