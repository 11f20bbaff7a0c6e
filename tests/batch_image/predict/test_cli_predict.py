"""``predict``'s two modes: S3 mode logs in the settings' format, local mode needs no
job settings; each ends in its one library call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batch_image.cli import predict as cli
from batch_image.cli.main import main
from batch_image.jobs import predict_job


@pytest.fixture
def formats(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    seen: list[str | None] = []
    monkeypatch.setattr(cli, "setup_logging", seen.append)
    return seen


@pytest.fixture
def job_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    runs: list[Any] = []

    def run(request: Any, settings: Any, *, workers: int | None = None) -> predict_job.Outcome:
        runs.append((request, settings, workers))
        return predict_job.Outcome("duplicate", 0, "already done", "output/a/")

    monkeypatch.setattr(predict_job, "run", run)
    return runs


def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


S3_ARGS = ["predict", "--bucket", "bkt", "--key", "input/a.tif", "--version-id", "null"]


@pytest.mark.parametrize(
    ("env", "flag", "want"),
    [("json", [], "json"), ("json", ["--log-format", "text"], "text"), ("", [], "text")],
)
def test_s3_mode_logs_in_the_settings_format(formats, job_runs, env, flag, want) -> None:
    code, output = _invoke([*S3_ARGS, *flag], {"RASTERDROP_LOG_FORMAT": env})
    assert code == 0, output
    assert formats == [want]
    assert output.startswith("duplicate: already done (s3://bkt/output/a/)")
    request, settings, _ = job_runs[0]
    assert (request.bucket, request.key, request.version_id) == ("bkt", "input/a.tif", None)
    assert settings.log_format == (env or "text")


def test_s3_mode_bad_settings_exit_3_before_the_job(formats, job_runs) -> None:
    code, output = _invoke(S3_ARGS, {"RASTERDROP_LOG_FORMAT": "xml"})
    assert code == 3
    assert "error [model_error/config_invalid]: RASTERDROP_LOG_FORMAT='xml'" in output
    assert job_runs == [] and formats == []


def test_local_mode_needs_no_job_settings(tmp_path: Path, scene4, model4, formats) -> None:
    env = {"RASTERDROP_MAX_PIXELS": "lots", "RASTERDROP_LOG_FORMAT": ""}
    args = ["predict", str(scene4[0]), "--model", str(model4), "--out", str(tmp_path / "o")]
    code, output = _invoke([*args, "--workers", "1"], env)
    assert code == 0, output
    assert formats == [None]  # logs.py's default: $RASTERDROP_LOG_FORMAT or text
    assert (tmp_path / "o" / "summary.json").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "x.tif", "--bucket", "b", "--key", "input/a.tif"],
        ["predict", "--bucket", "b"],
        ["predict", "x.tif", "--model", "m"],
        ["predict", "x.tif", "--model", "m", "--out", "o", "--etag", "e"],
    ],
)
def test_one_mode_at_a_time(args: list[str], job_runs) -> None:
    code, output = _invoke(args, {})
    assert code == 2 and "Usage" in output
    assert job_runs == []
