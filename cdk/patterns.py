"""EventBridge event patterns the stack writes: TIFF suffix spellings, Batch job states.

Matching events against patterns is the sandbox's job (`sandbox.eventpattern`, a
real matcher used by the sandbox and by the CDK tests), so it exists once.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

from aws_cdk import aws_events as events

from cdk import constants as C


def case_variants(text: str) -> list[str]:
    """All-lower and all-upper spellings of `text` (".tif" -> [".tif", ".TIF"])."""
    return list(dict.fromkeys([text.lower(), text.upper()]))


def tiff_key_wildcards(prefix: str = C.INPUT_PREFIX) -> list[str]:
    """Wildcards for TIFF keys under `prefix`: `input/*.tif`, `input/*.TIF`, ....

    EventBridge cannot AND two conditions on the same field, so "prefix input/
    and suffix .tif in any case" must be one wildcard per spelling. Every
    spelling shares the `input/*` prefix, and EventBridge rejects patterns
    whose wildcard complexity is high ("Rule is too complex"), so only the
    lower- and upper-case spellings are listed (4 wildcards); a mixed-case
    extension such as `.Tif` is not picked up (README, Deploy).
    """
    return [f"{prefix}*{ext}" for base in C.TIFF_EXTENSIONS for ext in case_variants(base)]


def all_case_spellings(text: str) -> list[str]:
    """Every upper/lower spelling of `text` (for tests of what is and is not matched)."""
    options = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in text]
    return ["".join(p) for p in product(*options)]


def job_state_pattern(queue_arns: Sequence[str], statuses: Sequence[str]) -> events.EventPattern:
    """Batch "Job State Change" of this stack's queues only (other stacks' jobs are not ours)."""
    return events.EventPattern(
        source=["aws.batch"],
        detail_type=["Batch Job State Change"],
        detail={"status": list(statuses), "jobQueue": list(queue_arns)},
    )


def job_queue_blocked_pattern(queue_arns: Sequence[str]) -> events.EventPattern:
    """Batch "Job Queue Blocked" (a RUNNABLE job at the head of one of our queues)."""
    return events.EventPattern(
        source=["aws.batch"],
        detail_type=["Batch Job Queue Blocked"],
        detail={"jobQueue": list(queue_arns)},
    )
