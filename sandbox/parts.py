"""Which parts of the system the full sandbox needs are present in this checkout."""

from __future__ import annotations

from pathlib import Path

from sandbox.core import REPO_ROOT


def _command_options(name: str) -> set[str] | None:
    """The option names of ``python -m batch_image <name>``, or None without that command."""
    from batch_image.cli.main import main

    command = main.commands.get(name)
    if command is None:
        return None
    return {opt for p in command.params for opt in getattr(p, "opts", [])}


def missing_parts(root: Path = REPO_ROOT) -> list[str]:
    """What the S3 flow still lacks (empty when everything is there)."""
    missing = []
    if not (root / "cdk" / "synth.py").exists() or not (root / "cdk.json").exists():
        missing.append("the CDK stack (cdk/synth.py, cdk.json)")
    for handler in ("notify", "reject", "link"):
        if not (root / "handlers" / f"{handler}.py").exists():
            missing.append(f"the {handler} handler (handlers/{handler}.py)")
    if not (root / "batch_image" / "Dockerfile").exists():
        missing.append("the job image (batch_image/Dockerfile)")
    predict = _command_options("predict") or set()
    if "--bucket" not in predict:
        missing.append("the S3 job mode of predict (--bucket/--key)")
    return missing


def train_has_s3_mode() -> bool:
    return "--bucket" in (_command_options("train") or set())
