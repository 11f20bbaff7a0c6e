"""How a job's failure is recorded: once, when no retry follows, whatever raised.

:func:`as_internal` is what an exception nobody categorized becomes;
:func:`failures_recorded` is the whole rule around a job's body, for the predict
and the train job alike (each passes how it writes its failure document). Final errors (bad
input, model or configuration: retrying the same job cannot help) are recorded
at once. Internal errors are retried by Batch, so
they are recorded only on the last attempt (:meth:`Settings.is_last_attempt`):
a retry that then succeeds leaves no stale ``error.json`` behind, and a job that
finally fails always leaves one. Any other exception is a bug or an
environmental fault: it is reported as :class:`InternalError` (code
``unexpected``), so the notification still has a category and a reason.
``BaseException`` that is not an ``Exception`` (SIGTERM's ``Terminated``,
``KeyboardInterrupt``) is never recorded: the process is being stopped and a
retry follows.

A full disk is not a bug: ``ENOSPC`` (an ``OSError`` with that errno, or GDAL's
"No space left on device" text) becomes :class:`~batch_image.errors.ScratchFull`
(category ``scratch_full``), so the email names what can help (a larger instance
volume or job size) instead of "upload again".
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from batch_image.errors import InternalError, RasterdropError, ScratchFull
from batch_image.jobs.settings import Settings

log = logging.getLogger(__name__)

#: Writes the failure document (``error.json``) for one error.
Recorder = Callable[[RasterdropError], None]


NO_SPACE_TEXT = "No space left on device"


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a full disk."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if NO_SPACE_TEXT in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def as_internal(exc: BaseException) -> InternalError:
    """``internal``/``unexpected`` with ``TypeName: first line`` (at most 300 characters):
    the report names the failure without a traceback, and exit 1 lets Batch retry.
    A full disk is ``scratch_full``/``disk_full`` (retried: another instance may have room)."""
    if disk_full(exc):
        return ScratchFull(
            "the job's scratch disk filled up while processing the file", code="disk_full"
        )
    text = str(exc)
    first_line = text.splitlines()[0][:300] if text else ""
    return InternalError(f"{type(exc).__name__}: {first_line}", code="unexpected")


def retry_follows(exc: RasterdropError, settings: Settings) -> bool:
    """Whether Batch will run this job again after ``exc`` (so nothing is recorded)."""
    return not exc.final and not settings.is_last_attempt()


def record_unless_retried(record: Recorder, exc: RasterdropError, settings: Settings) -> None:
    """Record ``exc`` unless a retry follows; best effort: the exit code still tells Batch."""
    if retry_follows(exc, settings):
        log.warning("internal error on attempt %s: a retry follows", settings.attempt)
        return
    try:
        record(exc)
    except Exception:
        log.exception("could not record the failure")


@contextmanager
def failures_recorded(record: Recorder, settings: Settings) -> Iterator[None]:
    """Run the body; on failure record it (see the module docstring) and re-raise.

    A :class:`RasterdropError` is re-raised as it is; any other ``Exception`` as
    the :class:`InternalError` that was recorded, chained to the original.
    """
    try:
        yield
    except RasterdropError as exc:
        record_unless_retried(record, exc, settings)
        raise
    except Exception as exc:
        log.exception("internal error")
        err = as_internal(exc)
        record_unless_retried(record, err, settings)
        raise err from exc
