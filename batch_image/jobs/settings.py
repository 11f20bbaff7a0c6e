"""The job's settings: environment variables parsed once into a frozen, validated object.

Names and defaults are those of docs/contracts.md. A bad value is a configuration
error (:class:`~batch_image.errors.ConfigError`, exit 3, never retried): retrying
the same job definition with the same environment cannot fix it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batch_image.errors import ConfigError
from batch_image.predict.review import DEFAULT_REVIEW_POINTS
from batch_image.publish import layout
from batch_image.raster.checks import DEFAULT_MAX_PIXELS
from batch_image.raster.windows import DEFAULT_TARGET_PIXELS
from batch_image.train import gate

# the stack's default (cdk/config.py max_input_bytes); tests/test_defaults_agree.py checks it
DEFAULT_MAX_INPUT_BYTES = 4 * 1024**3
DEFAULT_LEASE_SECONDS = 300
DEFAULT_CHECKPOINT_PIXELS = 8 * 1024**2


@dataclass(frozen=True)
class Settings:
    model_uri: str | None = None
    input_prefix: str = layout.INPUT_PREFIX
    output_prefix: str = layout.OUTPUT_PREFIX
    partial_prefix: str = layout.PARTIAL_PREFIX
    models_prefix: str = layout.MODELS_PREFIX
    training_prefix: str = layout.TRAINING_PREFIX
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None
    scratch_dir: Path | None = None
    log_format: str = "text"
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    window_pixels: int = DEFAULT_TARGET_PIXELS
    checkpoint_pixels: int = DEFAULT_CHECKPOINT_PIXELS
    max_attempts: int | None = None
    # post-processing of predictions (the model card's own entry wins)
    mmu_pixels: int = 0
    mmu_connectivity: int = 8
    class_polygons: bool = False
    accuracy_sample_n: int = 0
    probabilities: bool = False  # classification: also probabilities.tif
    # sharded prediction (batch_image.jobs.shards): inputs over shard_pixels are planned
    # as an array job of children and an assemble job on this queue and job definition
    shard_pixels: int = 0  # 0: never shard
    job_queue: str | None = None
    job_definition: str | None = None
    job_vcpus: int | None = None  # the job definition's vCPUs (what the job is billed for)
    review_points: int = DEFAULT_REVIEW_POINTS  # review.gpkg points (0: none)
    # the promotion gate of manifests that do not say (batch_image.train.gate)
    promote: str = gate.IF_BETTER
    promote_tolerance: float = gate.DEFAULT_TOLERANCE
    # set by AWS Batch in the container
    job_id: str | None = None
    attempt: int | None = None
    array_index: int | None = None  # AWS_BATCH_JOB_ARRAY_INDEX of an array job's child

    @property
    def can_shard(self) -> bool:
        """Whether this job may plan: a shard size and where to submit the children."""
        return bool(self.shard_pixels and self.job_queue and self.job_definition)

    @property
    def scratch(self) -> Path:
        return self.scratch_dir or Path(tempfile.gettempdir())

    def is_last_attempt(self) -> bool:
        """Whether a retryable failure now ends the job (so error.json must be written).

        Without ``AWS_BATCH_JOB_ATTEMPT`` (local runs) or without
        ``RASTERDROP_MAX_ATTEMPTS`` (the stack did not say how many attempts the
        retry strategy allows) we cannot know that a retry follows, so we assume
        none does: a spurious error.json is removed by a later success, a missing
        one would leave the notification with nothing to say.
        """
        if self.attempt is None or self.max_attempts is None:
            return True
        return self.attempt >= self.max_attempts


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()  # set but empty is refused, as before
    if not value or value.startswith("/") or ".." in value.split("/"):
        raise ConfigError(f"{name}={value!r} is not a valid key prefix")
    return value if value.endswith("/") else value + "/"


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 1) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}")
    return value


def _connectivity(env: Mapping[str, str]) -> int:
    value = _int(env, "RASTERDROP_MMU_CONNECTIVITY", 8)
    if value not in (4, 8):
        raise ConfigError(f"RASTERDROP_MMU_CONNECTIVITY={value} is not 4 or 8")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r} is not true or false")


def _promote(env: Mapping[str, str]) -> str:
    raw = env.get("RASTERDROP_PROMOTE", "").strip()
    if not raw:
        return gate.IF_BETTER
    try:
        return gate.policy_of(raw) or gate.IF_BETTER
    except ValueError as exc:
        raise ConfigError(f"RASTERDROP_PROMOTE={raw!r}: {exc}") from exc


def _tolerance(env: Mapping[str, str]) -> float:
    raw = env.get("RASTERDROP_PROMOTE_TOLERANCE", "").strip()
    if not raw:
        return gate.DEFAULT_TOLERANCE
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"RASTERDROP_PROMOTE_TOLERANCE={raw!r} is not a number") from exc
    if not 0 <= value <= 1:
        raise ConfigError(f"RASTERDROP_PROMOTE_TOLERANCE={value} is not in 0..1")
    return value


def workers_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """``RASTERDROP_WORKERS`` (cores to use; None for all), for commands that need only it."""
    return _int(os.environ if env is None else env, "RASTERDROP_WORKERS", None)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Parse the job's environment (``os.environ`` by default) once."""
    env = os.environ if env is None else env
    log_format = (env.get("RASTERDROP_LOG_FORMAT") or "text").strip().lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"RASTERDROP_LOG_FORMAT={log_format!r} is not text or json")
    scratch = env.get("RASTERDROP_SCRATCH_DIR", "").strip()
    return Settings(
        model_uri=env.get("RASTERDROP_MODEL_URI", "").strip() or None,
        input_prefix=_prefix(env, "RASTERDROP_INPUT_PREFIX", layout.INPUT_PREFIX),
        output_prefix=_prefix(env, "RASTERDROP_OUTPUT_PREFIX", layout.OUTPUT_PREFIX),
        partial_prefix=_prefix(env, "RASTERDROP_PARTIAL_PREFIX", layout.PARTIAL_PREFIX),
        models_prefix=_prefix(env, "RASTERDROP_MODELS_PREFIX", layout.MODELS_PREFIX),
        training_prefix=_prefix(env, "RASTERDROP_TRAINING_PREFIX", layout.TRAINING_PREFIX),
        max_input_bytes=_int(env, "RASTERDROP_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES),
        max_pixels=_int(env, "RASTERDROP_MAX_PIXELS", DEFAULT_MAX_PIXELS),
        workers=workers_from_env(env),
        scratch_dir=Path(scratch) if scratch else None,
        log_format=log_format,
        lease_seconds=_int(env, "RASTERDROP_LEASE_SECONDS", DEFAULT_LEASE_SECONDS, minimum=0),
        window_pixels=_int(env, "RASTERDROP_WINDOW_PIXELS", DEFAULT_TARGET_PIXELS),
        checkpoint_pixels=_int(env, "RASTERDROP_CHECKPOINT_PIXELS", DEFAULT_CHECKPOINT_PIXELS),
        max_attempts=_int(env, "RASTERDROP_MAX_ATTEMPTS", None),
        mmu_pixels=_int(env, "RASTERDROP_MMU_PIXELS", 0, minimum=0),
        mmu_connectivity=_connectivity(env),
        class_polygons=_flag(env, "RASTERDROP_CLASS_POLYGONS"),
        accuracy_sample_n=_int(env, "RASTERDROP_ACCURACY_SAMPLE_N", 0, minimum=0),
        probabilities=_flag(env, "RASTERDROP_PROBABILITIES"),
        shard_pixels=_int(env, "RASTERDROP_SHARD_PIXELS", 0, minimum=0),
        job_queue=env.get("RASTERDROP_JOB_QUEUE", "").strip() or None,
        job_definition=env.get("RASTERDROP_JOB_DEFINITION", "").strip() or None,
        job_vcpus=_int(env, "RASTERDROP_JOB_VCPUS", None),
        review_points=_int(env, "RASTERDROP_REVIEW_POINTS", DEFAULT_REVIEW_POINTS, minimum=0),
        promote=_promote(env),
        promote_tolerance=_tolerance(env),
        job_id=env.get("AWS_BATCH_JOB_ID", "").strip() or None,
        attempt=_int(env, "AWS_BATCH_JOB_ATTEMPT", None),
        array_index=_int(env, "AWS_BATCH_JOB_ARRAY_INDEX", None, minimum=0),
    )
