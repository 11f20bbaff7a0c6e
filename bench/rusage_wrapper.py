"""Run a command as this small process's child and record the child's own peak RSS.

    python -I -S rusage_wrapper.py OUT.json CMD [ARGS...]

Why a wrapper: Linux keeps a process's peak RSS across ``exec``, so a command
started straight from a large parent (the harness, or pytest) inherits the
parent's high-water mark. Forked from this tiny interpreter instead, the
command's ``ru_maxrss`` is its own (plus this wrapper's few MB at most).
Termination signals are passed on to the command, so stopping the harness
leaves no orphan behind. Standard library only, no site packages (``-I -S``).
"""

import json
import os
import signal
import sys


def main() -> None:
    out, cmd = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or dies
        try:
            os.execvp(cmd[0], cmd)  # noqa: S606 - the command to measure, no shell
        finally:
            os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        os.kill(pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - retried by Python itself (PEP 475)
            continue
    with open(out, "w") as fh:
        json.dump({"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, fh)
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
