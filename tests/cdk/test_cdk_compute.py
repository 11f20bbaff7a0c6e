"""Batch: compute environment, queue, job definitions (command, env, retries)."""

from __future__ import annotations

import pytest
from cdk_helpers import props, resources

from cdk import constants as C

pytestmark = pytest.mark.xdist_group("cdk")

EXPECTED_RETRY = {
    "Attempts": 3,
    "EvaluateOnExit": [
        {"Action": "EXIT", "OnExitCode": "2"},
        {"Action": "EXIT", "OnExitCode": "3"},
        {"Action": "EXIT", "OnExitCode": "4"},
        {"Action": "EXIT", "OnExitCode": "5"},
        {"Action": "EXIT", "OnReason": "OutOfMemoryError*"},
    ],
}


def env(job: dict) -> dict:
    return {e["Name"]: e["Value"] for e in job["ContainerProperties"]["Environment"]}


def resources_of(job: dict) -> dict:
    return {r["Type"]: r["Value"] for r in job["ContainerProperties"]["ResourceRequirements"]}


def test_predict_command_is_the_contract(template: dict) -> None:
    for job_id in (C.ID_PREDICT_JOB, C.ID_PREDICT_LARGE_JOB):
        assert props(template, job_id)["ContainerProperties"]["Command"] == [
            "predict", "--bucket", "Ref::bucket", "--key", "Ref::key",
            "--version-id", "Ref::version", "--etag", "Ref::etag", "--size", "Ref::size",
            "--part", "Ref::part", "--shards", "Ref::shards",
        ]  # fmt: skip


def test_predict_definitions_are_named_and_know_where_to_submit_their_shards(
    template: dict, config
) -> None:
    """A sharded run's planner submits by the definition's own (fixed) name on its queue."""
    names = {
        C.ID_PREDICT_JOB: f"{config.stack_name}-predict",
        C.ID_PREDICT_LARGE_JOB: f"{config.stack_name}-predict-large",
    }
    for job_id, name in names.items():
        job = props(template, job_id)
        assert job["JobDefinitionName"] == name
        assert job["Parameters"]["part"] == job["Parameters"]["shards"] == ""
        e = env(job)
        assert e["RASTERDROP_JOB_DEFINITION"] == name
        assert e["RASTERDROP_JOB_QUEUE"] == {"Fn::GetAtt": [C.ID_JOB_QUEUE, "JobQueueArn"]}
        assert e["RASTERDROP_SHARD_PIXELS"] == str(config.shard_pixels) == "250000000"
    assert env(props(template, C.ID_PREDICT_JOB))["RASTERDROP_JOB_VCPUS"] == str(config.job_vcpus)
    large = env(props(template, C.ID_PREDICT_LARGE_JOB))
    assert large["RASTERDROP_JOB_VCPUS"] == str(config.large_job_vcpus)
    for job_id in (C.ID_TRAIN_JOB, C.ID_ASSESS_JOB):
        job = props(template, job_id)
        assert "part" not in job["Parameters"] and "JobDefinitionName" not in job
        assert "RASTERDROP_JOB_QUEUE" not in env(job)


def test_train_command_is_the_contract(template: dict) -> None:
    assert props(template, C.ID_TRAIN_JOB)["ContainerProperties"]["Command"] == [
        "train", "--bucket", "Ref::bucket", "--key", "Ref::key", "--version-id", "Ref::version",
    ]  # fmt: skip


@pytest.mark.parametrize("job_id", [C.ID_PREDICT_JOB, C.ID_PREDICT_LARGE_JOB, C.ID_TRAIN_JOB])
def test_job_definition_basics(template: dict, job_id: str) -> None:
    job = props(template, job_id)
    assert job["RetryStrategy"] == EXPECTED_RETRY
    assert job["PlatformCapabilities"] == ["EC2"]
    parts = C.PREDICT_PART_DEFAULTS if job_id != C.ID_TRAIN_JOB else {}
    assert job["Parameters"] == {
        "bucket": {"Ref": C.ID_DATA_BUCKET},
        "key": "",
        "version": "",
        "etag": "",
        "size": "0",
        **parts,
    }
    assert job["ContainerProperties"]["LogConfiguration"]["LogDriver"] == "awslogs"
    image = job["ContainerProperties"]["Image"]["Fn::Sub"]
    assert "container-assets" in image


def test_job_sizes_and_timeouts(template: dict, config) -> None:
    predict = props(template, C.ID_PREDICT_JOB)
    large = props(template, C.ID_PREDICT_LARGE_JOB)
    train = props(template, C.ID_TRAIN_JOB)
    assert resources_of(predict) == {
        "VCPU": str(config.job_vcpus),
        "MEMORY": str(config.job_memory_mib),
    }
    assert resources_of(large) == {
        "VCPU": str(config.large_job_vcpus),
        "MEMORY": str(config.large_job_memory_mib),
    }
    assert int(resources_of(large)["MEMORY"]) > int(resources_of(predict)["MEMORY"])
    assert resources_of(train)["VCPU"] == str(config.train_vcpus)
    assert predict["Timeout"] == {"AttemptDurationSeconds": config.job_timeout_minutes * 60}
    assert train["Timeout"] == {"AttemptDurationSeconds": config.train_timeout_minutes * 60}


def test_job_environment_is_the_contract(template: dict, config) -> None:
    predict = env(props(template, C.ID_PREDICT_JOB))
    assert predict["RASTERDROP_MODEL_URI"] == {
        "Fn::Join": ["", ["s3://", {"Ref": C.ID_DATA_BUCKET}, f"/models/{config.model_name}/"]]
    }
    assert predict["RASTERDROP_INPUT_PREFIX"] == "input/"
    assert predict["RASTERDROP_OUTPUT_PREFIX"] == "output/"
    assert predict["RASTERDROP_PARTIAL_PREFIX"] == "partial/"
    assert predict["RASTERDROP_MODELS_PREFIX"] == "models/"
    assert predict["RASTERDROP_MAX_INPUT_BYTES"] == str(config.max_input_bytes)
    assert predict["RASTERDROP_MAX_PIXELS"] == str(config.max_pixels)
    assert predict["RASTERDROP_LOG_FORMAT"] == "json"
    assert predict["RASTERDROP_MAX_ATTEMPTS"] == str(config.job_attempts) == "3"
    sharding = {"RASTERDROP_SHARD_PIXELS", "RASTERDROP_JOB_QUEUE", "RASTERDROP_JOB_DEFINITION",
                "RASTERDROP_JOB_VCPUS"}  # fmt: skip
    shared = {k: v for k, v in predict.items() if k not in sharding}
    assert env(props(template, C.ID_TRAIN_JOB)) == shared


def test_separate_job_roles(template: dict) -> None:
    role = {
        job: props(template, job)["ContainerProperties"]["JobRoleArn"]
        for job in (C.ID_PREDICT_JOB, C.ID_PREDICT_LARGE_JOB, C.ID_TRAIN_JOB)
    }
    assert role[C.ID_PREDICT_JOB] == {"Fn::GetAtt": [C.ID_PREDICT_ROLE, "Arn"]}
    assert role[C.ID_PREDICT_LARGE_JOB] == {"Fn::GetAtt": [C.ID_PREDICT_ROLE, "Arn"]}
    assert role[C.ID_TRAIN_JOB] == {"Fn::GetAtt": [C.ID_TRAIN_ROLE, "Arn"]}


def test_spot_compute_environment(template: dict, config) -> None:
    (ce,) = resources(template, "AWS::Batch::ComputeEnvironment").values()
    res = ce["Properties"]["ComputeResources"]
    assert ce["Properties"]["Type"] == "managed"
    assert res["Type"] == "SPOT"
    assert res["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert res["MinvCpus"] == 0
    assert res["MaxvCpus"] == config.max_vcpus
    assert res["InstanceTypes"] == ["c6i", "c7i", "m6i", "c6a"]
    assert "LaunchTemplate" in res


def test_on_demand_compute_environment(variant_template: dict) -> None:
    (ce,) = resources(variant_template, "AWS::Batch::ComputeEnvironment").values()
    res = ce["Properties"]["ComputeResources"]
    assert res["Type"] == "EC2"
    assert res["AllocationStrategy"] == "BEST_FIT_PROGRESSIVE"
    assert res["MaxvCpus"] == 16
    assert sorted(res["InstanceTypes"]) == ["c6i", "m6i.2xlarge"]
    assert env(props(variant_template, C.ID_PREDICT_JOB))["RASTERDROP_MODEL_URI"] == {
        "Fn::Join": ["", ["s3://", {"Ref": C.ID_DATA_BUCKET}, "/models/landcover/"]]
    }


def test_instances_imdsv2_encrypted_scratch(template: dict) -> None:
    (lt,) = resources(template, "AWS::EC2::LaunchTemplate").values()
    data = lt["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True


def test_one_queue_feeds_the_environment(template: dict) -> None:
    queue = props(template, C.ID_JOB_QUEUE)
    assert queue["State"] == "ENABLED"
    (order,) = queue["ComputeEnvironmentOrder"]
    assert order["Order"] == 1


def test_network_has_no_nat_and_no_inbound(template: dict) -> None:
    assert not resources(template, "AWS::EC2::NatGateway")
    endpoints = resources(template, "AWS::EC2::VPCEndpoint").values()
    assert [e["Properties"]["VpcEndpointType"] for e in endpoints] == ["Gateway"]
    subnets = resources(template, "AWS::EC2::Subnet").values()
    assert subnets and all(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets)
    groups = resources(template, "AWS::EC2::SecurityGroup").values()
    assert groups and all("SecurityGroupIngress" not in g["Properties"] for g in groups)
    assert not resources(template, "AWS::EC2::SecurityGroupIngress")
    assert resources(template, "AWS::EC2::FlowLog")


@pytest.mark.slow
def test_existing_vpc_is_looked_up_not_created() -> None:
    """vpc_id: no VPC, subnets or flow logs of ours; the environment uses the lookup's subnets."""
    from aws_cdk import Environment

    from cdk.config import load_config
    from cdk.synth import synth_template

    config = load_config({"vpc_id": "vpc-0123456789abcdef0", "vpc_subnet_type": "private"})
    template = synth_template(
        config,
        env=Environment(account="111122223333", region="eu-west-1"),
    )
    assert not resources(template, "AWS::EC2::VPC")
    assert not resources(template, "AWS::EC2::Subnet")
    assert not resources(template, "AWS::EC2::FlowLog")
    (ce,) = resources(template, "AWS::Batch::ComputeEnvironment").values()
    subnets = ce["Properties"]["ComputeResources"]["Subnets"]
    assert subnets and all(isinstance(s, str) for s in subnets)  # from the lookup
