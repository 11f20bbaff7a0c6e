"""``python -m sandbox upload|demo|serve -c key=value``: stack context overrides, as
``cdk synth -c`` takes them (strings, parsed by the stack's own config loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sandbox.demo
import sandbox.serve
import sandbox.uploads
from sandbox.__main__ import main
from sandbox.core import load_config


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []

    def fake(name: str):
        def run(*args: Any, **kwargs: Any) -> int:
            seen.append((name, kwargs["context"]))
            return 0

        return run

    monkeypatch.setattr(sandbox.uploads, "run_uploads", fake("upload"))
    monkeypatch.setattr(sandbox.demo, "run_demo", fake("demo"))
    monkeypatch.setattr(sandbox.serve, "run_serve", fake("serve"))
    return seen


def test_every_flow_command_takes_context_overrides(calls, tmp_path: Path) -> None:
    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"x")
    runner = CliRunner()
    for argv in (
        ["upload", "-c", "shard_pixels=1000000", "-c", "spot=false", str(scene)],
        ["demo", "-c", "shard_pixels=1000000", "-c", "spot=false"],
        ["serve", "-c", "shard_pixels=1000000", "-c", "spot=false"],
    ):
        result = runner.invoke(main, argv)
        assert result.exit_code == 0, result.output
    assert calls == [
        (name, {"shard_pixels": "1000000", "spot": "false"}) for name in ("upload", "demo", "serve")
    ]


@pytest.mark.parametrize(
    ("item", "says"),
    [("shard_pixels", "expected key=value"), ("no_such_key=1", "not a stack context key")],
)
def test_bad_overrides_are_usage_errors(calls, item: str, says: str) -> None:
    result = CliRunner().invoke(main, ["demo", "-c", item])
    assert result.exit_code == 2 and says in result.output
    assert calls == []


def test_overrides_are_parsed_as_cdk_synth_c_values_are() -> None:
    """Strings, as `cdk synth -c` passes them, over cdk.json's context."""
    config = load_config({"shard_pixels": "1000000", "spot": "false", "max_vcpus": "16"})
    assert (config.shard_pixels, config.spot, config.max_vcpus) == (1_000_000, False, 16)
    assert load_config().shard_pixels == 250_000_000  # cdk.json's
    with pytest.raises(ValueError, match="shard_pixels"):
        load_config({"shard_pixels": "-1"})
