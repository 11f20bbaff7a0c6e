"""What an exception nobody categorized becomes in a job's failure report."""

from __future__ import annotations

from batch_image.errors import InternalError


def as_internal(exc: BaseException) -> InternalError:
    """``internal``/``unexpected`` with ``TypeName: first line`` (at most 300 characters):
    the report names the failure without a traceback, and exit 1 lets Batch retry."""
    text = str(exc)
    first_line = text.splitlines()[0][:300] if text else ""
    return InternalError(f"{type(exc).__name__}: {first_line}", code="unexpected")
