"""``python -m bench``: run a plan and write the results; ``variants`` and ``profile`` too."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy

from bench.harness import pyspatialml_status, run_plan
from bench.report import checks, document, machine, markdown, update_readme
from bench.workloads import DEFAULT_WORK, PLANS, REPO, VARIANTS, prepare

DEFAULT_RESULTS = REPO / "bench" / "results"


def _log(msg: str) -> None:
    print(msg, flush=True)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    plan = PLANS[args.plan]
    if args.only:
        plan = [w for w in plan if w.name in args.only]
        if not plan:
            _log(f"no workload of plan {args.plan!r} is named {args.only}")
            return 2
    if args.reps:
        plan = [replace(w, reps=args.reps) for w in plan]
    work = Path(args.work)
    results_dir = Path(args.results)
    notes = [f"{w.name}: {w.note}" for w in plan if w.note]
    skip = set(args.skip or ())
    wanted = {v for w in plan for v in w.variants} - skip
    if "pyspatialml" in wanted:
        why = pyspatialml_status(Path(args.peer_site))
        if why:
            skip.add("pyspatialml")
            notes.append(f"pyspatialml: not measured (null): it does not import here: {why}")
        elif not hasattr(numpy, "find_common_type"):
            notes.append(
                "pyspatialml: 0.21 (0.22 pins numpy<2) calls `np.find_common_type`, removed in "
                f"NumPy 2.0 (here {numpy.__version__}); measured with that one function put "
                "back (`np.result_type`), see bench/pyspatialml_script.py"
            )
    _log(f"preparing {len(plan)} workload(s) under {work} ...")
    prepared = []
    for w in plan:
        t0 = time.perf_counter()
        prepared.append(prepare(w, work))
        _log(f"  {w.name}: ready in {time.perf_counter() - t0:.1f} s")
    if args.prepare_only:
        return 0
    for p in prepared:  # warm the page cache: every variant reads a cached file
        with open(p.scene, "rb") as fh:
            while fh.read(1 << 24):
                pass
    scratch = work / "runs"
    scratch.mkdir(parents=True, exist_ok=True)
    results = run_plan(prepared, scratch, skip=skip, peer_site=Path(args.peer_site), log=_log)
    shutil.rmtree(scratch, ignore_errors=True)
    mach = machine()
    doc = document(prepared, results, mach)
    found = checks(doc)
    failures = [
        f"{name} {variant}: {len(runs.errors)} failed run(s): {runs.errors[0].splitlines()[-1]}"
        for name, by_variant in results.items()
        for variant, runs in by_variant.items()
        if runs.errors
    ]
    notes += failures
    how = f"--plan {args.plan}" + (f" --reps {args.reps}" if args.reps else "")
    how += f" --only {' '.join(args.only)}" if args.only else ""
    how += f" --skip {' '.join(sorted(args.skip))}" if args.skip else ""
    table = markdown(doc, prepared, notes, found, how)
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    payload = json.dumps(doc, indent=2) + "\n"
    (results_dir / "latest.json").write_text(payload)
    (results_dir / f"{stamp}.json").write_text(payload)
    (results_dir / "latest.md").write_text(table)
    (results_dir / f"{stamp}.md").write_text(table)
    raw = {
        "plan": args.plan,
        "machine": mach,
        "date": doc["date"],
        "notes": notes,
        "runs": {name: {v: vars(r) for v, r in rs.items()} for name, rs in results.items()},
    }
    (results_dir / "latest-runs.json").write_text(json.dumps(raw, indent=2) + "\n")
    if not args.no_readme and results_dir.resolve() == DEFAULT_RESULTS.resolve():
        update_readme(REPO / "README.md", table)
    _log("")
    _log(table)
    for c in found:
        _log(c.line())
    _log(f"bench finished in {time.perf_counter() - started:.0f} s → {results_dir}/latest.json")
    return 1 if failures else 0


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_measured, which stops the child


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    parser.set_defaults(command="run")
    for p in (parser, sub.add_parser("run", help="run a plan (the default)")):
        p.add_argument("--plan", choices=sorted(PLANS), default="default")
        p.add_argument("--only", nargs="+", metavar="WORKLOAD", help="only these workloads")
        p.add_argument("--skip", nargs="+", choices=VARIANTS, help="leave out these variants")
        p.add_argument("--reps", type=int, default=0, help="override every workload's reps")
        p.add_argument("--work", default=str(DEFAULT_WORK), help="cache of scenes and models")
        p.add_argument("--results", default=str(DEFAULT_RESULTS))
        p.add_argument(
            "--peer-site",
            default=str(DEFAULT_WORK / "peer"),
            help="where pyspatialml is installed (pip --target)",
        )
        p.add_argument("--no-readme", action="store_true", help="leave README.md alone")
        p.add_argument("--prepare-only", action="store_true", help="generate inputs, run nothing")
    sub.add_parser("variants", add_help=False, help="engine schemes and window sizes")
    sub.add_parser("profile", add_help=False, help="where rasterdrop's time goes")
    sub.add_parser("faults", add_help=False, help="the fault harness: bursts, races, kills")
    sub.add_parser("sharded", add_help=False, help="a scene unsharded vs sharded (S3 job)")
    sub.add_parser("active", add_help=False, help="review points vs random points, 3 rounds")
    args, rest = parser.parse_known_args(argv)
    if args.command == "variants":
        from bench.engine_variants import main as variants_main

        sys.exit(variants_main(rest))
    if args.command == "faults":
        from bench.faults import main as faults_main

        sys.exit(faults_main(rest))
    if args.command == "sharded":
        from bench.sharded import main as sharded_main

        sys.exit(sharded_main(rest))
    if args.command == "active":
        from bench.active import main as active_main

        sys.exit(active_main(rest))
    if args.command == "profile":
        from bench.profile import main as profile_main

        sys.exit(profile_main(rest))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    sys.exit(run(args))
