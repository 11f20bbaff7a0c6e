"""Session-scoped synthesized templates (each synth costs seconds).

Tests that use them are marked `xdist_group("cdk")` so that under
`pytest -n 2 --dist loadgroup` they share one worker and one synth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from cdk_helpers import VARIANT_CONTEXT, cdk_json_context

from cdk.config import RasterdropConfig, load_config
from cdk.synth import HANDLERS_DIR, synth_template


@pytest.fixture(scope="session")
def handlers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real handlers/ when present, else stand-ins (the handlers are built in parallel)."""
    if all((HANDLERS_DIR / f"{name}.py").exists() for name in ("notify", "reject", "link")):
        return HANDLERS_DIR
    stub = tmp_path_factory.mktemp("handlers")
    for name in ("notify", "reject", "link"):
        (stub / f"{name}.py").write_text("def handler(event, context):\n    return None\n")
    return stub


@pytest.fixture(scope="session")
def config() -> RasterdropConfig:
    return load_config(cdk_json_context())


@pytest.fixture(scope="session")
def variant_config() -> RasterdropConfig:
    return load_config({**cdk_json_context(), **VARIANT_CONTEXT})


@pytest.fixture(scope="session")
def template(config: RasterdropConfig, handlers_dir: Path) -> dict[str, Any]:
    """The default stack (cdk.json), synthesized once with cdk-nag enforcing."""
    return synth_template(config, handlers_directory=handlers_dir)


@pytest.fixture(scope="session")
def variant_template(variant_config: RasterdropConfig, handlers_dir: Path) -> dict[str, Any]:
    return synth_template(variant_config, handlers_directory=handlers_dir)
