"""The clock-shifted run really shifts this process and its Python subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import CLOCK_OFFSET_ENV


@pytest.mark.skipif(not os.environ.get(CLOCK_OFFSET_ENV), reason="only in make test-future")
def test_process_and_subprocesses_run_ahead() -> None:
    code = "import time; print(time.time())"
    child = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    for seen in (time.time(), child):
        ahead = (datetime.fromtimestamp(seen, UTC) - datetime.now(UTC)).days
        assert abs(ahead) <= 1  # both agree with this process's (shifted) now
