"""Config: defaults, cdk.json, coercion of `-c` strings, errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest
from cdk_helpers import cdk_json_context

from cdk.config import CONTEXT_KEYS, DEFAULTS, ConfigError, RasterdropConfig, load_config


def test_cdk_json_lists_every_key_with_its_default() -> None:
    assert cdk_json_context() == DEFAULTS
    assert set(CONTEXT_KEYS) == {f.name for f in dataclasses.fields(RasterdropConfig)}


def test_defaults() -> None:
    cfg = load_config({})
    assert cfg.link_ttl_days == 7
    assert cfg.spot is True
    assert cfg.max_input_bytes == 4 * 1024**3
    assert cfg.large_job_threshold_bytes == 1 * 1024**3
    assert cfg.removal_policy == "retain"
    assert cfg.instance_types == ("c6i", "c7i", "m6i", "c6a")
    assert cfg.output_retention_days is None
    assert cfg.vpc_id is None


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config({}).spot = False  # type: ignore[misc]


def test_command_line_strings_are_coerced() -> None:
    cfg = load_config(
        {
            "spot": "false",
            "max_vcpus": "128",
            "notification_emails": '["a@example.com"]',
            "tenant_routing": '{"t1": ["b@example.com"]}',
            "large_job_threshold_bytes": "off",
            "output_retention_days": "30",
        }
    )
    assert cfg.spot is False
    assert cfg.max_vcpus == 128
    assert cfg.notification_emails == ("a@example.com",)
    assert cfg.tenant_routing == {"t1": ("b@example.com",)}
    assert cfg.large_job_threshold_bytes is None and not cfg.large_jobs_enabled
    assert cfg.output_retention_days == 30


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("max_vcpus", "lots", "expected an integer"),
        ("max_vcpus", 0, "between 1 and"),
        ("spot", "maybe", "true or false"),
        ("notification_emails", ["not-an-email"], "email"),
        ("notification_emails", "[oops", "expected JSON"),
        ("tenant_routing", {"bad tenant!": ["a@example.com"]}, "tenant"),
        ("tenant_routing", {"t": []}, "no email"),
        ("ops_email", "ops", "email"),
        ("instance_types", ["c6i", "zz9"], "unknown EC2 instance families"),
        ("instance_types", [], "at least one"),
        ("removal_policy", "snapshot", "retain, destroy"),
        ("log_retention_days", 31, "retention must be one of"),
        ("vpc_id", "vpc-XYZ", "VPC id"),
        ("vpc_subnet_type", "private", "needs vpc_id"),
        ("allowed_uploader_arns", ["someone"], "ARN"),
        ("large_job_threshold_bytes", 4 * 1024**3, "below max_input_bytes"),
        ("max_input_bytes", 5_000_000_001, "EventBridge numeric matching"),
        ("job_vcpus", 128, "exceeds max_vcpus"),
        ("link_ttl_days", 0, "between 1 and 365"),
        ("model_name", "../etc", "model name"),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_key(
    key: str, value: object, fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({key: value})
    assert err.value.key == key
    assert repr(key) in str(err.value)
    assert fragment in str(err.value)


def test_unknown_context_keys_are_ignored() -> None:
    assert load_config({"@aws-cdk/core:foo": True, "unrelated": 1}) == load_config({})


def test_all_emails_deduplicates_across_tenants() -> None:
    cfg = load_config(
        {
            "notification_emails": ["a@example.com"],
            "tenant_routing": {"t1": ["a@example.com", "b@example.com"], "t2": ["b@example.com"]},
        }
    )
    assert cfg.all_emails == ("a@example.com", "b@example.com")


def test_readme_documents_every_key_with_its_default() -> None:
    from cdk.config import configuration_table
    from cdk.synth import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert configuration_table() in readme
