"""The toolchain the README promises: Node 22 or 24 asked for, and neither `make` nor the
operator commands print jsii's Node end-of-life banner on this machine's Node."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BANNER = "is end-of-life and not supported anymore"
SILENCERS = (
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION",
)

pytestmark = pytest.mark.slow


def makefile_exports() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return dict(re.findall(r"^export (JSII_\w+) := (\S+)$", text, flags=re.MULTILINE))


def stderr_of(code: str, extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in SILENCERS} | extra
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_readme_asks_for_a_supported_node() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "Node 22 or 24" in readme
    assert "Node 20+" not in readme


def test_make_silences_the_banner() -> None:
    exports = makefile_exports()
    assert set(exports) == set(SILENCERS)
    assert BANNER not in stderr_of("import aws_cdk", exports)


def test_ops_commands_silence_the_banner() -> None:
    assert BANNER not in stderr_of("import ops, aws_cdk", {})
