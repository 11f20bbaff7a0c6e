"""AWS Batch retry strategy: what Batch does after an attempt ends, from the job definition.

Semantics (Batch API reference, RetryStrategy and EvaluateOnExit):
- ``attempts`` (1–10) is the total number of attempts, the first included; without a
  retry strategy a job gets one attempt;
- after a failed attempt the ``EvaluateOnExit`` entries are tried in order; the first whose
  given conditions (``onExitCode``, ``onStatusReason``, ``onReason``) all match decides:
  ``EXIT`` fails the job, ``RETRY`` retries it while attempts remain;
- if no entry matches, the job is retried (while attempts remain);
- each condition is a glob that is either exact or ends with ``*`` (then only the start
  must match); ``onExitCode`` is compared with the exit code's decimal text, and does not
  match an attempt that has no exit code (the host was lost). Actions are case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRY = "RETRY"
EXIT = "EXIT"


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt ended, as Batch reports it."""

    exit_code: int | None
    status_reason: str = "Essential container in task exited"
    reason: str | None = None  # the container's reason (e.g. "OutOfMemoryError: ...")

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class RetryRule:
    action: str
    on_exit_code: str | None = None
    on_status_reason: str | None = None
    on_reason: str | None = None


@dataclass(frozen=True)
class RetryStrategy:
    attempts: int = 1
    evaluate_on_exit: tuple[RetryRule, ...] = ()

    @classmethod
    def from_template(cls, props: dict[str, Any] | None) -> RetryStrategy:
        """From a job definition's CloudFormation ``RetryStrategy`` (or None: one attempt)."""
        if not props:
            return cls()
        attempts = int(props.get("Attempts", 1))
        if not 1 <= attempts <= 10:
            raise ValueError(f"RetryStrategy.Attempts must be 1..10, got {attempts}")
        rules = tuple(
            RetryRule(
                action=str(e["Action"]).upper(),
                on_exit_code=e.get("OnExitCode"),
                on_status_reason=e.get("OnStatusReason"),
                on_reason=e.get("OnReason"),
            )
            for e in props.get("EvaluateOnExit", []) or []
        )
        if len(rules) > 5:
            raise ValueError("RetryStrategy.EvaluateOnExit takes at most 5 entries")
        for rule in rules:
            if rule.action not in (RETRY, EXIT):
                raise ValueError(f"EvaluateOnExit action must be RETRY or EXIT, got {rule.action}")
        return cls(attempts=attempts, evaluate_on_exit=rules)

    def to_event(self) -> dict[str, Any]:
        """The ``retryStrategy`` of a Batch job description / Job State Change event."""
        entries = []
        for rule in self.evaluate_on_exit:
            entry = {}
            if rule.on_status_reason is not None:
                entry["onStatusReason"] = rule.on_status_reason
            if rule.on_reason is not None:
                entry["onReason"] = rule.on_reason
            if rule.on_exit_code is not None:
                entry["onExitCode"] = rule.on_exit_code
            entry["action"] = rule.action
            entries.append(entry)
        return {"attempts": self.attempts, "evaluateOnExit": entries}


def glob_matches(pattern: str, text: str | None) -> bool:
    """Batch's glob: exact, or a prefix when the pattern ends with ``*``."""
    if text is None:
        return False
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    return text == pattern


def rule_matches(rule: RetryRule, outcome: AttemptOutcome) -> bool:
    """All conditions the rule gives match the attempt (a rule without any matches all)."""
    checks = []
    if rule.on_exit_code is not None:
        code = None if outcome.exit_code is None else str(outcome.exit_code)
        checks.append(glob_matches(rule.on_exit_code, code))
    if rule.on_status_reason is not None:
        checks.append(glob_matches(rule.on_status_reason, outcome.status_reason))
    if rule.on_reason is not None:
        checks.append(glob_matches(rule.on_reason, outcome.reason))
    return all(checks)


def decide(strategy: RetryStrategy, outcome: AttemptOutcome, attempt: int) -> str:
    """After attempt number ``attempt`` (1-based): "SUCCEEDED", "RETRY" or "FAILED"."""
    if outcome.succeeded:
        return "SUCCEEDED"
    action = RETRY
    for rule in strategy.evaluate_on_exit:
        if rule_matches(rule, outcome):
            action = rule.action
            break
    if action == RETRY and attempt < strategy.attempts:
        return "RETRY"
    return "FAILED"
