"""Pure parts of S3 mode: key checks, event field normalisation, settings from env."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_image.cli.main import main
from batch_image.errors import ConfigError, InvalidInputError
from batch_image.jobs.request import JobRequest, check_key, optional, output_prefix_for, run_id
from batch_image.jobs.settings import DEFAULT_MAX_INPUT_BYTES, Settings, from_env


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("input/a.tif", "a"),
        ("input/tenant/b c.TIFF", "tenant/b c"),
        ("input/x+y z.Tif", "x+y z"),  # + is a plus, never a space
        ("input/a%20b.tif", "a%20b"),  # never URL-decoded
        ("input/ünï/çødé €.tif", "ünï/çødé €"),
        ("input/日本/画像.tiff", "日本/画像"),
    ],
)
def test_good_keys_map_to_output_paths(key: str, path: str) -> None:
    assert check_key(key) == path
    assert output_prefix_for(path) == f"output/{path}/"


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", "bad_key"),
        ("output/a.tif", "outside_input_prefix"),
        ("inputs/a.tif", "outside_input_prefix"),
        ("a.tif", "outside_input_prefix"),
        ("input/a.png", "not_a_tiff"),
        ("input/a.tif.zip", "not_a_tiff"),
        ("input/../a.tif", "bad_key"),
        ("input/a/../../b.tif", "bad_key"),
        ("input/./a.tif", "bad_key"),
        ("input//a.tif", "bad_key"),
        ("input/.tif", "bad_key"),
        ("input/...tif", "bad_key"),
        ("input/a\x00b.tif", "bad_key"),
        ("input/a\nb.tif", "bad_key"),
        ("input/a\x7fb.tif", "bad_key"),
        ("input/" + "a" * 1100 + ".tif", "bad_key"),
    ],
)
def test_bad_keys_are_invalid_input(key: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_key(key)
    assert info.value.code == code
    assert info.value.exit_code == 2


@pytest.mark.parametrize("absent", [None, "", "null", "NULL", "None", " ", "Ref::version"])
def test_absent_event_fields(absent: str | None) -> None:
    assert optional(absent) is None
    req = JobRequest.from_cli("b", "input/a.tif", absent, absent, absent)
    assert (req.version_id, req.etag, req.size) == (None, None, None)


def test_event_fields_kept_raw() -> None:
    req = JobRequest.from_cli(
        "b", "input/a+b.tif", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", '"abc"', "42"
    )
    assert req.version_id == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert req.etag == "abc"
    assert req.size == 42
    assert JobRequest.from_cli("b", "k", None, None, "-3").size is None
    assert JobRequest.from_cli("b", "k", None, None, "12x").size is None


def test_run_id_changes_with_input_and_model_versions() -> None:
    base = run_id("b", "input/a.tif", "v1", "m", "1")
    assert len(base) == 32
    assert base == run_id("b", "input/a.tif", "v1", "m", "1")
    others = {
        run_id("b", "input/a.tif", "v2", "m", "1"),
        run_id("b", "input/a.tif", "v1", "m", "2"),
        run_id("b", "input/b.tif", "v1", "m", "1"),
        run_id("c", "input/a.tif", "v1", "m", "1"),
    }
    assert base not in others and len(others) == 4


def test_settings_defaults_and_parsing(tmp_path: Path) -> None:
    s = from_env({})
    assert s == Settings()
    assert s.max_input_bytes == DEFAULT_MAX_INPUT_BYTES
    assert s.is_last_attempt()  # unknown attempt count: assume no retry follows
    s = from_env(
        {
            "RASTERDROP_MODEL_URI": "s3://b/models/demo/",
            "RASTERDROP_OUTPUT_PREFIX": "results",
            "RASTERDROP_MAX_INPUT_BYTES": "1000",
            "RASTERDROP_WORKERS": "3",
            "RASTERDROP_SCRATCH_DIR": str(tmp_path),
            "RASTERDROP_LOG_FORMAT": "JSON",
            "RASTERDROP_MAX_ATTEMPTS": "3",
            "AWS_BATCH_JOB_ATTEMPT": "2",
            "AWS_BATCH_JOB_ID": "abc",
        }
    )
    assert s.model_uri == "s3://b/models/demo/"
    assert s.output_prefix == "results/"
    assert (s.max_input_bytes, s.workers, s.scratch, s.log_format) == (1000, 3, tmp_path, "json")
    assert (s.job_id, s.attempt, s.max_attempts) == ("abc", 2, 3)
    assert not s.is_last_attempt()
    assert from_env(
        {"RASTERDROP_MAX_ATTEMPTS": "3", "AWS_BATCH_JOB_ATTEMPT": "3"}
    ).is_last_attempt()


@pytest.mark.parametrize(
    "env",
    [
        {"RASTERDROP_MAX_INPUT_BYTES": "ten"},
        {"RASTERDROP_WORKERS": "0"},
        {"RASTERDROP_LOG_FORMAT": "xml"},
        {"RASTERDROP_OUTPUT_PREFIX": "../out"},
        {"RASTERDROP_PARTIAL_PREFIX": "/abs"},
        {"RASTERDROP_INPUT_PREFIX": "  "},
    ],
)
def test_bad_settings_are_configuration_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        from_env(env)
    assert info.value.code == "config_invalid"
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--bucket", "b"],
        ["--key", "input/a.tif"],
        ["x.tif", "--bucket", "b", "--key", "input/a.tif"],
        ["x.tif", "--model", "m", "--out", "o", "--version-id", "v"],
        ["x.tif", "--model", "m"],
    ],
)
def test_exactly_one_mode(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["predict", *args])
    assert result.exit_code == 2
    assert "Usage" in result.output or "Error" in result.output
