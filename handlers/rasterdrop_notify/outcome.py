"""What happened to one input: the value ``render_message`` turns into an email.

Plain frozen dataclasses, no AWS: the notify and reject handlers build them from the job's
``summary.json``/``error.json`` and the Batch event; the sandbox can build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

SUCCEEDED = "succeeded"
FAILED = "failed"
REJECTED = "rejected"
PREDICT = "predict"
TRAIN = "train"


@dataclass(frozen=True)
class ClassShare:
    """One row of the class table (``share`` is the fraction of valid pixels, 0..1)."""

    name: str
    share: float
    pixels: int | None = None
    area: float | None = None
    area_unit: str | None = None


@dataclass(frozen=True)
class ValueStats:
    """A regression's predicted values, as the email shows them."""

    name: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    percentiles: tuple[tuple[str, float], ...] = ()  # ("p2", 1.4), ("p50", 76.5), ...


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | failed | rejected
    bucket: str
    key: str
    kind: str = PREDICT  # predict | train
    version: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    classes: tuple[ClassShare, ...] = ()
    width: int | None = None
    height: int | None = None
    valid_pixels: int | None = None
    processing_s: float | None = None
    compute_vcpu_s: float | None = None  # summary.json's compute.vcpu_s (all shards included)
    shards: int | None = None  # a sharded run: its children
    job_id: str | None = None
    attempts: int | None = None
    exit_code: int | None = None
    category: str | None = None
    reason: str | None = None
    code: str | None = None
    size_bytes: int | None = None
    max_bytes: int | None = None
    results_prefix: str | None = None
    metrics: tuple[tuple[str, float], ...] = ()
    promoted: bool | None = None
    promotion_reason: str | None = None  # the promotion gate's sentence
    comparison: tuple[str, ...] = ()  # lines: the current version vs the new one, same blocks
    #: the row of ``decisions.DECISIONS`` (None: the failure category, or ``succeeded``)
    decision: str | None = None
    reused_from_version: str | None = None  # a reused result: the version that was computed
    values: ValueStats | None = None  # a regression: its predicted values instead of classes

    @property
    def name(self) -> str:
        """The outcome's row in the decision table."""
        if self.decision:
            return self.decision
        return SUCCEEDED if self.status == SUCCEEDED else (self.category or "internal")
