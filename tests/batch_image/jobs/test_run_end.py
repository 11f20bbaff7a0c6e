"""The predict job's end of a run: partials deleted and lease released exactly when the
run is over (success, duplicate, superseded, final error), never when a retry or a
takeover may still need them."""

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


@pytest.mark.parametrize(
    "exc", [InternalError("disk"), LeaseLost("taken"), ValueError("bug"), KeyboardInterrupt()]
)
def test_a_retry_or_takeover_keeps_the_partials(calls: list[str], exc: BaseException) -> None:
    with pytest.raises(type(exc)), predict_job._run_ends_with(_state(), FakeLease(calls)):
        raise exc
    assert calls == ["stop"]  # heartbeat stopped; checkpoints and lease stay
