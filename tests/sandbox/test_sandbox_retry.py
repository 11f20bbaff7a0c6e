"""Batch retry strategy evaluation: EvaluateOnExit globs, order, attempts, default retry."""

from __future__ import annotations

import pytest

from sandbox.retry import AttemptOutcome, RetryStrategy, decide, glob_matches

# The shape the stack's job definitions use (CloudFormation property names).
TEMPLATE = {
    "Attempts": 3,
    "EvaluateOnExit": [
        {"Action": "EXIT", "OnExitCode": "2"},
        {"Action": "EXIT", "OnExitCode": "3"},
        {"Action": "EXIT", "OnReason": "OutOfMemoryError*"},
        {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
        {"Action": "retry", "OnReason": "CannotPullContainerError*"},
    ],
}
STRATEGY = RetryStrategy.from_template(TEMPLATE)


@pytest.mark.parametrize(
    ("outcome", "attempt", "expected"),
    [
        (AttemptOutcome(0), 1, "SUCCEEDED"),
        (AttemptOutcome(2), 1, "FAILED"),  # bad input: never retried
        (AttemptOutcome(3), 1, "FAILED"),  # model error: never retried
        (AttemptOutcome(1), 1, "RETRY"),  # no entry matches: retried
        (AttemptOutcome(1), 2, "RETRY"),
        (AttemptOutcome(1), 3, "FAILED"),  # attempts used up
        (AttemptOutcome(137), 1, "RETRY"),  # killed
        (AttemptOutcome(23), 1, "RETRY"),  # "2" is exact, not a prefix
        (AttemptOutcome(137, reason="OutOfMemoryError: Container killed"), 1, "FAILED"),
        (AttemptOutcome(None, status_reason="Host EC2 (instance i-0abc) terminated."), 1, "RETRY"),
        (AttemptOutcome(None, status_reason="Host EC2 (instance i-0abc) terminated."), 3, "FAILED"),
        (AttemptOutcome(None, reason="CannotPullContainerError: pull access denied"), 2, "RETRY"),
    ],
)
def test_decide(outcome: AttemptOutcome, attempt: int, expected: str) -> None:
    assert decide(STRATEGY, outcome, attempt) == expected


def test_first_matching_entry_wins_and_all_conditions_must_hold() -> None:
    strategy = RetryStrategy.from_template(
        {
            "Attempts": 5,
            "EvaluateOnExit": [
                {"Action": "EXIT", "OnExitCode": "1*", "OnStatusReason": "Essential*"},
                {"Action": "RETRY", "OnExitCode": "1*"},
                {"Action": "EXIT", "OnExitCode": "*"},
            ],
        }
    )
    assert decide(strategy, AttemptOutcome(137), 1) == "FAILED"  # first entry: both hold
    assert decide(strategy, AttemptOutcome(137, status_reason="Task stopped"), 1) == "RETRY"
    assert decide(strategy, AttemptOutcome(5, status_reason="Task stopped"), 1) == "FAILED"


def test_no_strategy_means_one_attempt() -> None:
    assert decide(RetryStrategy.from_template(None), AttemptOutcome(1), 1) == "FAILED"


def test_exit_code_glob_does_not_match_a_lost_host() -> None:
    assert not glob_matches("*", None)
    assert glob_matches("*", "0")
    assert glob_matches("13*", "137")
    assert not glob_matches("13", "137")


def test_event_shape() -> None:
    assert STRATEGY.to_event() == {
        "attempts": 3,
        "evaluateOnExit": [
            {"onExitCode": "2", "action": "EXIT"},
            {"onExitCode": "3", "action": "EXIT"},
            {"onReason": "OutOfMemoryError*", "action": "EXIT"},
            {"onStatusReason": "Host EC2*", "action": "RETRY"},
            {"onReason": "CannotPullContainerError*", "action": "RETRY"},
        ],
    }


@pytest.mark.parametrize(
    "props",
    [
        {"Attempts": 0},
        {"Attempts": 11},
        {"Attempts": 2, "EvaluateOnExit": [{"Action": "MAYBE", "OnExitCode": "1"}]},
        {
            "Attempts": 2,
            "EvaluateOnExit": [{"Action": "EXIT", "OnExitCode": str(i)} for i in range(6)],
        },
    ],
)
def test_invalid_strategies_are_refused(props: dict) -> None:
    with pytest.raises(ValueError):
        RetryStrategy.from_template(props)
