"""The fault harness, small: every scenario of ``python -m bench faults`` through the sandbox
behind the fault proxy, with a few uploads each, and the same verdict as the burst."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.faults.harness import Harness, Report
from sandbox.faults.proxy import FaultPlan, Shares

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-faults")]

# Faults on a fifth of the S3 requests and a sixth of the SNS Publishes: a small run meets them.
PLAN = FaultPlan(
    s3=Shares(error=0.12, drop_before=0.04, drop_after=0.04),
    sns=Shares(error=0.1, drop_after=0.08),
    seed=5,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    work = tmp_path_factory.mktemp("faults")
    return Harness(work, burst=4, reuse=1, races=1, kills=2, plan=PLAN, echo=lambda _: None).run()


def test_nothing_is_lost_and_every_input_version_gets_its_one_email(report: Report) -> None:
    rows = {r.scenario: r for r in report.rows}
    assert set(rows) == {"burst", "reuse", "races", "kill -9"}
    assert (rows["burst"].tried, rows["reuse"].tried) == (4, 1)
    for row in report.rows:
        assert row.lost == 0 and row.wrong_pixels == 0, row
        # a duplicate only in the counted lost-Publish-response window
        assert row.duplicated == row.in_window, row
        assert row.survived + row.duplicated == row.tried, row
    assert report.leftover_partials == 0
    assert report.ok
    assert sum(report.faults.values()) > 0  # the run met the faults it was meant to
    md = report.markdown()
    assert "| burst | 4 |" in md and "Verdict: PASS" in md


def test_the_table_counts_what_it_says(tmp_path: Path) -> None:
    from sandbox.faults.harness import Row

    bad = Report([Row("burst", tried=3, survived=1, lost=1, duplicated=1, in_window=0)],
                 "plan", {}, 0, 1.0, 1.0, 0, 1.0)  # fmt: skip
    assert not bad.ok  # a lost input or an unexplained duplicate fails the run
    window = Report([Row("burst", tried=2, survived=1, duplicated=1, in_window=1)],
                    "plan", {}, 0, 1.0, 1.0, 0, 1.0)  # fmt: skip
    assert window.ok
    leftovers = Report([Row("burst", tried=1, survived=1)], "plan", {}, 0, 1.0, 1.0, 3, 1.0)
    assert not leftovers.ok
