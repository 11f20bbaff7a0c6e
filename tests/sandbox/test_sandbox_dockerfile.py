"""The job command's prefix comes from the image's ENTRYPOINT."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sandbox.dockerfile import DockerfileError, local_entrypoint, parse_entrypoint

ROOT = Path(__file__).resolve().parents[2]


def test_multi_stage_exec_form_with_continuations() -> None:
    text = """
    FROM python:3.11-slim AS build
    ENTRYPOINT ["/bin/false"]
    FROM python:3.11-slim
    # comment
    RUN pip install \\
        numpy
    ENTRYPOINT ["python", \\
                "-m", "batch_image"]
    CMD ["--help"]
    """
    assert parse_entrypoint(text) == ["python", "-m", "batch_image"]


def test_shell_form_and_missing_entrypoint_are_refused() -> None:
    with pytest.raises(DockerfileError, match="shell-form"):
        parse_entrypoint("FROM x\nENTRYPOINT python -m batch_image\n")
    with pytest.raises(DockerfileError, match="no ENTRYPOINT"):
        parse_entrypoint('FROM x\nENTRYPOINT ["a"]\nFROM y\nCMD ["b"]\n')


def test_local_entrypoint_uses_this_interpreter() -> None:
    assert local_entrypoint(["python", "-m", "batch_image"]) == [
        sys.executable,
        "-m",
        "batch_image",
    ]
    assert local_entrypoint(["/usr/local/bin/python3", "-m", "x"])[0] == sys.executable
    assert local_entrypoint(["/entry.sh", "a"]) == ["/entry.sh", "a"]


def test_the_real_dockerfile_runs_the_package() -> None:
    entry = parse_entrypoint((ROOT / "batch_image" / "Dockerfile").read_text())
    assert entry[-2:] == ["-m", "batch_image"]
