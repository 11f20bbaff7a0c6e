"""Defaults that several layers state must agree: the stack, the job and cdk.json.

The stack always sets the job's environment, so a default that differs only bites a
job run outside the stack (the sandbox, a hand-run container): the limits it enforces
must be the ones the README documents for the stack.
"""

from __future__ import annotations

import json
from pathlib import Path

from batch_image.jobs.settings import Settings
from batch_image.publish import layout
from cdk import constants as C
from cdk.config import DEFAULTS, RasterdropConfig

ROOT = Path(__file__).resolve().parents[1]


def test_job_limits_default_to_the_stack_defaults() -> None:
    stack, job = RasterdropConfig(), Settings()
    assert job.max_input_bytes == stack.max_input_bytes == 4 * 1024**3
    assert job.max_pixels == stack.max_pixels


def test_cdk_json_states_the_config_defaults() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    stated = {k: v for k, v in context.items() if k in DEFAULTS}
    assert stated == {k: DEFAULTS[k] for k in stated}


def test_job_prefixes_default_to_the_layout_the_stack_uses() -> None:
    job = Settings()
    assert (job.input_prefix, job.output_prefix, job.partial_prefix) == (
        C.INPUT_PREFIX,
        C.OUTPUT_PREFIX,
        C.PARTIAL_PREFIX,
    )
    assert (job.models_prefix, job.training_prefix) == (C.MODELS_PREFIX, C.TRAINING_PREFIX)
    assert C.TRAINING_PREFIX == layout.TRAINING_PREFIX == "training/"


def test_handler_defaults_are_the_stack_defaults() -> None:
    from rasterdrop_notify import settings as handler

    stack = RasterdropConfig()
    assert stack.max_input_bytes == handler.DEFAULT_MAX_INPUT_BYTES
    assert stack.link_ttl_days == handler.DEFAULT_LINK_TTL_DAYS


def test_exit_codes_agree_between_the_job_the_stack_and_the_notifier() -> None:
    """The job's exit codes, the retry strategy's final ones and the notifier's reading."""
    from batch_image import errors
    from rasterdrop_notify import decisions
    from rasterdrop_notify.failures import EXIT_CATEGORIES

    job = (
        errors.EXIT_INVALID_INPUT,
        errors.EXIT_MODEL_ERROR,
        errors.EXIT_SUPERSEDED,
        errors.EXIT_IN_PROGRESS,
    )
    stack = (C.EXIT_INVALID_INPUT, C.EXIT_MODEL_ERROR, C.EXIT_SUPERSEDED, C.EXIT_IN_PROGRESS)
    notifier = (
        decisions.EXIT_INVALID_INPUT,
        decisions.EXIT_MODEL_ERROR,
        decisions.EXIT_SUPERSEDED,
        decisions.EXIT_IN_PROGRESS,
    )
    assert job == stack == notifier == (2, 3, 4, 5)
    assert EXIT_CATEGORIES == {2: "invalid_input", 3: "model_error"}
    assert decisions.EXIT_OUTCOMES == {4: "superseded", 5: "in_progress"}
    from cdk.compute import retry_strategies

    assert len(retry_strategies()) <= 5  # Batch's limit on EvaluateOnExit


def test_a_sharded_runs_part_names_agree_between_the_job_the_stack_and_the_notifier() -> None:
    """The stack's command passes ``part``/``shards``; the notifier reads ``part=shard``."""
    from batch_image.jobs import request
    from rasterdrop_notify import decisions

    assert decisions.PART_SHARD == request.PART_SHARD == "shard"
    assert request.PARTS == (request.PART_SHARD, request.PART_ASSEMBLE)
    assert C.PREDICT_COMMAND[-4:] == ("--part", "Ref::part", "--shards", "Ref::shards")
