"""cfn-lint and cdk-nag on the synthesized stack; `app.py` as the CLI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from cdk_helpers import VARIANT_CONTEXT
from cfnlint.api import ManualArgs, lint

from cdk import nag
from cdk.config import load_config
from cdk.synth import REPO_ROOT, build_app, synth_template

pytestmark = pytest.mark.xdist_group("cdk")

REGIONS = ["us-east-1", "eu-west-1", "eu-central-1"]
# cfn-lint judges Lambda runtime deprecation (E2533/W2531) against today's date; the lint
# runs as of the day these pins were chosen, so it does not start failing on a calendar
# date. Moving this date forward is part of upgrading aws-cdk-lib and cfn-lint.
LINT_AS_OF = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("which", ["template", "variant_template"])
def test_cfn_lint_reports_no_errors(which: str, request: pytest.FixtureRequest) -> None:
    template = request.getfixturevalue(which)
    with time_machine.travel(LINT_AS_OF, tick=False):
        matches = lint(json.dumps(template), config=ManualArgs(regions=REGIONS))
    errors = [f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}" for m in matches
              if m.rule.id.startswith("E")]  # fmt: skip
    assert errors == []


def test_acknowledgements_all_have_reasons_and_targets(config) -> None:
    acks = nag.acknowledgements(config)
    assert all(len(a.reason) > 40 for a in acks)
    assert len({(a.path, a.rule) for a in acks}) == len(acks)
    _, stack = build_app(config, nag=False)
    assert nag.unused_paths(stack, config) == []


def test_an_unacknowledged_finding_fails_synthesis(config, monkeypatch: pytest.MonkeyPatch) -> None:
    """cdk-nag is really enforcing: drop one acknowledgement and synthesis fails."""
    real = nag.acknowledgements

    def all_but_secret_rotation(cfg):
        return [a for a in real(cfg) if a.rule != "AwsSolutions-SMG4"]

    monkeypatch.setattr(nag, "acknowledgements", all_but_secret_rotation)
    with pytest.raises(RuntimeError, match=r"ValidationFailed[\s\S]*AwsSolutions-SMG4"):
        synth_template(config)


def test_variant_acknowledgements_cover_the_auto_delete_provider(variant_template: dict) -> None:
    # variant_template synthesized with cdk-nag enforcing; the provider exists in it
    assert any(k.startswith("CustomS3AutoDeleteObjects") for k in variant_template["Resources"])
    assert load_config(VARIANT_CONTEXT).destroy_on_delete


def run_app(tmp_path: Path, context: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out"),
           "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}  # fmt: skip
    if context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def test_app_rejects_a_bad_context_value_naming_the_key(tmp_path: Path) -> None:
    result = run_app(tmp_path, {"max_vcpus": "lots"})
    assert result.returncode == 2
    assert "'max_vcpus'" in result.stderr and "expected an integer" in result.stderr


@pytest.mark.slow
def test_app_synthesizes_a_cloud_assembly(tmp_path: Path) -> None:
    result = run_app(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "cdk.out"
    template = json.loads((out / "Rasterdrop.template.json").read_text())
    assert "DataBucket" in template["Resources"]
    assert (out / "manifest.json").exists()
    assets = json.loads((out / "Rasterdrop.assets.json").read_text())
    assert assets["dockerImages"] and assets["files"]
