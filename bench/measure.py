"""Run one command as a child process: wall time from the parent, peak RSS of the child.

Peak RSS is the kernel's ``ru_maxrss`` of that very child, collected by
:mod:`bench.rusage_wrapper` with ``wait4`` (exact per run, unlike
``RUSAGE_CHILDREN`` of a long-lived parent, which only ever grows; and not
inflated by this parent's own size, see the wrapper).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRAPPER = Path(__file__).with_name("rusage_wrapper.py")


class RunFailed(RuntimeError):
    """A benchmarked command exited non-zero."""


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    peak_rss_mb: float
    cpu_s: float  # user + system CPU seconds of the command, all its threads
    report: dict[str, Any] | None  # the last JSON line the command printed, if any


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_measured(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Measurement:
    """Run ``cmd`` to completion; raise :class:`RunFailed` with its stderr tail on failure."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        usage = Path(tmp) / "rusage.json"
        wrapped = [sys.executable, "-I", "-S", str(WRAPPER), str(usage), *cmd]
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, env=env, cwd=cwd)
        try:
            code = proc.wait()
        except BaseException:  # stopped: let the wrapper stop its command, then go
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        got = json.loads(usage.read_text()) if usage.is_file() else {}
    if code != 0:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise RunFailed(f"{' '.join(cmd)} exited {code}:\n{tail}")
    return Measurement(
        wall, got.get("maxrss_kb", 0) / 1024, got.get("cpu_s", 0.0), _last_json_line(stdout)
    )


def python_cmd(*args: str) -> list[str]:
    """The current interpreter, unbuffered, with ``args``."""
    return [sys.executable, "-u", *args]
