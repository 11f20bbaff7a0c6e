"""The predict job's end of a run: partials deleted exactly when the run is over (success,
duplicate, superseded, final error), never when a retry or a takeover may still need them;
the lease released on every way out but a lost lease (it belongs to its taker) and SIGKILL."""

from __future__ import annotations

from typing import Any

import pytest

from batch_image.errors import InternalError, InvalidInputError, ModelError
from batch_image.jobs import predict_job
from batch_image.jobs.lease import LeaseLost
from batch_image.jobs.request import JobRequest
from batch_image.jobs.settings import Settings
from batch_image.predict.documents import InputRef


class FakeLease:
    key = "partial/r1/lease.json"
    ttl = 300.0

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def stop(self) -> None:
        self.calls.append("stop")

    def release(self) -> None:
        self.calls.append("release")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def delete_prefix(s3: Any, bucket: str, prefix: str, *, keep: tuple[str, ...] = ()) -> int:
        assert (bucket, prefix, keep) == ("b", "partial/r1/", (FakeLease.key,))
        seen.append("delete partials")
        return 2

    monkeypatch.setattr(predict_job.s3io, "delete_prefix", delete_prefix)
    return seen


def _state() -> predict_job._Run:
    return predict_job._Run(
        JobRequest("b", "input/a.tif"), Settings(), None, "output/a/", InputRef(), run_id="r1"
    )


OVER = ["stop", "delete partials", "release", "stop"]


def test_a_run_that_returns_is_over(calls: list[str]) -> None:
    with predict_job._run_ends_with(_state(), FakeLease(calls)):
        calls.append("body")
    assert calls == ["body", *OVER]


@pytest.mark.parametrize("exc", [InvalidInputError("bad"), ModelError("gone")])
def test_a_final_error_ends_the_run(calls: list[str], exc: Exception) -> None:
    with pytest.raises(type(exc)), predict_job._run_ends_with(_state(), FakeLease(calls)):
        raise exc
    assert calls == OVER


class Terminated(BaseException):
    """Like the CLI's SIGTERM exception: not an Exception."""


@pytest.mark.parametrize(
    "exc", [InternalError("disk"), ValueError("bug"), KeyboardInterrupt(), Terminated()]
)
def test_a_retry_keeps_the_partials_and_releases_the_lease(
    calls: list[str], exc: BaseException
) -> None:
    with pytest.raises(type(exc)), predict_job._run_ends_with(_state(), FakeLease(calls)):
        raise exc
    # checkpoints stay for the retry; nobody (retry or new job) waits for the lease
    assert calls == ["release", "stop"]


def test_a_lost_lease_is_left_to_its_taker(calls: list[str]) -> None:
    with pytest.raises(LeaseLost), predict_job._run_ends_with(_state(), FakeLease(calls)):
        raise LeaseLost("taken")
    assert calls == ["stop"]


def test_a_release_that_fails_never_hides_the_error(calls: list[str]) -> None:
    class Stubborn(FakeLease):
        def release(self) -> None:
            raise OSError("connection reset")

    with pytest.raises(InternalError), predict_job._run_ends_with(_state(), Stubborn(calls)):
        raise InternalError("disk")
    assert calls == ["stop"]
