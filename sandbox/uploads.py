"""``python -m sandbox upload FILE...``: one's own files through the stack's flow."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.core import Options, Sandbox
from sandbox.demo import (
    DEFAULT_SIZE,
    DEFAULT_TREES,
    Echo,
    prepare_data,
    train_model,
    wait_until_interrupted,
)
from sandbox.email import format_email


def run_uploads(
    files: list[Path],
    *,
    prefix: str | None,
    model: Path | None,
    out: Path,
    keep_running: bool,
    echo: Echo = print,
    context: dict[str, str] | None = None,
) -> int:
    """``context``: stack context overrides (``-c key=value``), as ``cdk synth -c`` takes."""
    work = out / ".sandbox"
    with Sandbox(Options(work_dir=work, context=dict(context or {}))) as sb:
        prefix = prefix or f"{sb.prefix('input')}uploads/"
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        if model is not None:
            version = sb.publish_model(model, sb.config.model_name)
            sb.run_until_idle()
            echo(f"  model {sb.config.model_name} {version} published from {model}")
        else:
            data = prepare_data(work, files[0], None, DEFAULT_SIZE, echo)
            train_model(sb, data, DEFAULT_TREES, echo)
        before = len(sb.messages())
        started = time.time()
        for path in files:
            key = prefix + path.name
            sb.upload(path, key)
            echo(f"  uploaded {path} → s3://{sb.bucket}/{key}")
        sb.run_until_idle()
        for m in sb.messages()[before:]:
            echo("")
            echo("=" * 78)
            echo(format_email(m, sb.recipients(m)))
            echo("=" * 78)
            echo(f"(arrived {m.timestamp.timestamp() - started:.1f} s after the first upload)")
        for job in sb.jobs:
            logs = ", ".join(str(a.log_path) for a in job.attempts)
            echo(f"job {job.name} {job.status} after {len(job.attempts)} attempt(s): {logs}")
        if keep_running:
            wait_until_interrupted(echo)
    return 0
