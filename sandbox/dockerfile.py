"""The image's ENTRYPOINT, read from ``batch_image/Dockerfile``, as a local command prefix.

Batch runs ``ENTRYPOINT + command``; the sandbox runs the same argv from the repo root with
this interpreter (``python``/``python3`` become ``sys.executable``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PYTHON_NAMES = frozenset({"python", "python3", "python3.11", "python3.12", "python3.13"})


class DockerfileError(ValueError):
    """The Dockerfile has no usable ENTRYPOINT."""


def logical_lines(text: str) -> list[str]:
    """Instructions with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse_entrypoint(text: str) -> list[str]:
    """The last ENTRYPOINT of the final stage (exec form: a shell form would drop the command)."""
    entry: list[str] | None = None
    for line in logical_lines(text):
        instruction, _, rest = line.partition(" ")
        upper = instruction.upper()
        if upper == "FROM":
            entry = None  # a new stage starts without the previous stage's ENTRYPOINT
        elif upper == "ENTRYPOINT":
            rest = rest.strip()
            if rest.startswith("["):
                try:
                    value = json.loads(rest)
                except json.JSONDecodeError as exc:
                    raise DockerfileError(f"ENTRYPOINT is not valid JSON: {rest}") from exc
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise DockerfileError("ENTRYPOINT exec form must be a list of strings")
                entry = value
            else:
                raise DockerfileError(
                    "shell-form ENTRYPOINT ignores the job command; use the exec form [...]"
                )
    if not entry:
        raise DockerfileError("the Dockerfile sets no ENTRYPOINT")
    return entry


def local_entrypoint(entry: list[str], python: str = sys.executable) -> list[str]:
    """The ENTRYPOINT runnable here: the image's Python becomes this interpreter."""
    head = Path(entry[0]).name
    if head in PYTHON_NAMES:
        return [python, *entry[1:]]
    return list(entry)


def read_entrypoint(dockerfile: Path, python: str = sys.executable) -> list[str]:
    """``parse_entrypoint`` of the file, made local."""
    return local_entrypoint(parse_entrypoint(dockerfile.read_text(encoding="utf-8")), python)
