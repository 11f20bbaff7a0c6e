"""Session-scoped synthesized templates (each synth costs seconds).

Tests that use them are marked `xdist_group("cdk")` so that under
`pytest -n 2 --dist loadgroup` they share one worker and one synth.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from cdk_helpers import VARIANT_CONTEXT, cdk_json_context

from cdk.config import RasterdropConfig, load_config
from cdk.synth import synth_template


@pytest.fixture(scope="session")
def config() -> RasterdropConfig:
    return load_config(cdk_json_context())


@pytest.fixture(scope="session")
def variant_config() -> RasterdropConfig:
    return load_config({**cdk_json_context(), **VARIANT_CONTEXT})


@pytest.fixture(scope="session")
def template(config: RasterdropConfig) -> dict[str, Any]:
    """The default stack (cdk.json) with the real handlers/, synthesized once, cdk-nag enforcing."""
    return synth_template(config)


@pytest.fixture(scope="session")
def variant_template(variant_config: RasterdropConfig) -> dict[str, Any]:
    return synth_template(variant_config)
