"""The sandbox's event flow on a hand-made template: routing, transformers, dead letters."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sandbox.core import Options, Sandbox

DLQ_ARN = {"Fn::GetAtt": ["Dlq", "Arn"]}
TEMPLATE = {
    "Resources": {
        "Data": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "NotificationConfiguration": {
                    "EventBridgeConfiguration": {"EventBridgeEnabled": True}
                },
                "VersioningConfiguration": {"Status": "Enabled"},
            },
        },
        "Dlq": {"Type": "AWS::SQS::Queue"},
        "Audit": {"Type": "AWS::SQS::Queue"},
        "Queue": {"Type": "AWS::Batch::JobQueue"},
        "Job": {
            "Type": "AWS::Batch::JobDefinition",
            "Properties": {
                "ContainerProperties": {"Command": ["predict", "--key", "Ref::key"], "Image": "i"},
                "Parameters": {"key": ""},
            },
        },
        "BrokenRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {
                    "source": ["aws.s3"],
                    "detail": {
                        "bucket": {"name": [{"Ref": "Data"}]},
                        "object": {"key": [{"prefix": "bad/"}]},
                    },
                },
                "Targets": [
                    {
                        "Arn": {"Fn::GetAtt": ["Queue", "JobQueueArn"]},
                        "Id": "T0",
                        "BatchParameters": {"JobDefinition": {"Ref": "Job"}, "JobName": "j"},
                        "InputTransformer": {
                            "InputPathsMap": {"key": "$.detail.object.key"},
                            "InputTemplate": '{"Parameters":{"key":<key>}',  # not JSON
                        },
                        "DeadLetterConfig": {"Arn": DLQ_ARN},
                    }
                ],
            },
        },
        "AuditRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {
                    "source": ["aws.s3"],
                    "detail": {"object": {"key": [{"prefix": "audit/"}]}},
                },
                "Targets": [
                    {
                        "Arn": {"Fn::GetAtt": ["Audit", "Arn"]},
                        "Id": "T0",
                        "InputTransformer": {
                            "InputPathsMap": {
                                "key": "$.detail.object.key",
                                "size": "$.detail.object.size",
                            },
                            "InputTemplate": '{"k": <key>, "size": <size>}',
                        },
                    }
                ],
            },
        },
        "DisabledRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "State": "DISABLED",
                "EventPattern": {"source": ["aws.s3"]},
                "Targets": [{"Arn": {"Fn::GetAtt": ["Audit", "Arn"]}, "Id": "T0"}],
            },
        },
    }
}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("core")
    with Sandbox(Options(template=TEMPLATE, work_dir=work)) as sandbox:
        yield sandbox


def drain(sb: Sandbox, logical_id: str) -> list[str]:
    got = sb.sqs.receive_message(QueueUrl=sb.names[logical_id], MaxNumberOfMessages=10)
    return [m["Body"] for m in got.get("Messages", [])]


def test_unparsable_batch_input_is_dead_lettered_and_no_job_starts(sb: Sandbox) -> None:
    event = sb.upload(b"x", "bad/one.tif")
    sb.run_until_idle()
    assert sb.jobs == []
    (delivery,) = [d for d in sb.trace if d.event_id == event["id"]]
    assert delivery.rule == "BrokenRule" and delivery.outcome.startswith("dead-lettered to")
    (body,) = drain(sb, "Dlq")
    assert body.startswith('{"Parameters":{"key":"bad/one.tif"}')


def test_transformed_input_reaches_an_sqs_target(sb: Sandbox) -> None:
    sb.upload(b"12345", "audit/a b+c.txt")
    sb.run_until_idle()
    (body,) = drain(sb, "Audit")
    assert json.loads(body) == {"k": "audit/a b+c.txt", "size": 5}  # disabled rule: no 2nd copy


def test_unmatched_events_and_redelivery(sb: Sandbox) -> None:
    event = sb.upload(b"x", "elsewhere/file.tif")
    sb.run_until_idle()
    sb.put_event(event)
    sb.run_until_idle()
    outcomes = [d.outcome for d in sb.trace if d.event_id == event["id"]]
    assert outcomes == ["no rule matched", "no rule matched"]
