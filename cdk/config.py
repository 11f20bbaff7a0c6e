"""The stack's configuration: CDK context read once into a frozen, validated object.

`app.py` collects every key of `DEFAULTS` from the CDK context (cdk.json or
`-c key=value`) and calls `load_config`; constructs only ever see the typed
`RasterdropConfig`. Values given on the command line arrive as strings, so
each field is coerced from a string too (JSON for lists and maps). A bad value
raises `ConfigError` naming the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cdk import constants as C


class ConfigError(ValueError):
    """A context value is missing, of the wrong type or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"cdk context key {key!r}: {message}")
        self.key = key


# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
_EMAIL = re.compile(r"^[^@\s\"'<>]+@[^@\s\"'<>]+\.[A-Za-z]{2,}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*(\.[0-9]*[a-z]+[a-z0-9]*)?$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/*-]+$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
GIB = 1024**3


@dataclass(frozen=True)
class TenantPlan:
    """One API tenant: its usage plan (API Gateway enforces rate, burst and the daily
    quota of upload requests) and the addresses its notifications go to."""

    rate_per_s: float = 1.0
    burst: int = 5
    uploads_per_day: int = 100
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class RasterdropConfig:
    """Every knob of the stack. Defaults are the values in `DEFAULTS` (and cdk.json)."""

    stack_name: str = C.DEFAULT_STACK_NAME
    notification_emails: tuple[str, ...] = ()
    tenant_routing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ops_email: str | None = None
    instance_types: tuple[str, ...] = ("c6i", "c7i", "m6i", "c6a")
    spot: bool = True
    max_vcpus: int = 64
    job_vcpus: int = 4
    job_memory_mib: int = 7168
    large_job_vcpus: int = 8
    large_job_memory_mib: int = 30720
    large_job_threshold_bytes: int | None = 1 * GIB
    train_vcpus: int = 8
    train_memory_mib: int = 30720
    job_timeout_minutes: int = 120
    train_timeout_minutes: int = 360
    job_attempts: int = 3
    max_input_bytes: int = 4 * GIB
    max_pixels: int = 2_000_000_000
    shard_pixels: int = 250_000_000
    link_ttl_days: int = 7
    model_name: str = "demo"
    partial_retention_days: int = 3
    notified_retention_days: int = 30
    output_retention_days: int | None = None
    access_log_retention_days: int = 90
    log_retention_days: int = 30
    removal_policy: str = "retain"
    vpc_id: str | None = None
    vpc_subnet_type: str = "public"
    allowed_uploader_arns: tuple[str, ...] = ()
    failed_jobs_alarm_threshold: int = 5
    powertools_layer_version: int = 27
    mmu_pixels: int = 0
    mmu_connectivity: int = 8
    class_polygons: bool = False
    accuracy_sample_n: int = 0
    probabilities: bool = False
    review_points: int = 200
    train_promote: str = "if_better"
    promote_tolerance: float = 0.01
    runnable_timeout_minutes: int = 60
    link_reserved_concurrency: int = 10
    api: bool = True
    tenants: Mapping[str, TenantPlan] = field(default_factory=dict)
    api_upload_url_seconds: int = 300
    api_waf: bool = False
    api_waf_rate_per_5min: int = 1000

    @property
    def notification_routing(self) -> dict[str, tuple[str, ...]]:
        """tenant -> addresses: `tenant_routing` plus each API tenant's `emails`."""
        routing = {t: tuple(e) for t, e in self.tenant_routing.items()}
        for tenant, plan in self.tenants.items():
            if plan.emails:
                merged = (*routing.get(tenant, ()), *plan.emails)
                routing[tenant] = tuple(dict.fromkeys(merged))
        return routing

    @property
    def large_jobs_enabled(self) -> bool:
        return self.large_job_threshold_bytes is not None

    @property
    def destroy_on_delete(self) -> bool:
        return self.removal_policy == "destroy"

    @property
    def all_emails(self) -> tuple[str, ...]:
        routed = [e for emails in self.notification_routing.values() for e in emails]
        return tuple(dict.fromkeys([*self.notification_emails, *routed]))


DEFAULTS: dict[str, Any] = {
    f.name: (f.default_factory() if callable(f.default_factory) else f.default)  # type: ignore[misc]
    for f in fields(RasterdropConfig)
}
DEFAULTS = {k: (list(v) if isinstance(v, tuple) else v) for k, v in DEFAULTS.items()}
CONTEXT_KEYS: tuple[str, ...] = tuple(DEFAULTS)


# ---------------------------------------------------------------- coercion
def _parse_json_if_str(key: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(key, f"expected JSON, got {value!r} ({exc.msg})") from None
    return value


def _int(key: str, value: Any, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(key, f"expected an integer, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(key, f"must be {bounds}, got {value}")
    return value


_OFF = ("", "null", "none", "off", "false", "0")


def _optional_int(key: str, value: Any, *, low: int, high: int | None = None) -> int | None:
    """`null`, `0`, `false` or "off" switch the feature off (CDK reads JSON null as missing)."""
    if value is None or value is False or value == 0:
        return None
    if isinstance(value, str) and value.strip().lower() in _OFF:
        return None
    return _int(key, value, low=low, high=high)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(key, f"expected true or false, got {value!r}")


def _str(key: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(key, f"expected {what}, got {value!r}")
    return value


def _optional_str(key: str, value: Any, pattern: re.Pattern[str], what: str) -> str | None:
    if value is None or value == "":
        return None
    return _str(key, value, pattern, what)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return value.lower()


PROMOTE_CHOICES = ("if_better", "always", "never")


def _fraction(key: str, value: Any) -> float:
    """A number in 0..1 (a kappa difference)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected a number between 0 and 1, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(key, f"expected a number between 0 and 1, got {value!r}") from None
    if not 0 <= number <= 1:
        raise ConfigError(key, f"must be between 0 and 1, got {value!r}")
    return number


def _str_list(key: str, value: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    value = _parse_json_if_str(key, value)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list of {what}, got {value!r}")
    items = tuple(_str(key, item, pattern, what) for item in value)
    if len(set(items)) != len(items):
        raise ConfigError(key, "contains duplicates")
    return items


def _tenant_routing(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    value = _parse_json_if_str(key, value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a map of tenant -> list of emails, got {value!r}")
    routing: dict[str, tuple[str, ...]] = {}
    for tenant, emails in value.items():
        _str(key, tenant, _TENANT, "tenant names of letters, digits, '.', '_', '-'")
        routing[tenant] = _str_list(key, emails, _EMAIL, "email addresses")
        if not routing[tenant]:
            raise ConfigError(key, f"tenant {tenant!r} has no email addresses")
    return routing


_TENANT_FIELDS = {"rate_per_s", "burst", "uploads_per_day", "emails"}


def _tenants(key: str, value: Any) -> dict[str, TenantPlan]:
    """`{tenant: {rate_per_s, burst, uploads_per_day, emails}}` (every field optional)."""
    value = _parse_json_if_str(key, value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a map of tenant -> plan, got {value!r}")
    plans: dict[str, TenantPlan] = {}
    for tenant, plan in value.items():
        _str(key, tenant, _TENANT, "tenant names of letters, digits, '.', '_', '-'")
        if not isinstance(plan, dict):
            raise ConfigError(key, f"tenant {tenant!r}: expected a map, got {plan!r}")
        unknown = sorted(set(plan) - _TENANT_FIELDS)
        if unknown:
            raise ConfigError(key, f"tenant {tenant!r}: unknown fields {unknown}")
        default = TenantPlan()
        plans[tenant] = TenantPlan(
            rate_per_s=_rate(f"{key}.{tenant}.rate_per_s", plan.get("rate_per_s", 1.0)),
            burst=_int(f"{key}.{tenant}.burst", plan.get("burst", default.burst), low=1, high=5000),
            uploads_per_day=_int(
                f"{key}.{tenant}.uploads_per_day",
                plan.get("uploads_per_day", default.uploads_per_day),
                low=1,
                high=10_000_000,
            ),
            emails=_str_list(f"{key}.{tenant}.emails", plan.get("emails", []), _EMAIL, "emails"),
        )
    return plans


def _rate(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected a number of requests per second, got {value!r}")
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError(key, f"expected a number of requests per second, got {value!r}") from None
    if not 0 < rate <= 10_000:
        raise ConfigError(key, f"must be in (0, 10000], got {rate}")
    return rate


_Parser = Callable[[str, Any], Any]
_PARSERS: dict[str, _Parser] = {
    "stack_name": lambda k, v: _str(k, v, _STACK_NAME, "a CloudFormation stack name"),
    "notification_emails": lambda k, v: _str_list(k, v, _EMAIL, "email addresses"),
    "tenant_routing": _tenant_routing,
    "ops_email": lambda k, v: _optional_str(k, v, _EMAIL, "an email address or null"),
    "instance_types": lambda k, v: _str_list(
        k, v, _INSTANCE_TYPE, "EC2 instance types or families (c6i, m6i.2xlarge)"
    ),
    "spot": _bool,
    "max_vcpus": lambda k, v: _int(k, v, low=1, high=10_000),
    "job_vcpus": lambda k, v: _int(k, v, low=1, high=192),
    "job_memory_mib": lambda k, v: _int(k, v, low=512, high=1_536_000),
    "large_job_vcpus": lambda k, v: _int(k, v, low=1, high=192),
    "large_job_memory_mib": lambda k, v: _int(k, v, low=512, high=1_536_000),
    "large_job_threshold_bytes": lambda k, v: _optional_int(k, v, low=1),
    "train_vcpus": lambda k, v: _int(k, v, low=1, high=192),
    "train_memory_mib": lambda k, v: _int(k, v, low=512, high=1_536_000),
    "job_timeout_minutes": lambda k, v: _int(k, v, low=1, high=14 * 24 * 60),
    "train_timeout_minutes": lambda k, v: _int(k, v, low=1, high=14 * 24 * 60),
    "job_attempts": lambda k, v: _int(k, v, low=1, high=10),
    "max_input_bytes": lambda k, v: _max_input_bytes(k, v),
    "max_pixels": lambda k, v: _int(k, v, low=1),
    "shard_pixels": lambda k, v: _int(k, v, low=0),
    "link_ttl_days": lambda k, v: _int(k, v, low=1, high=365),
    "model_name": lambda k, v: _str(k, v, _MODEL_NAME, "a model name"),
    "partial_retention_days": lambda k, v: _int(k, v, low=1, high=365),
    "notified_retention_days": lambda k, v: _int(k, v, low=1, high=3650),
    "output_retention_days": lambda k, v: _optional_int(k, v, low=1, high=36500),
    "access_log_retention_days": lambda k, v: _int(k, v, low=1, high=3650),
    "log_retention_days": lambda k, v: _log_retention(k, v),
    "removal_policy": lambda k, v: _choice(k, v, ("retain", "destroy")),
    "vpc_id": lambda k, v: _optional_str(k, v, _VPC_ID, "a VPC id (vpc-...) or null"),
    "vpc_subnet_type": lambda k, v: _choice(k, v, ("public", "private")),
    "allowed_uploader_arns": lambda k, v: _str_list(k, v, _IAM_PRINCIPAL_ARN, "IAM role/user ARNs"),
    "failed_jobs_alarm_threshold": lambda k, v: _int(k, v, low=1),
    "powertools_layer_version": lambda k, v: _int(k, v, low=1),
    "mmu_pixels": lambda k, v: _int(k, v, low=0, high=1_000_000),
    "mmu_connectivity": lambda k, v: _connectivity(k, v),
    "class_polygons": _bool,
    "accuracy_sample_n": lambda k, v: _int(k, v, low=0, high=100_000),
    "probabilities": _bool,
    "review_points": lambda k, v: _int(k, v, low=0, high=10_000),
    "train_promote": lambda k, v: _choice(k, v, PROMOTE_CHOICES),
    "promote_tolerance": lambda k, v: _fraction(k, v),
    # Batch's JobStateTimeLimitAction.maxTimeSeconds: 600..86400 (API_JobStateTimeLimitAction)
    "runnable_timeout_minutes": lambda k, v: _int(k, v, low=10, high=1440),
    "link_reserved_concurrency": lambda k, v: _int(k, v, low=1, high=1000),
    "api": _bool,
    "tenants": _tenants,
    "api_upload_url_seconds": lambda k, v: _int(k, v, low=30, high=3600),
    "api_waf": _bool,
    "api_waf_rate_per_5min": lambda k, v: _int(k, v, low=10, high=2_000_000_000),
}
assert set(_PARSERS) == set(CONTEXT_KEYS), "every config field needs a parser"


def _max_input_bytes(key: str, value: Any) -> int:
    size = _int(key, value, low=1)
    if size > C.EVENTBRIDGE_NUMERIC_MAX:
        raise ConfigError(
            key,
            f"must be at most {C.EVENTBRIDGE_NUMERIC_MAX}: EventBridge numeric matching "
            f"(used to route by size) stops at 5e9, got {size}",
        )
    return size


def _connectivity(key: str, value: Any) -> int:
    n = _int(key, value, low=4, high=8)
    if n not in (4, 8):
        raise ConfigError(key, f"must be 4 or 8, got {n}")
    return n


def _log_retention(key: str, value: Any) -> int:
    days = _int(key, value, low=1)
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError(key, f"CloudWatch Logs retention must be one of {LOG_RETENTION_DAYS}")
    return days


def _is_instance_family(family: str) -> bool:
    from aws_cdk import aws_ec2 as ec2

    return family.upper() in ec2.InstanceClass.__members__


def _cross_checks(cfg: RasterdropConfig) -> None:
    threshold = cfg.large_job_threshold_bytes
    if threshold is not None and threshold >= cfg.max_input_bytes:
        raise ConfigError(
            "large_job_threshold_bytes",
            f"must be below max_input_bytes ({cfg.max_input_bytes}), got {threshold}",
        )
    for key in ("job_vcpus", "large_job_vcpus", "train_vcpus"):
        if getattr(cfg, key) > cfg.max_vcpus:
            raise ConfigError(key, f"exceeds max_vcpus ({cfg.max_vcpus}): no job could start")
    if not cfg.instance_types:
        raise ConfigError("instance_types", "needs at least one instance type or family")
    unknown = [t for t in cfg.instance_types if "." not in t and not _is_instance_family(t)]
    if unknown:
        raise ConfigError("instance_types", f"unknown EC2 instance families {unknown}")
    if cfg.vpc_id is None and cfg.vpc_subnet_type != "public":
        raise ConfigError("vpc_subnet_type", "'private' needs vpc_id (the new VPC has no NAT)")


def load_config(context: Mapping[str, Any]) -> RasterdropConfig:
    """Validate `context` (missing keys take defaults) into a `RasterdropConfig`.

    Unknown keys are ignored (CDK itself keeps feature flags in the context).
    """
    values: dict[str, Any] = {}
    for key in CONTEXT_KEYS:
        raw = context.get(key)
        values[key] = _PARSERS[key](key, DEFAULTS[key] if raw is None else raw)
    cfg = RasterdropConfig(**values)
    _cross_checks(cfg)
    return cfg


def read_context(get: Callable[[str], Any]) -> dict[str, Any]:
    """Collect every config key through `get` (e.g. `app.node.try_get_context`)."""
    return {key: value for key in CONTEXT_KEYS if (value := get(key)) is not None}


DESCRIPTIONS: dict[str, str] = {
    "stack_name": "CloudFormation stack name",
    "notification_emails": "addresses that receive every notification (SNS email, confirm once)",
    "tenant_routing": (
        "tenant → addresses; they receive only messages whose `tenant` attribute (first "
        "segment of `input/<tenant>/…`) matches"
    ),
    "ops_email": "address for alarms (dead letters, failed jobs, Lambda errors); null: none",
    "instance_types": "EC2 families (Batch picks sizes) or exact types, e.g. `m6i.2xlarge`",
    "spot": (
        "Spot instances (SPOT_PRICE_CAPACITY_OPTIMIZED); false: on-demand (BEST_FIT_PROGRESSIVE)"
    ),
    "max_vcpus": "cap on the compute environment (min is always 0: nothing runs when idle)",
    "job_vcpus": "vCPUs of a predict job",
    "job_memory_mib": "memory of a predict job (MiB)",
    "large_job_vcpus": "vCPUs of a predict job for a large input",
    "large_job_memory_mib": "memory of a predict job for a large input (MiB)",
    "large_job_threshold_bytes": (
        'inputs above this size use the large job definition; 0/null/"off": one job size'
    ),
    "train_vcpus": "vCPUs of a train job",
    "train_memory_mib": "memory of a train job (MiB)",
    "job_timeout_minutes": "per-attempt timeout of predict jobs",
    "train_timeout_minutes": "per-attempt timeout of train jobs",
    "job_attempts": "Batch attempts per job (spot reclaims and host errors are retried)",
    "max_input_bytes": (
        "inputs above this size get a rejection notice, no compute spent (at most 5e9: "
        "EventBridge numeric matching)"
    ),
    "max_pixels": "width × height cap checked by the job (exit 2 above it)",
    "shard_pixels": (
        "inputs with more pixels are split over an AWS Batch array job (ceil(pixels / "
        "shard_pixels) children, each about 5 minutes on a 4-vCPU job) and assembled by a "
        "dependent job; 0: never split"
    ),
    "link_ttl_days": "lifetime of the signed links in notification emails",
    "model_name": "model used by predict jobs: `models/<name>/current.json`",
    "partial_retention_days": "lifecycle expiry of `partial/` checkpoints",
    "notified_retention_days": "lifecycle expiry of `notified/` exactly-once markers",
    "output_retention_days": "lifecycle expiry of `output/`; null: keep forever",
    "access_log_retention_days": "expiry of S3 server access logs",
    "log_retention_days": "CloudWatch Logs retention (jobs, Lambdas, VPC flow logs)",
    "removal_policy": (
        "`retain`: bucket, key and secret survive `cdk destroy`; `destroy`: deleted, objects too"
    ),
    "vpc_id": "existing VPC to run in (looked up; needs account/region); null: a new NAT-free VPC",
    "vpc_subnet_type": "`public` or `private` (with NAT) subnets of the existing VPC",
    "allowed_uploader_arns": (
        "IAM principals allowed to write `input/` (bucket policy deny for others); []: any "
        "principal with IAM permission"
    ),
    "failed_jobs_alarm_threshold": "alarm when this many jobs fail within an hour",
    "powertools_layer_version": "version of the public Powertools for AWS Lambda v3 layer",
    "mmu_pixels": (
        "minimum mapping unit: class patches under this many pixels merge into their "
        "neighbours (GDAL sieve); 0: off; a model card's `postprocess` entry wins"
    ),
    "mmu_connectivity": "4 or 8: which neighbours make a patch for the minimum mapping unit",
    "class_polygons": "also write `classes.gpkg`, the class map as polygons with a QGIS style",
    "accuracy_sample_n": (
        "points of the accuracy sample `sample.gpkg` each prediction draws (linked in the "
        "email; label it and upload as `assessments/<path>.gpkg`); 0: none"
    ),
    "probabilities": (
        "classification: also write `probabilities.tif`, every class's probability (0-100, "
        "one band per class, from the same model pass)"
    ),
    "review_points": (
        "points where the model is least sure that each prediction writes to `review.gpkg` "
        "(linked in the email; label them in QGIS and add the file to the training manifest "
        "as a point sample); 0: none"
    ),
    "train_promote": (
        "what a training whose manifest says nothing about `promote` does with `current.json`: "
        "`if_better` (moves it only when the new version's blocked-CV kappa is not lower than "
        "the current version's by more than `promote_tolerance`), `always` or `never`"
    ),
    "promote_tolerance": (
        "how much lower (kappa, 0 to 1) a new version's blocked-CV kappa may be than the "
        "current version's and still be promoted by `if_better`"
    ),
    "runnable_timeout_minutes": (
        "a job left RUNNABLE this long for want of capacity (quota, instance types, max_vcpus) "
        "is cancelled and its uploader emailed (`no_capacity`); 10 to 1440"
    ),
    "link_reserved_concurrency": (
        "reserved concurrency of the public link function, so a flood of clicks cannot "
        "starve notify and reject (the account needs this + 10 unreserved)"
    ),
    "api": "the tenants' HTTPS API (API Gateway, Lambda authorizer, usage plans); false: none",
    "tenants": (
        "API tenants: `{name: {rate_per_s, burst, uploads_per_day, emails}}`; each gets a usage "
        "plan (429 above rate/burst and above the daily upload quota) and its uploads land in "
        "`input/<name>/`; `emails` are added to its notification routing"
    ),
    "api_upload_url_seconds": "lifetime of the presigned POST an upload request returns",
    "api_waf": "attach a WAF web ACL with a per-IP rate-based rule to the API (costs money)",
    "api_waf_rate_per_5min": "requests per client IP per 5 minutes the WAF rule allows",
}
assert set(DESCRIPTIONS) == set(CONTEXT_KEYS), "every config key needs a description"


def configuration_table() -> str:
    """Markdown table of every context key, its default and meaning (kept in the README)."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key in CONTEXT_KEYS:
        default = json.dumps(DEFAULTS[key], ensure_ascii=False)
        rows.append(f"| `{key}` | `{default}` | {DESCRIPTIONS[key]} |")
    return "\n".join(rows)
