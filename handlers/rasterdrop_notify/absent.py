"""Absent event values: the ways "no value" reaches the handlers.

EventBridge and Batch do not leave an unset field out: S3 reports ``"null"`` as the version of
an object written while versioning was off, an input transformer renders a missing field as
``""`` or ``null``, and a Batch parameter that was never set stays an unresolved
``Ref::<name>``. Same rule as the job's ``optional()`` (``batch_image``), checked by
``tests/handlers/test_key_rule_parity.py``.
"""

from __future__ import annotations

from typing import Any

_ABSENT = frozenset({"", "null", "none", "undefined"})


def optional(value: Any) -> str | None:
    """``None`` for an absent value (``None``, ``""``, ``null``, ``None``, ``undefined``, any
    case and surrounding blanks, or an unresolved ``Ref::…``); otherwise the value, as text
    and unstripped."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    stripped = text.strip()
    if stripped.lower() in _ABSENT or stripped.startswith("Ref::"):
        return None
    return text
