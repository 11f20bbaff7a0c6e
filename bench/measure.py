"""Run one command as a child process: wall time from the parent, peak RSS of the child.

Peak RSS comes from ``wait4``'s resource usage of that very child (the kernel's
``ru_maxrss``, the largest of the child and the descendants it waited for), so
it is exact per run, unlike ``RUSAGE_CHILDREN``, which only ever grows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RunFailed(RuntimeError):
    """A benchmarked command exited non-zero."""


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    peak_rss_mb: float
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
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise RunFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return Measurement(wall, usage.ru_maxrss / 1024, _last_json_line(stdout))


def python_cmd(*args: str) -> list[str]:
    """The current interpreter, unbuffered, with ``args``."""
    return [sys.executable, "-u", *args]
