"""jobs.failures: a failure is recorded once, when no retry follows, whatever raised."""

from __future__ import annotations

import pytest

from batch_image.errors import ConfigError, InternalError, InvalidInputError, RasterdropError
from batch_image.jobs.failures import as_internal, failures_recorded
from batch_image.jobs.settings import Settings

MIDDLE = Settings(attempt=1, max_attempts=3)
LAST = Settings(attempt=3, max_attempts=3)
UNKNOWN = Settings()  # local run: no AWS_BATCH_JOB_ATTEMPT


def _run(exc: BaseException, settings: Settings) -> tuple[list[RasterdropError], BaseException]:
    recorded: list[RasterdropError] = []
    with pytest.raises(BaseException) as info, failures_recorded(recorded.append, settings):
        raise exc
    return recorded, info.value


@pytest.mark.parametrize("settings", [MIDDLE, LAST, UNKNOWN])
@pytest.mark.parametrize("exc", [InvalidInputError("bad"), ConfigError("env")])
def test_final_errors_are_recorded_on_every_attempt(exc, settings) -> None:
    recorded, raised = _run(exc, settings)
    assert recorded == [exc] and raised is exc


def test_internal_errors_wait_for_the_last_attempt() -> None:
    exc = InternalError("disk", code="scratch_full")
    assert _run(exc, MIDDLE)[0] == []
    assert _run(exc, LAST)[0] == [exc]
    assert _run(exc, UNKNOWN)[0] == [exc]  # cannot know a retry follows: record


def test_any_other_exception_is_recorded_as_internal_unexpected() -> None:
    recorded, raised = _run(NotADirectoryError("[Errno 20] Not a directory: 'x'\nmore"), LAST)
    assert isinstance(raised, InternalError) and raised.code == "unexpected"
    assert raised.message == "NotADirectoryError: [Errno 20] Not a directory: 'x'"
    assert isinstance(raised.__cause__, NotADirectoryError)
    assert recorded == [raised]
    assert _run(ValueError("x"), MIDDLE)[0] == []  # internal: a retry follows


def test_a_stop_is_never_recorded() -> None:
    class Terminated(BaseException):
        pass

    recorded, raised = _run(Terminated(), LAST)
    assert recorded == [] and isinstance(raised, Terminated)


def test_recording_is_best_effort() -> None:
    def broken(exc: RasterdropError) -> None:
        raise OSError("S3 is down")

    exc = InvalidInputError("bad")
    with pytest.raises(InvalidInputError) as info, failures_recorded(broken, LAST):
        raise exc
    assert info.value is exc  # the job's own error wins: its exit code tells Batch


def test_as_internal_of_an_empty_message() -> None:
    assert as_internal(KeyError()).message == "KeyError: "
