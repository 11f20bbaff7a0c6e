"""The accuracy assessment in the template: rule, job definition, role, job environment."""

from __future__ import annotations

import pytest
from cdk_helpers import props, rule_patterns
from test_cdk_iam import _list, grants, list_prefixes, role_statements
from test_cdk_rules import S3_RULES, VALUES, matching_rules, s3_event

from cdk import constants as C
from cdk.config import ConfigError, load_config

pytestmark = pytest.mark.xdist_group("cdk")

ALL_S3_RULES = S3_RULES | {C.ID_ASSESS_RULE}


@pytest.fixture(scope="module")
def patterns(template: dict) -> dict:
    return rule_patterns(template, VALUES)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("assessments/field.gpkg", {C.ID_ASSESS_RULE}),
        ("assessments/acme/a b+c/field.GPKG", {C.ID_ASSESS_RULE}),
        ("assessments/field.tif", set()),  # no prediction from an upload here
        ("input/acme/field.gpkg", set()),
        ("output/acme/field/sample.gpkg", set()),  # the job's own sample never loops back
        ("output/acme/field/classes.gpkg", set()),
        ("assessments/field.gpkg.aux.xml", set()),
    ],
)
def test_only_labelled_samples_reach_the_assess_rule(patterns, key, expected):
    assert matching_rules(patterns, s3_event(key, 2000)) & ALL_S3_RULES == expected


def test_the_rule_starts_the_assess_job_on_the_queue_with_the_job_command(template):
    (target,) = props(template, C.ID_ASSESS_RULE)["Targets"]
    assert target["BatchParameters"] == {
        "JobDefinition": {"Ref": C.ID_ASSESS_JOB},
        "JobName": C.JOB_NAME_ASSESS,
    }
    assert target["Arn"] == {"Fn::GetAtt": [C.ID_JOB_QUEUE, "JobQueueArn"]}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    job = props(template, C.ID_ASSESS_JOB)
    assert job["ContainerProperties"]["Command"] == list(C.ASSESS_COMMAND)
    assert job["ContainerProperties"]["JobRoleArn"] == {"Fn::GetAtt": [C.ID_ASSESS_ROLE, "Arn"]}
    predict = props(template, C.ID_PREDICT_JOB)
    assert job["RetryStrategy"] == predict["RetryStrategy"]


def test_the_assess_role_reads_samples_and_maps_and_writes_only_its_folder(template):
    assert grants(template, C.ID_ASSESS_ROLE) == {
        "s3:GetObject": {"assessments/*", "output/*"},
        "s3:GetObjectVersion": {"assessments/*", "output/*"},
        "s3:PutObject": {"output/*/assessment/*"},
        "s3:AbortMultipartUpload": {"output/*/assessment/*"},
        "s3:DeleteObject": {"output/*/assessment/summary.json", "output/*/assessment/error.json"},
    }
    assert sorted(list_prefixes(template, C.ID_ASSESS_ROLE)) == ["assessments/*", "output/*"]
    actions = {a for st in role_statements(template, C.ID_ASSESS_ROLE) for a in _list(st["Action"])}
    assert all(a.startswith("s3:") for a in actions)


def test_post_processing_settings_reach_the_predict_job(template, config):
    env = {
        e["Name"]: e["Value"]
        for e in props(template, C.ID_PREDICT_JOB)["ContainerProperties"]["Environment"]
    }
    assert env["RASTERDROP_MMU_PIXELS"] == str(config.mmu_pixels) == "0"
    assert env["RASTERDROP_MMU_CONNECTIVITY"] == "8"
    assert env["RASTERDROP_CLASS_POLYGONS"] == "false"
    assert env["RASTERDROP_ACCURACY_SAMPLE_N"] == "0"
    assert env["RASTERDROP_PROBABILITIES"] == "false"


def test_config_validates_the_new_keys():
    cfg = load_config({"mmu_pixels": "9", "mmu_connectivity": 4, "class_polygons": "true",
                       "accuracy_sample_n": 300})  # fmt: skip
    assert (cfg.mmu_pixels, cfg.mmu_connectivity, cfg.class_polygons, cfg.accuracy_sample_n) == (
        9, 4, True, 300,
    )  # fmt: skip
    assert load_config({"probabilities": "true"}).probabilities is True
    assert load_config({}).probabilities is False
    with pytest.raises(ConfigError, match="probabilities"):
        load_config({"probabilities": "sometimes"})
    with pytest.raises(ConfigError, match="mmu_connectivity"):
        load_config({"mmu_connectivity": 6})
    with pytest.raises(ConfigError, match="accuracy_sample_n"):
        load_config({"accuracy_sample_n": -1})
