"""UTC time for the package, from one place: document stamps, model versions, the seam
tests freeze (``monkeypatch.setattr(clock, "now", lambda: FIXED)``).

Every ``created_at``, ``renewed_at``, ``updated_at`` and model version is made here, so
one frozen clock freezes them all; durations use ``time.perf_counter`` / ``monotonic``
and are not the wall clock's business.
"""

from __future__ import annotations

from datetime import UTC, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
VERSION_FORMAT = "%Y%m%dT%H%M%SZ"


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso_stamp(when: datetime | None = None) -> str:
    """``2026-11-26T09:15:00Z``: the stamp in every JSON document."""
    return (when or now()).astimezone(UTC).strftime(ISO_FORMAT)


def version_stamp(when: datetime | None = None) -> str:
    """``20261126T091500Z``: a model version, sortable as text."""
    return (when or now()).astimezone(UTC).strftime(VERSION_FORMAT)
