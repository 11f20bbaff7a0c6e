"""Fault injection for sandbox tests, loaded only into a job attempt the test chose.

``RASTERDROP_SANDBOX_KILL_AFTER_PUTS=N`` with ``RASTERDROP_SANDBOX_KILL_KEYS=<glob>``
(default ``partial/*``): after the N-th successful S3 write (PutObject /
CompleteMultipartUpload) of a key matching the glob, the process SIGKILLs itself, as a
reclaimed spot instance would end it: no cleanup, no exit handler, whatever it was doing
half done. ``N`` may be ``random:MAX``: a point drawn from 1..MAX, seeded by the Batch job
id and ``RASTERDROP_SANDBOX_KILL_SEED``, so every job dies somewhere else and a run can be
repeated (a job that makes fewer writes than its point is not killed). The job code is
not changed.
"""

import os
import signal

_SPEC = os.environ.get("RASTERDROP_SANDBOX_KILL_AFTER_PUTS", "0") or "0"
_KEYS = os.environ.get("RASTERDROP_SANDBOX_KILL_KEYS", "partial/*")


def _limit(spec: str) -> int:
    if spec.startswith("random:"):
        import random

        seed = f"{os.environ.get('RASTERDROP_SANDBOX_KILL_SEED', '')}/"
        seed += os.environ.get("AWS_BATCH_JOB_ID", "")
        return random.Random(seed).randint(1, max(1, int(spec.split(":", 1)[1])))  # noqa: S311
    return int(spec)


_LIMIT = _limit(_SPEC)

if _LIMIT > 0:
    import fnmatch
    import threading

    from botocore.client import BaseClient

    _lock = threading.Lock()
    _count = [0]
    _original = BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        result = _original(self, operation_name, api_params)
        if operation_name in ("PutObject", "CompleteMultipartUpload") and fnmatch.fnmatchcase(
            str(api_params.get("Key", "")), _KEYS
        ):
            with _lock:
                _count[0] += 1
                if _count[0] >= _LIMIT:
                    os.kill(os.getpid(), signal.SIGKILL)
        return result

    BaseClient._make_api_call = _make_api_call
