"""One root exception for the package, a few categorized subclasses.

Each carries what the job needs to report it: a category for ``error.json`` and
the notification, a short machine code, a one-line human message, details, and
the process exit code Batch acts on (DESIGN.md: 2 bad input, 3 model/config).
"""

from __future__ import annotations

from typing import Any, ClassVar

EXIT_OK = 0
EXIT_INVALID_INPUT = 2
EXIT_MODEL_ERROR = 3
EXIT_INTERNAL = 1
#: Exit codes of runs that end without a result of their own and without an email: the
#: job definition's retry strategy treats both as final (cdk/compute.py), and the notifier
#: sends nothing for them (handlers/rasterdrop_notify/decisions.py). Exit 0 therefore always
#: means "summary.json of this input version exists".
EXIT_SUPERSEDED = 4  # a newer version of the input exists: its own job and email cover the path
EXIT_IN_PROGRESS = 5  # a live job holds this run's lease: that job computes it and emails


class RasterdropError(Exception):
    """Root of every error rasterdrop raises on purpose."""

    category: ClassVar[str] = "internal"
    exit_code: ClassVar[int] = EXIT_INTERNAL

    def __init__(self, message: str, *, code: str = "error", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details

    @property
    def final(self) -> bool:
        """Whether retrying the same job cannot help (bad input, model or configuration)."""
        return self.exit_code != EXIT_INTERNAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }


class InvalidInputError(RasterdropError):
    """The input (raster, key, manifest, labels) is wrong; retrying will not help."""

    category = "invalid_input"
    exit_code = EXIT_INVALID_INPUT


class ModelError(RasterdropError):
    """The model or the configuration is missing, untrusted or incompatible."""

    category = "model_error"
    exit_code = EXIT_MODEL_ERROR


class ConfigError(RasterdropError):
    """The job's configuration (environment, model URI, prefixes) is wrong; exit 3.

    Its category is ``model_error`` on purpose: that is the notification's "the model
    or the configuration is the problem, not your file" (docs/contracts.md), so the
    notifier needs no new category; the code tells the two apart.
    """

    category = "model_error"
    exit_code = EXIT_MODEL_ERROR

    def __init__(self, message: str, *, code: str = "config_invalid", **details: Any) -> None:
        super().__init__(message, code=code, **details)


class InternalError(RasterdropError):
    """Something broke that a retry may fix (I/O, out of space, a bug)."""

    category = "internal"
    exit_code = EXIT_INTERNAL


class ScratchFull(InternalError):
    """The job's scratch disk has not enough room now (other jobs on the instance use it):
    a retry, on another instance or later, may help. Category ``scratch_full`` so the
    email says what can help (the operators' job size or instance volume), not "upload
    again"."""

    category = "scratch_full"


class ScratchTooSmall(ScratchFull):
    """The input needs more scratch space than the whole volume holds: no retry can help
    (exit 3, final, like a configuration error: the deployment's volume is too small)."""

    exit_code = EXIT_MODEL_ERROR
