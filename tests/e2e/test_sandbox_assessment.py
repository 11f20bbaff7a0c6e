"""The accuracy loop through the sandbox (the synthesized template's rules, jobs, handlers):
upload → predict (minimum mapping unit, sample.gpkg linked in the email) → label in "QGIS"
→ upload to assessments/ → AssessRule → assess job → email with areas ± intervals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.core import Options, Sandbox
from tests.batch_image.accuracy.conftest import label
from tests.conftest import make_model, make_scene

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sandbox-assess")]

CONTEXT = {
    "model_name": "demo",
    "notification_emails": ["ops@example.com"],
    "accuracy_sample_n": 30,
    "mmu_pixels": 3,
    "class_polygons": True,
}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    tmp = tmp_path_factory.mktemp("assess-data")
    scene, truth = make_scene(tmp, width=60, height=50, seed=4)
    model = make_model(tmp, scene, truth, name="demo")
    work = tmp_path_factory.mktemp("assess-sandbox")
    with Sandbox(Options(context=CONTEXT, work_dir=work)) as sandbox:
        sandbox.publish_model(model, "demo")
        sandbox.run_until_idle()
        yield sandbox, scene


def _assess_rule_key(sb: Sandbox, path: str) -> str:
    """Where a labelled sample goes, from the pattern of the rule that starts assess jobs."""
    for rule in sb.rules:
        for t in rule.targets:
            jd = sb.job_definitions.get(t.job_definition or "")
            if jd is not None and jd.command[:1] == ("assess",):
                wildcard = rule.pattern["detail"]["object"]["key"][0]["wildcard"]
                return wildcard.replace("*", path, 1)
    raise AssertionError("no rule starts an assess job")


def test_predict_then_assess_through_the_template(sb, tmp_path):
    sandbox, scene = sb
    before = len(sandbox.messages())
    sandbox.upload(scene, "input/acme/field.tif")
    sandbox.run_until_idle()
    [ready] = sandbox.messages()[before:]
    assert ready.subject == "rasterdrop: field.tif ready"
    assert "Accuracy sample to label in QGIS (GeoPackage):" in ready.body
    assert "Class polygons (GeoPackage):" in ready.body
    summary = json.loads(
        sandbox.s3.get_object(Bucket=sandbox.bucket, Key="output/acme/field/summary.json")[
            "Body"
        ].read()
    )
    assert summary["postprocess"]["mmu_pixels"] == 3
    assert summary["postprocess"]["polygons"]["written"] is True

    sample = sandbox.download("output/acme/field/sample.gpkg", tmp_path / "sample.gpkg")
    labelled = label(sample, tmp_path / "labelled.gpkg", lambda p: p["map_class"])
    key = _assess_rule_key(sandbox, "acme/field.gpkg".removesuffix(".gpkg"))
    assert key == "assessments/acme/field.gpkg"
    sandbox.upload(labelled, key)
    sandbox.run_until_idle()
    jobs = [j for j in sandbox.jobs if j.definition.logical_id == "AssessJobDefinition"]
    assert [j.status for j in jobs] == ["SUCCEEDED"]
    [done] = sandbox.messages()[before + 1 :]
    assert done.subject == "rasterdrop: assessment of field.gpkg ready"
    assert done.attributes == {"status": "succeeded", "kind": "assess", "tenant": "acme"}
    assert "Accuracy     overall 1.000 +/- 0.000" in done.body
    assert "Areas with intervals (PNG):" in done.body
    keys = set(sandbox.keys("output/acme/field/assessment/"))
    assert "output/acme/field/assessment/assessment.md" in keys


def test_a_sample_nobody_labelled_is_emailed_back_with_what_to_do(sb, tmp_path):
    sandbox, _ = sb
    before = len(sandbox.messages())
    sample = sandbox.download("output/acme/field/sample.gpkg", tmp_path / "sample.gpkg")
    sandbox.upload(sample, "assessments/acme/field.gpkg")
    sandbox.run_until_idle()
    [refused] = sandbox.messages()[before:]
    assert refused.subject == "rasterdrop: assessment of field.gpkg failed (invalid input)"
    assert "none of its 30 points is labelled yet" in " ".join(refused.body.split())
