"""The fault harness: the whole flow through a bad day, and a count of what survived.

``python -m bench faults`` (and, small, ``tests/e2e/test_fault_harness.py``) runs the
sandbox with its jobs and handlers behind :class:`~sandbox.faults.proxy.FaultProxy` (S3
answering 503 SlowDown and resetting connections before and after it acts; SNS answering
500 and losing Publish responses) and drives four scenarios through it:

* ``burst``: many uploads at once (every twentieth key uploaded twice in a row, so its
  first version is superseded), at the job concurrency the sandbox allows;
* ``reuse``: some of those keys uploaded again with the same bytes (same model);
* ``races``: every upload's S3 event delivered three times, and every job's final Batch
  event twice, so jobs and notifications of the same input version race;
* ``kill -9``: every job's first attempt SIGKILLed after a random number of its S3 writes
  (lease, checkpoints, results, ``summary.json``), then Batch's retry.

Then, per input version, it checks what a user would: exactly one email for the latest
version of each key (none for a superseded one), a result whose pixels equal a local
prediction of the same bytes, ``summary.json`` naming that version, and nothing left
under ``partial/``. A duplicate email is "in the window" when its notification marker
counts a lost Publish response (``ambiguous_publishes``, see ``rasterdrop_notify.markers``):
the one duplicate the design cannot close, counted, never hidden.
"""

from __future__ import annotations

import json
import re
import resource
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.faults.proxy import FaultPlan, Shares

Echo = Callable[[str], None]
DEFAULT_PLAN = FaultPlan(
    s3=Shares(error=0.03, drop_before=0.01, drop_after=0.01),
    sns=Shares(error=0.03, drop_after=0.02),
    seed=19,
)
SCENE_SIZE = (40, 32)  # pixels: small inputs, so the burst finishes in minutes
SCENES = 4


@dataclass
class Expected:
    """One input version and what must come of it."""

    scenario: str
    key: str
    version: str | None
    scene: int  # index of the bytes (their reference pixels)
    emails: int  # 1, or 0 for a superseded version
    subject: str = "ready"  # "ready" or "ready (reused)"


@dataclass
class Row:
    scenario: str
    tried: int = 0
    survived: int = 0
    lost: int = 0
    duplicated: int = 0
    in_window: int = 0  # duplicates explained by a counted lost Publish response
    wrong_pixels: int = 0
    emails_per_input: dict[str, int] = field(default_factory=dict)  # "emails" → inputs
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    rows: list[Row]
    plan: str
    faults: dict[str, int]
    kills: int
    peak_rss_mb: float  # the sandbox process (moto, handlers, bus)
    peak_job_rss_mb: float  # the largest job process
    leftover_partials: int
    seconds: float

    @property
    def ok(self) -> bool:
        bad = sum(r.lost + r.wrong_pixels + (r.duplicated - r.in_window) for r in self.rows)
        return bad == 0 and self.leftover_partials == 0

    def markdown(self) -> str:
        lines = [
            "| scenario | tried | survived | lost | duplicated (in window) | wrong pixels "
            "| emails per input version |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in self.rows:
            per = ", ".join(f"{n} email(s): {c}" for n, c in sorted(r.emails_per_input.items()))
            lines.append(
                f"| {r.scenario} | {r.tried} | {r.survived} | {r.lost} | "
                f"{r.duplicated} ({r.in_window}) | {r.wrong_pixels} | {per} |"
            )
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        lines += [
            "",
            f"Faults planned: {self.plan}.",
            f"Faults injected: {faults}; kill -9: {self.kills} attempt(s).",
            f"Sandbox peak memory {self.peak_rss_mb:.0f} MB (largest job process "
            f"{self.peak_job_rss_mb:.0f} MB); leftover partial/ objects: "
            f"{self.leftover_partials}; {self.seconds:.0f} s in all.",
            f"Verdict: {'PASS' if self.ok else 'FAIL'} (0 lost, 0 wrong pixels, one email per "
            "input version except the counted lost-Publish-response window).",
        ]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: kilobytes


class Harness:
    def __init__(
        self,
        work: Path,
        *,
        burst: int = 200,
        reuse: int = 10,
        races: int = 10,
        kills: int = 10,
        plan: FaultPlan = DEFAULT_PLAN,
        echo: Echo = print,
    ) -> None:
        self.work = Path(work)
        self.counts = {"burst": burst, "reuse": reuse, "races": races, "kill -9": kills}
        self.plan, self.echo = plan, echo
        self.expected: list[Expected] = []
        self.refs: list[np.ndarray] = []
        self.scenes: list[Path] = []

    # ------------------------------------------------------------------ the run
    def run(self) -> Report:
        from sandbox.core import Options, Sandbox

        started = time.perf_counter()
        self.work.mkdir(parents=True, exist_ok=True)
        with Sandbox(Options(work_dir=self.work / "sandbox", fault_plan=self.plan)) as sb:
            self._prepare(sb)
            sb.proxy.arm()
            self._burst(sb)
            self._reuse(sb)
            self._races(sb)
            kills = self._kills(sb)
            sb.proxy.arm(False)
            rows = self._evaluate(sb)
            faults = {f"{s} {k}": n for (s, k), n in sorted(sb.proxy.injected.items())}
            leftovers = len(sb.keys(sb.job_setting("predict", "RASTERDROP_PARTIAL_PREFIX")))
        return Report(
            rows=rows,
            plan=self.plan.describe(),
            faults=faults,
            kills=kills,
            peak_rss_mb=_peak_mb(resource.RUSAGE_SELF),
            peak_job_rss_mb=_peak_mb(resource.RUSAGE_CHILDREN),
            leftover_partials=leftovers,
            seconds=time.perf_counter() - started,
        )

    def _prepare(self, sb: Any) -> None:
        """A small model trained through the flow, small scenes and their reference pixels."""
        from batch_image.predict.pipeline import PredictOptions, predict_file
        from batch_image.synthetic.scene import make_sample
        from sandbox.demo import prepare_data, train_model

        data = prepare_data(self.work, None, None, (96, 96), self.echo)
        version = train_model(sb, data, 8, self.echo)
        model = self.work / "model"
        prefix = f"{sb.prefix('models')}{sb.config.model_name}/{version}/"
        for key in sb.keys(prefix):
            sb.download(key, model / key[len(prefix) :])
        import rasterio

        for i in range(SCENES):
            paths = make_sample(
                self.work / "scenes" / str(i), *SCENE_SIZE, seed=100 + i, compress="deflate"
            )
            out = self.work / "reference" / str(i)
            predict_file(Path(paths.scene), model, out, PredictOptions(workers=1))
            with rasterio.open(out / "classes.tif") as src:
                self.refs.append(src.read(1))
            self.scenes.append(Path(paths.scene))

    def _upload(self, sb: Any, scenario: str, key: str, scene: int, **kw: Any) -> dict[str, Any]:
        event = sb.upload(self.scenes[scene], key)
        version = event["detail"]["object"].get("version-id")
        self.expected.append(Expected(scenario, key, version, scene, 1, **kw))
        return event

    def _settle(self, sb: Any, what: str) -> None:
        t = time.perf_counter()
        sb.run_until_idle(timeout=3600)
        self.echo(f"  {what}: settled in {time.perf_counter() - t:.0f} s "
                  f"(sandbox peak {_peak_mb(resource.RUSAGE_SELF):.0f} MB)")  # fmt: skip

    def _burst(self, sb: Any) -> None:
        n = self.counts["burst"]
        for i in range(n):
            key = f"{sb.prefix('input')}t{i % 5}/burst/f{i:03d}.tif"
            if i % 20 == 19:  # uploaded twice in a row: the first version is superseded
                self._upload(sb, "burst", key, (i + 1) % SCENES)
                self.expected[-1].emails = 0
            self._upload(sb, "burst", key, i % SCENES)
        self._settle(sb, f"burst of {n} uploads")

    def _reuse(self, sb: Any) -> None:
        done = [e for e in self.expected if e.scenario == "burst" and e.emails == 1]
        for e in done[: self.counts["reuse"]]:
            self._upload(sb, "reuse", e.key, e.scene, subject="ready (reused)")
        self._settle(sb, f"{self.counts['reuse']} re-uploads of the same bytes")

    def _races(self, sb: Any) -> None:
        original = sb.runner.on_state

        def twice(job: Any) -> None:  # every final Batch event delivered twice
            original(job)
            if job.status in ("SUCCEEDED", "FAILED"):
                original(job)

        sb.runner.on_state = twice
        try:
            for j in range(self.counts["races"]):
                event = self._upload(sb, "races", f"{sb.prefix('input')}race/r{j:02d}.tif",
                                     j % SCENES)  # fmt: skip
                sb.put_event(event)  # EventBridge delivers at least once: twice more
                sb.put_event(event)
            self._settle(sb, f"{self.counts['races']} uploads, every event thrice")
        finally:
            sb.runner.on_state = original

    def _kills(self, sb: Any) -> int:
        before = len(sb.jobs)
        sb.faults[1] = {
            "RASTERDROP_SANDBOX_KILL_AFTER_PUTS": "random:10",
            "RASTERDROP_SANDBOX_KILL_KEYS": "*",
            "RASTERDROP_SANDBOX_KILL_SEED": str(self.plan.seed),
        }
        try:
            for j in range(self.counts["kill -9"]):
                self._upload(sb, "kill -9", f"{sb.prefix('input')}killed/k{j:02d}.tif", j % SCENES)
            self._settle(sb, f"{self.counts['kill -9']} uploads, first attempts killed")
        finally:
            sb.faults.pop(1, None)
        return sum(
            1 for job in sb.jobs[before:] for a in job.attempts if a.outcome.exit_code == 137
        )

    # ------------------------------------------------------------------ the count
    def _evaluate(self, sb: Any) -> list[Row]:
        emails = _emails_by_input(sb)
        markers = _markers_by_input(sb)
        rows: dict[str, Row] = {}
        for e in self.expected:
            row = rows.setdefault(e.scenario, Row(e.scenario))
            row.tried += 1
            got = emails.get((e.key, e.version), [])
            row.emails_per_input[str(len(got))] = row.emails_per_input.get(str(len(got)), 0) + 1
            extra = max(0, len(got) - e.emails)
            if extra:
                row.duplicated += 1
                if markers.get((e.key, e.version), 0) >= extra:
                    row.in_window += 1
                else:
                    row.notes.append(f"{e.key} {e.version}: {len(got)} emails")
            if e.emails == 0:
                row.survived += 0 if extra else 1
                continue
            ok_mail = [m for m in got if m.subject.endswith(f" {e.subject}")]
            if not ok_mail:
                row.lost += 1
                row.notes.append(f"{e.key} {e.version}: {[m.subject for m in got]}")
                continue
            verdict = self._result_ok(sb, e)
            if verdict == "wrong":
                row.wrong_pixels += 1
            elif verdict == "missing":
                row.lost += 1
            elif not extra:
                row.survived += 1
        return list(rows.values())

    def _result_ok(self, sb: Any, e: Expected) -> str:
        import rasterio

        out = sb.prefix("output") + e.key[len(sb.prefix("input")) :].rsplit(".", 1)[0] + "/"
        try:
            summary = json.loads(
                sb.s3.get_object(Bucket=sb.bucket, Key=out + "summary.json")["Body"].read()
            )
        except Exception:
            return "missing"
        latest = [x for x in self.expected if x.key == e.key][-1]
        if latest is not e:  # a later upload of the key owns the output now
            return "ok"
        if summary.get("input", {}).get("version_id") != e.version:
            return "missing"
        dest = self.work / "check" / out
        with rasterio.open(sb.download(out + "classes.tif", dest / "classes.tif")) as src:
            pixels = src.read(1)
        return "ok" if np.array_equal(pixels, self.refs[e.scene]) else "wrong"


def _emails_by_input(sb: Any) -> dict[tuple[str, str | None], list[Any]]:
    """Each SNS message under the input version its body names."""
    out: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for m in sb.messages():
        lines = m.body.splitlines()
        for i, line in enumerate(lines):
            found = re.match(r"^Input\s+s3://[^/]+/(.+)$", line)
            if found:
                after = lines[i + 1] if i + 1 < len(lines) else ""
                version = re.match(r"^\s+version (\S+)$", after)
                out[(found.group(1).strip(), version.group(1) if version else None)].append(m)
                break
    return out


def _markers_by_input(sb: Any) -> dict[tuple[str, str | None], int]:
    """Counted lost Publish responses per input version (the notification markers)."""
    counts: Counter[tuple[str, str | None]] = Counter()
    for key in sb.keys("notified/"):
        doc = json.loads(sb.s3.get_object(Bucket=sb.bucket, Key=key)["Body"].read())
        counts[(doc.get("key"), doc.get("input_version"))] += int(
            doc.get("ambiguous_publishes") or 0
        )
    return dict(counts)


def write_report(report: Report, results: Path) -> tuple[Path, Path]:
    results.mkdir(parents=True, exist_ok=True)
    md, js = results / "faults-latest.md", results / "faults-latest.json"
    md.write_text("# Fault harness (`python -m bench faults`)\n\n" + report.markdown())
    js.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return md, js
