"""The client's errors: each carries the CLI's exit code (0 succeeded is no error)."""

from __future__ import annotations


class ClientError(Exception):
    """Anything else: network, server errors after retries, unexpected answers (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InvalidInput(ClientError):
    """The file or request was refused (bad name, too large, rejected by the job): exit 2."""

    exit_code = 2


class NotAuthorized(ClientError):
    """No token, a wrong or a revoked one (401/403): exit 4."""

    exit_code = 4


class OverQuota(ClientError):
    """The tenant's daily upload quota is used up (429 quota_exceeded): exit 5."""

    exit_code = 5


class Failed(ClientError):
    """The job ran and failed (exit 1; a failure the job blames on the input is exit 2)."""

    def __init__(self, message: str, *, category: str = "", code: str = "") -> None:
        super().__init__(message, code=code)
        self.category = category
        if category == "invalid_input":
            self.exit_code = 2


class TimedOut(ClientError):
    """``wait`` ran out of time (exit 1)."""
