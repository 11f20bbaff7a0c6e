"""Started by every Python subprocess of a clock-shifted test run (on ``PYTHONPATH``).

``RASTERDROP_TEST_CLOCK_OFFSET_DAYS`` moves the wall clock of the process by that many
days (``time.time``, ``datetime.now``: what dates and stamps come from), ticking on;
monotonic clocks, which only measure durations, are left alone.
"""

from __future__ import annotations

import os

SHIFTED = False  # tests/conftest.py must not shift a process twice
_offset = os.environ.get("RASTERDROP_TEST_CLOCK_OFFSET_DAYS", "").strip()
if _offset:
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(days=float(_offset)), tick=True).start()
    SHIFTED = True
