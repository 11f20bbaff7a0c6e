"""The labelling loop's stack settings: review points for every prediction, and the
promotion gate the train job applies to manifests that do not say."""

from __future__ import annotations

import pytest
from cdk_helpers import props

from batch_image.jobs.settings import Settings, from_env
from cdk import constants as C
from cdk.config import ConfigError, load_config


def _env(template: dict, job: str) -> dict[str, str]:
    return {
        e["Name"]: e["Value"] for e in props(template, job)["ContainerProperties"]["Environment"]
    }


def test_review_points_and_the_gate_reach_the_jobs(template, config):
    for job in (C.ID_PREDICT_JOB, C.ID_TRAIN_JOB):
        env = _env(template, job)
        assert env["RASTERDROP_REVIEW_POINTS"] == str(config.review_points) == "200"
        assert env["RASTERDROP_PROMOTE"] == config.train_promote == "if_better"
        assert float(env["RASTERDROP_PROMOTE_TOLERANCE"]) == config.promote_tolerance == 0.01
    job = from_env(_env(template, C.ID_TRAIN_JOB) | {"RASTERDROP_MODEL_URI": "s3://b/models/m/"})
    assert (job.review_points, job.promote, job.promote_tolerance) == (200, "if_better", 0.01)
    defaults = Settings()  # a job run outside the stack behaves as the stack's default
    assert (defaults.review_points, defaults.promote, defaults.promote_tolerance) == (
        200, "if_better", 0.01,
    )  # fmt: skip


def test_config_validates_the_labelling_keys():
    cfg = load_config({"review_points": 0, "train_promote": "never", "promote_tolerance": "0.05"})
    assert (cfg.review_points, cfg.train_promote, cfg.promote_tolerance) == (0, "never", 0.05)
    with pytest.raises(ConfigError, match="review_points"):
        load_config({"review_points": -1})
    with pytest.raises(ConfigError, match="train_promote"):
        load_config({"train_promote": "sometimes"})
    with pytest.raises(ConfigError, match="promote_tolerance"):
        load_config({"promote_tolerance": 1.5})


def test_the_job_refuses_a_bad_gate_setting():
    from batch_image.errors import ConfigError as JobConfigError

    with pytest.raises(JobConfigError, match="RASTERDROP_PROMOTE='maybe'"):
        from_env({"RASTERDROP_PROMOTE": "maybe"})
    with pytest.raises(JobConfigError, match=r"RASTERDROP_PROMOTE_TOLERANCE=2\.0 is not in 0\.\.1"):
        from_env({"RASTERDROP_PROMOTE_TOLERANCE": "2"})
    assert from_env({"RASTERDROP_PROMOTE": "true"}).promote == "always"
