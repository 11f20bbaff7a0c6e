"""The one error the sandbox raises for what it cannot do (the CLI prints it, no traceback)."""

from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox cannot run the flow (a template it cannot read, a flow that never settles)."""
