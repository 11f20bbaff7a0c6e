"""Lambda, locally: a template function's handler called in this process.

Each invocation is a cold start: the handler modules (everything imported from the code
directory) are imported afresh with the function's environment from the template, plus
what the Lambda runtime sets and what points boto3 at the embedded AWS. Invocations are
serialized (the environment is process-wide). The handler's stdout (Powertools' JSON logs
and metrics) goes to a log file, not to the terminal.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.server import patched_environ
from sandbox.stack import Function


@dataclass
class FakeContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function: str
    event: dict[str, Any]
    result: Any = None
    error: BaseException | None = None
    duration_s: float = 0.0


class LambdaRuntime:
    """Invokes the template's functions from ``code_dir`` (the handlers' asset root)."""

    def __init__(self, code_dir: Path, aws_env: dict[str, str], log_path: Path) -> None:
        self.code_dir = code_dir.resolve()
        self.aws_env = aws_env
        self.log_path = log_path
        self.lock = threading.RLock()
        self.invocations: list[Invocation] = []
        self._log: Any = None  # one stream for the runtime's life: loggers keep a reference
        # logical id -> extra variables (the API's functions reach S3 through the POST gate)
        self.overrides: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        """Close the log; handlers the functions attached to it write to stdout again."""
        if self._log is None:
            return
        # Powertools configures a service's logger once per process and keeps its handler:
        # point that handler back at the process's stdout rather than at a closed file.
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            for h in getattr(logger, "handlers", []):
                if isinstance(h, logging.StreamHandler) and h.stream is self._log:
                    h.setStream(sys.__stdout__)
        self._log.close()
        self._log = None

    def _log_stream(self) -> Any:
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", encoding="utf-8", buffering=1)
        return self._log

    def _purge(self) -> None:
        """Forget modules imported from the code directory: the next import is a cold start."""
        root = str(self.code_dir)
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None) or ""
            if path.startswith(root):
                del sys.modules[name]

    def env_for(self, fn: Function) -> dict[str, str]:
        region = self.aws_env.get("AWS_DEFAULT_REGION", "")
        return {
            **fn.environment,
            **self.aws_env,
            **self.overrides.get(fn.logical_id, {}),
            "AWS_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mib),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime or 'python'}",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": fn.handler,
            # No X-Ray daemon here: Powertools' tracer would try to reach one.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def invoke(self, fn: Function, event: dict[str, Any]) -> Invocation:
        """Call ``fn``'s handler with ``event``; the result or the exception is recorded."""
        module_name, _, attr = fn.handler.rpartition(".")
        if not module_name:
            raise ValueError(f"{fn.logical_id}: handler {fn.handler!r} is not module.function")
        record = Invocation(function=fn.logical_id, event=event)
        started = time.perf_counter()
        with self.lock, patched_environ(self.env_for(fn)):
            self._purge()
            sys.path.insert(0, str(self.code_dir))
            try:
                with contextlib.redirect_stdout(self._log_stream()):
                    module = importlib.import_module(module_name)
                    handler = getattr(module, attr)
                    context = FakeContext(fn.name, fn.arn, fn.memory_mib, fn.timeout_s)
                    record.result = handler(event, context)
            except Exception as exc:  # the invocation failed: recorded, like Lambda's error
                record.error = exc
            finally:
                sys.path.remove(str(self.code_dir))
                self._purge()
        record.duration_s = time.perf_counter() - started
        self.invocations.append(record)
        return record
