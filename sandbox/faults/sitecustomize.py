"""Fault injection for sandbox tests, loaded only into a job attempt the test chose.

``RASTERDROP_SANDBOX_KILL_AFTER_PUTS=N`` with ``RASTERDROP_SANDBOX_KILL_KEYS=<glob>``
(default ``partial/*``): after the N-th successful S3 write (PutObject /
CompleteMultipartUpload) of a key matching the glob, the process SIGKILLs itself, as a
reclaimed spot instance would end it: no cleanup, no exit handler, whatever it was doing
half done. The job code is not changed.
"""

import os
import signal

_LIMIT = int(os.environ.get("RASTERDROP_SANDBOX_KILL_AFTER_PUTS", "0") or 0)
_KEYS = os.environ.get("RASTERDROP_SANDBOX_KILL_KEYS", "partial/*")

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
