"""The notifier's one notion of "now".

Every function that needs the current time takes a ``Clock`` (a callable returning an aware
UTC ``datetime``) and reads it once per invocation; the default is ``system_clock``. The
handlers pass ``runtime.clock()``, which tests (and the sandbox) can replace with
``frozen_clock(...)``, so no result depends on the date the code runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def frozen_clock(when: datetime) -> Clock:
    """A clock that always answers ``when`` (naive values are taken as UTC)."""
    fixed = when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def now() -> datetime:
        return fixed

    return now
