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
