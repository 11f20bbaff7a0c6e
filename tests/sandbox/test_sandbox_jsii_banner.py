"""`python -m sandbox` imports the `sandbox` package first, and that import silences jsii's
Node end-of-life banner before aws_cdk (jsii) is loaded for the synth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import JSII_QUIET

ROOT = Path(__file__).resolve().parents[2]
BANNER = "is end-of-life and not supported anymore"

pytestmark = pytest.mark.slow


def stderr_of(code: str) -> str:
    """stderr of a fresh interpreter running `code` with none of the jsii silencers set."""
    env = {k: v for k, v in os.environ.items() if k not in JSII_QUIET}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_loading_jsii_after_the_sandbox_prints_no_banner() -> None:
    assert BANNER not in stderr_of("import sandbox, aws_cdk")


def test_the_banner_is_real_without_the_sandbox() -> None:
    """The control: on this machine's Node the banner does appear, so the test above can fail
    (if Node is upgraded and this fails, the silencers in sandbox/__init__.py can go)."""
    assert BANNER in stderr_of("import aws_cdk")


def test_the_cli_starts_without_the_variables() -> None:
    env = {k: v for k, v in os.environ.items() if k not in JSII_QUIET}
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "upload" in proc.stdout
    assert proc.stderr == ""
