"""`make doctor`: a read-only preflight of the account and region the CDK CLI deploys to.

Each check returns one `Line`: OK, or what to do (WARN: works, but not as configured; FAIL:
the first deploy or the first job will not work). Only Describe/Get/List calls are made.
What a fresh account gets wrong, and the check that catches it:

* no CDK bootstrap (or an old one): `cdk deploy` refuses (`bootstrap`);
* the EC2 vCPU quota: a new account's Spot quota for standard instances is 5 vCPUs
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html), below one
  8-vCPU job: jobs wait RUNNABLE and are cancelled as `no_capacity` (`vcpu quota`);
* instance families not offered in the region (`instance families`);
* no EC2 Spot service-linked role (`spot role`,
  https://docs.aws.amazon.com/batch/latest/userguide/spot_fleet_IAM_role.html);
* Lambda's account concurrency below the link function's reservation + 10 unreserved: the
  deploy fails (`lambda concurrency`,
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
* after the deploy: unconfirmed SNS email subscriptions receive nothing
  (`subscriptions`), and predict has no `models/<model_name>/current.json` (`model`).

The quota and concurrency figures come through `Limits` (Service Quotas and Lambda's
GetAccountSettings, which moto does not serve); everything else is plain boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cdk.config import RasterdropConfig
from ops.outputs import StackNotFound, StackOutputs, stack_outputs

Status = Literal["OK", "WARN", "FAIL"]

BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
MIN_BOOTSTRAP_VERSION = 6  # what CDK v2 templates require (their BootstrapVersion rule)
# Service Quotas codes (ec2): vCPUs of standard (A, C, D, H, I, M, R, T, Z) instances
QUOTA_CODES = {"spot": "L-34B43A08", "on_demand": "L-1216C47A"}
QUOTA_NAMES = {
    "spot": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    "on_demand": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
}
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
LAMBDA_UNRESERVED_MINIMUM = 10


@dataclass(frozen=True)
class Line:
    status: Status
    check: str
    text: str

    def __str__(self) -> str:
        return f"{self.status:<4} {self.check}: {self.text}"


class Limits(Protocol):
    """Account limits behind APIs moto does not serve (Service Quotas, Lambda settings)."""

    def vcpu_quota(self, kind: str) -> float | None:
        """vCPU quota of standard instances, `kind` "spot" or "on_demand"; None: unknown."""

    def lambda_concurrency(self) -> int | None:
        """The account's concurrent executions limit; None: unknown."""


@dataclass
class AwsLimits:
    service_quotas: Any
    lambda_: Any

    def vcpu_quota(self, kind: str) -> float | None:
        try:
            quota = self.service_quotas.get_service_quota(
                ServiceCode="ec2", QuotaCode=QUOTA_CODES[kind]
            )
        except Exception:
            return None
        return float(quota["Quota"]["Value"])

    def lambda_concurrency(self) -> int | None:
        try:
            return int(self.lambda_.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
        except Exception:
            return None


@dataclass(frozen=True)
class Clients:
    sts: Any
    ssm: Any
    ec2: Any
    iam: Any
    cloudformation: Any
    sns: Any
    s3: Any


# ------------------------------------------------------------------ the checks
def check_bootstrap(ssm: Any, account: str, region: str) -> Line:
    fix = f"run `npx aws-cdk@2 bootstrap aws://{account}/{region}`"
    try:
        value = ssm.get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
    except Exception:
        return Line("FAIL", "bootstrap", f"not bootstrapped ({BOOTSTRAP_PARAMETER} missing): {fix}")
    if int(value) < MIN_BOOTSTRAP_VERSION:
        return Line("FAIL", "bootstrap", f"version {value} < {MIN_BOOTSTRAP_VERSION}: {fix}")
    return Line("OK", "bootstrap", f"CDK bootstrap version {value}")


def largest_job_vcpus(cfg: RasterdropConfig) -> int:
    sizes = [cfg.job_vcpus, cfg.train_vcpus]
    if cfg.large_jobs_enabled:
        sizes.append(cfg.large_job_vcpus)
    return max(sizes)


def check_vcpu_quota(limits: Limits, cfg: RasterdropConfig) -> Line:
    kind = "spot" if cfg.spot else "on_demand"
    name = f"{QUOTA_NAMES[kind]} ({QUOTA_CODES[kind]})"
    quota = limits.vcpu_quota(kind)
    raise_it = (
        f"request {cfg.max_vcpus}: `aws service-quotas request-service-quota-increase "
        f"--service-code ec2 --quota-code {QUOTA_CODES[kind]} --desired-value {cfg.max_vcpus}`"
    )
    if quota is None:
        return Line("WARN", "vcpu quota", f"could not read {name}; make sure it is >= "
                    f"max_vcpus {cfg.max_vcpus}")  # fmt: skip
    largest = largest_job_vcpus(cfg)
    if quota < largest:
        return Line(
            "FAIL",
            "vcpu quota",
            f"{name} is {quota:g} vCPUs, below the largest job ({largest} vCPUs): such jobs "
            f"never start (cancelled as no_capacity); {raise_it}"
            + ("" if not cfg.spot else ", or deploy with -c spot=false"),
        )
    if quota < cfg.max_vcpus:
        return Line(
            "WARN",
            "vcpu quota",
            f"{name} is {quota:g} vCPUs, below max_vcpus {cfg.max_vcpus}: jobs queue beyond "
            f"that; {raise_it}",
        )
    return Line("OK", "vcpu quota", f"{name} is {quota:g} vCPUs >= max_vcpus {cfg.max_vcpus}")


def offered_types(ec2: Any) -> set[str]:
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    return {
        o["InstanceType"]
        for page in paginator.paginate(LocationType="region")
        for o in page["InstanceTypeOfferings"]
    }


def check_instance_families(ec2: Any, cfg: RasterdropConfig, region: str) -> Line:
    offered = offered_types(ec2)
    families = {t.split(".")[0] for t in offered}
    missing = [
        t for t in cfg.instance_types if (t not in offered if "." in t else t not in families)
    ]
    if not missing:
        return Line(
            "OK", "instance families", f"{', '.join(cfg.instance_types)} offered in {region}"
        )
    kept = [t for t in cfg.instance_types if t not in missing]
    if not kept:
        return Line(
            "FAIL",
            "instance families",
            f"none of {', '.join(cfg.instance_types)} is offered in {region}: set "
            "instance_types to families the region has (e.g. c5, m5)",
        )
    return Line(
        "WARN",
        "instance families",
        f"{', '.join(missing)} not offered in {region} (Batch uses {', '.join(kept)}); "
        "drop them from instance_types",
    )


def check_spot_role(iam: Any, cfg: RasterdropConfig) -> Line:
    if not cfg.spot:
        return Line("OK", "spot role", "not needed (spot: false)")
    try:
        iam.get_role(RoleName=SPOT_ROLE)
    except Exception:
        return Line(
            "FAIL",
            "spot role",
            f"{SPOT_ROLE} is missing: run `aws iam create-service-linked-role "
            "--aws-service-name spot.amazonaws.com` once per account",
        )
    return Line("OK", "spot role", f"{SPOT_ROLE} exists")


def check_lambda_concurrency(limits: Limits, cfg: RasterdropConfig) -> Line:
    limit = limits.lambda_concurrency()
    need = cfg.link_reserved_concurrency + LAMBDA_UNRESERVED_MINIMUM
    if limit is None:
        return Line(
            "WARN", "lambda concurrency", f"could not read the account limit (need >= {need})"
        )
    if limit < need:
        return Line(
            "FAIL",
            "lambda concurrency",
            f"account limit {limit} < {need} (link_reserved_concurrency "
            f"{cfg.link_reserved_concurrency} + {LAMBDA_UNRESERVED_MINIMUM} unreserved): the "
            "deploy fails; request a Lambda concurrency increase in Service Quotas or lower "
            "link_reserved_concurrency",
        )
    return Line("OK", "lambda concurrency", f"account limit {limit} >= {need}")


def check_subscriptions(sns: Any, topic_arn: str, label: str) -> Line:
    subs = []
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    for page in paginator.paginate(TopicArn=topic_arn):
        subs.extend(page["Subscriptions"])
    emails = [s for s in subs if s.get("Protocol") == "email"]
    pending = [s["Endpoint"] for s in emails if s["SubscriptionArn"] == "PendingConfirmation"]
    check = f"{label} subscriptions"
    if not emails:
        return Line("WARN", check, "no email subscription: nobody receives these messages")
    if pending:
        return Line(
            "FAIL",
            check,
            f"not confirmed: {', '.join(pending)}: open the 'AWS Notification - Subscription "
            "Confirmation' email and click 'Confirm subscription'",
        )
    return Line("OK", check, f"{len(emails)} confirmed")


def check_model(s3: Any, bucket: str, cfg: RasterdropConfig) -> Line:
    key = f"models/{cfg.model_name}/current.json"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception:
        return Line(
            "FAIL", "model", f"s3://{bucket}/{key} is missing: predict jobs fail until "
            "`make bootstrap-model` (or a training manifest with promote: true) writes it"
        )  # fmt: skip
    return Line("OK", "model", f"s3://{bucket}/{key} exists")


# ------------------------------------------------------------------ the run
def doctor(clients: Clients, limits: Limits, cfg: RasterdropConfig) -> list[Line]:
    """Every check, in the order a person fixes them."""
    account = clients.sts.get_caller_identity()["Account"]
    region = clients.ec2.meta.region_name
    lines = [Line("OK", "target", f"account {account}, region {region}, stack {cfg.stack_name}")]
    runs: list[Callable[[], Line]] = [
        lambda: check_bootstrap(clients.ssm, account, region),
        lambda: check_vcpu_quota(limits, cfg),
        lambda: check_instance_families(clients.ec2, cfg, region),
        lambda: check_spot_role(clients.iam, cfg),
        lambda: check_lambda_concurrency(limits, cfg),
    ]
    lines += [run() for run in runs]
    lines += _after_deploy(clients, cfg)
    return lines


def _after_deploy(clients: Clients, cfg: RasterdropConfig) -> list[Line]:
    try:
        outputs: StackOutputs = stack_outputs(clients.cloudformation, cfg.stack_name)
    except StackNotFound:
        return [
            Line(
                "WARN",
                "stack",
                f"{cfg.stack_name} is not deployed yet: after "
                "`npx aws-cdk@2 deploy`, run `make doctor` again",
            )
        ]
    return [
        Line("OK", "stack", f"{cfg.stack_name} deployed, bucket {outputs.bucket}"),
        check_subscriptions(clients.sns, outputs.topic_arn, "notification"),
        check_subscriptions(clients.sns, outputs.ops_topic_arn, "ops"),
        check_model(clients.s3, outputs.bucket, cfg),
    ]


def failed(lines: Iterable[Line]) -> bool:
    return any(line.status == "FAIL" for line in lines)
