"""What a fresh account does to the stack: stuck jobs, alarms that can publish, deliveries
every service can make, the AMI, scratch, partitions and the public function's limit."""

from __future__ import annotations

from typing import Any

import pytest
from cdk_helpers import props, resources
from resource_policies import (
    Request,
    allows,
    key_policy,
    logical_id_of,
    resource_policy,
    rule_queue_deliveries,
)

import sandbox.cfn
from cdk import constants as C
from cdk.compute import root_volume_gib
from cdk.config import RasterdropConfig
from sandbox.cfn import Resolver

pytestmark = pytest.mark.xdist_group("cdk")

ACCOUNT = "111122223333"
REGION = "eu-west-1"
TEMPLATES = ["template", "variant_template"]


def resolver(template: dict[str, Any]) -> Resolver:
    return Resolver(template, region=REGION, account=ACCOUNT)


# ------------------------------------------------------------------ stuck in RUNNABLE
@pytest.mark.parametrize("name", TEMPLATES)
def test_queue_cancels_jobs_stuck_for_capacity(name: str, request: pytest.FixtureRequest) -> None:
    template = request.getfixturevalue(name)
    config: RasterdropConfig = request.getfixturevalue(name.replace("template", "config"))
    actions = props(template, C.ID_JOB_QUEUE)["JobStateTimeLimitActions"]
    assert {a["Reason"] for a in actions} == {
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    }
    for a in actions:
        assert a["Action"] == "CANCEL"
        assert a["State"] == "RUNNABLE"
        assert a["MaxTimeSeconds"] == config.runnable_timeout_minutes * 60
        assert 600 <= a["MaxTimeSeconds"] <= 86_400  # the API's bounds


def test_blocked_queue_events_alarm_ops(template: dict) -> None:
    rule = props(template, C.ID_JOB_QUEUE_BLOCKED_RULE)
    assert rule["EventPattern"]["detail-type"] == ["Batch Job Queue Blocked"]
    assert rule["EventPattern"]["detail"]["jobQueue"] == [
        {"Fn::GetAtt": [C.ID_JOB_QUEUE, "JobQueueArn"]}
    ]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [C.ID_BLOCKED_JOBS_QUEUE, "Arn"]}
    alarms = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [C.ID_BLOCKED_JOBS_QUEUE, "QueueName"]}}]
    ]
    (alarm,) = alarms
    assert alarm["MetricName"] == "NumberOfMessagesSent"
    assert alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == [{"Ref": C.ID_OPS_TOPIC}]


# ------------------------------------------------------------------ alarms reach people
@pytest.mark.parametrize("name", TEMPLATES)
def test_every_alarm_action_can_publish(name: str, request: pytest.FixtureRequest) -> None:
    template = request.getfixturevalue(name)
    r = resolver(template)
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 7
    for alarm_id, alarm in alarms.items():
        actions = alarm["Properties"].get("AlarmActions", [])
        assert actions, f"{alarm_id} has no action: it would reach nobody"
        for action in actions:
            topic_arn = r.resolve(action)
            topic_id = logical_id_of(template, r, action)
            publish = Request(
                "cloudwatch.amazonaws.com",
                "sns:Publish",
                topic_arn,
                {
                    "aws:SourceAccount": ACCOUNT,
                    "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_id}",
                },
            )
            statements = resource_policy(template, r, topic_arn)
            assert allows(statements, publish), f"{alarm_id} cannot publish to {topic_id}"
            # ... and only this account's alarms may
            foreign = Request(
                publish.service,
                publish.action,
                topic_arn,
                {
                    "aws:SourceAccount": "999999999999",
                    "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:999999999999:alarm:x",
                },
            )
            assert not allows(statements, foreign)
            key = props(template, topic_id).get("KmsMasterKeyId")
            if key is not None:
                key_id = logical_id_of(template, r, key, "Arn")
                for kms_action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    use = Request("cloudwatch.amazonaws.com", kms_action, "*", publish.context)
                    assert allows(key_policy(template, r, key_id), use), (
                        f"{alarm_id}: CloudWatch may not use {key_id} ({kms_action})"
                    )


def test_without_the_allow_no_alarm_could_publish(template: dict) -> None:
    """The check can fail: the TLS deny alone (CDK's enforce_ssl policy) allows no one."""
    r = resolver(template)
    arn = r.resolve({"Ref": C.ID_OPS_TOPIC})
    deny_only = [s for s in resource_policy(template, r, arn) if s["Effect"] == "Deny"]
    publish = Request(
        "cloudwatch.amazonaws.com",
        "sns:Publish",
        arn,
        {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:a",
        },
    )
    assert deny_only and not allows(deny_only, publish)


@pytest.mark.parametrize("name", TEMPLATES)
def test_eventbridge_can_deliver_to_every_queue_of_ours(
    name: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(name)
    r = resolver(template)
    deliveries = list(rule_queue_deliveries(template))
    assert len(deliveries) >= 8  # every rule's DLQ plus the two audit queues
    for rule_id, queue in deliveries:
        queue_id = logical_id_of(template, r, queue, "Arn")
        send = Request(
            "events.amazonaws.com",
            "sqs:SendMessage",
            r.resolve(queue),
            {"aws:SourceArn": r.get_att(rule_id, "Arn"), "aws:SourceAccount": ACCOUNT},
        )
        queue_ref = r.ref(queue_id)
        assert allows(resource_policy(template, r, queue_ref), send), (
            f"rule {rule_id} cannot send to {queue_id}"
        )
        assert props(template, queue_id)["SqsManagedSseEnabled"] is True  # no key policy needed


def test_lambda_async_failures_reach_the_handler_dlq(template: dict) -> None:
    """Lambda sends failed async invocations with the function's role (not a queue policy)."""
    r = resolver(template)
    for fn_id in (C.ID_NOTIFY_FUNCTION, C.ID_REJECT_FUNCTION):
        fn = props(template, fn_id)
        queue_arn = r.resolve(fn["DeadLetterConfig"]["TargetArn"])
        role_id = fn["Role"]["Fn::GetAtt"][0]
        statements = [
            r.resolve(st)
            for res in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in res["Properties"]["Roles"]
            for st in res["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert any(
            "sqs:SendMessage" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            and queue_arn in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
            for s in statements
        ), fn_id


@pytest.mark.parametrize("name", TEMPLATES)
def test_s3_can_write_access_logs(name: str, request: pytest.FixtureRequest) -> None:
    template = request.getfixturevalue(name)
    r = resolver(template)
    logging = props(template, C.ID_DATA_BUCKET)["LoggingConfiguration"]
    log_bucket = r.resolve(logging["DestinationBucketName"])
    key = f"arn:aws:s3:::{log_bucket}/{r.resolve(logging.get('LogFilePrefix', ''))}2026-12-02-log"
    write = Request(
        "logging.s3.amazonaws.com",
        "s3:PutObject",
        key,
        {
            "aws:SourceArn": r.get_att(C.ID_DATA_BUCKET, "Arn"),
            "aws:SourceAccount": ACCOUNT,
        },
    )
    statements = resource_policy(template, r, log_bucket)
    assert allows(statements, write)
    other = Request(
        write.service,
        write.action,
        key,
        {**write.context, "aws:SourceArn": "arn:aws:s3:::elsewhere"},
    )
    assert not allows(statements, other)


# ------------------------------------------------------------------ compute
def test_compute_environment_pins_amazon_linux_2023(template: dict) -> None:
    resources_ = props(template, C.ID_COMPUTE_ENVIRONMENT)["ComputeResources"]
    assert resources_["Ec2Configuration"] == [{"ImageType": "ECS_AL2023"}]


@pytest.mark.parametrize("name", TEMPLATES)
def test_root_volume_holds_every_job_an_instance_can_run(
    name: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(name)
    cfg: RasterdropConfig = request.getfixturevalue(name.replace("template", "config"))
    (lt,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    (device,) = lt["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"]
    size = device["Ebs"]["VolumeSize"]
    smallest = min(cfg.job_vcpus, cfg.large_job_vcpus, cfg.train_vcpus)
    jobs = cfg.max_vcpus // smallest
    per_job_bytes = cfg.max_input_bytes + 2 * cfg.max_pixels
    assert (size - 30) * 1024**3 >= jobs * per_job_bytes
    assert size == root_volume_gib(
        max_vcpus=cfg.max_vcpus,
        smallest_job_vcpus=smallest,
        max_input_bytes=cfg.max_input_bytes,
        max_pixels=cfg.max_pixels,
    )


def test_root_volume_rule_values() -> None:
    # defaults: 16 jobs x ceil((4 GiB + 4e9 B) / GiB) = 16 x 8 + 30
    assert (
        root_volume_gib(
            max_vcpus=64,
            smallest_job_vcpus=4,
            max_input_bytes=4 * 1024**3,
            max_pixels=2_000_000_000,
        )
        == 158
    )
    assert root_volume_gib(max_vcpus=4, smallest_job_vcpus=8, max_input_bytes=1, max_pixels=1) == 31
    assert (
        root_volume_gib(
            max_vcpus=10_000, smallest_job_vcpus=1, max_input_bytes=5 * 10**9, max_pixels=10**10
        )
        == 16_384
    )


# ------------------------------------------------------------------ partitions, limits
@pytest.mark.parametrize(
    ("partition", "region", "account"),
    [
        ("aws", "eu-west-1", "017000801446"),
        ("aws", "us-east-1", "017000801446"),
        ("aws-cn", "cn-north-1", "498634801083"),
        ("aws-us-gov", "us-gov-west-1", "165093116878"),
        ("aws-us-gov", "us-gov-east-1", "165087284144"),
    ],
)
def test_powertools_layer_arn_in_each_partition(
    template: dict, monkeypatch: pytest.MonkeyPatch, partition: str, region: str, account: str
) -> None:
    monkeypatch.setattr(sandbox.cfn, "PARTITION", partition)
    r = Resolver(template, region=region, account=ACCOUNT)
    for fn_id in (C.ID_NOTIFY_FUNCTION, C.ID_REJECT_FUNCTION, C.ID_LINK_FUNCTION):
        (layer,) = r.resolve(props(template, fn_id)["Layers"])
        assert layer == (
            f"arn:{partition}:lambda:{region}:{account}:layer:"
            "AWSLambdaPowertoolsPythonV3-python313-x86_64:27"
        )


def test_link_function_has_reserved_concurrency(template: dict, config: RasterdropConfig) -> None:
    assert props(template, C.ID_LINK_FUNCTION)["ReservedConcurrentExecutions"] == (
        config.link_reserved_concurrency
    )
    for fn_id in (C.ID_NOTIFY_FUNCTION, C.ID_REJECT_FUNCTION):
        assert "ReservedConcurrentExecutions" not in props(template, fn_id)


# ------------------------------------------------------------------ keys the event cannot carry
UNCARRIABLE = ['input/acme/say "hi".tif', "input/acme/C:\\scans\\a.tif", "input/acme/tab\there.tif"]


def object_created(key: str, bucket: str) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1234, "etag": "e", "version-id": "v"},
        },
    }


@pytest.mark.parametrize("key", UNCARRIABLE)
def test_reject_sees_keys_the_job_cannot_be_given(template: dict, key: str) -> None:
    """The predict rule's transformer cannot pass such a key faithfully (EventBridge does not
    escape), while the reject function gets the raw event for the same upload."""
    from cdk_helpers import matching_rules, rule_patterns

    from sandbox.transformer import TransformError, render_batch_parameters

    bucket = "data-bucket"
    patterns = rule_patterns(template, {C.ID_DATA_BUCKET: bucket})
    event = object_created(key, bucket)
    assert matching_rules(patterns, event) == {C.ID_PREDICT_RULE, C.ID_OVERSIZE_RULE}
    transformer = props(template, C.ID_PREDICT_RULE)["Targets"][0]["InputTransformer"]
    try:
        params = render_batch_parameters(
            transformer["InputPathsMap"], transformer["InputTemplate"], event, escape="none"
        )
    except TransformError:
        params = None  # invalid JSON: the delivery fails and is dead-lettered
    assert params is None or params["key"] != key
    (reject_target,) = props(template, C.ID_OVERSIZE_RULE)["Targets"]
    assert "InputTransformer" not in reject_target and "Input" not in reject_target
    assert reject_target["Arn"] == {"Fn::GetAtt": [C.ID_REJECT_FUNCTION, "Arn"]}
