"""The same intent through aws_cdk.assertions (Template / Match) on the session template."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from cdk import constants as C

pytestmark = pytest.mark.xdist_group("cdk")


@pytest.fixture(scope="module")
def tpl(template: dict) -> Template:
    return Template.from_json(template)


def test_resource_counts(tpl: Template) -> None:
    tpl.resource_count_is("AWS::S3::Bucket", 2)
    tpl.resource_count_is("AWS::Batch::ComputeEnvironment", 1)
    tpl.resource_count_is("AWS::Batch::JobQueue", 1)
    tpl.resource_count_is("AWS::Batch::JobDefinition", 4)  # predict, large, train, assess
    tpl.resource_count_is("AWS::Lambda::Function", 7)  # notify, reject, link + the API's four
    tpl.resource_count_is("AWS::SNS::Topic", 2)
    tpl.resource_count_is("AWS::Events::Rule", 10)  # + blocked, assess, PredictVrt, VrtKeyCheck
    tpl.resource_count_is("AWS::CloudWatch::Alarm", 11)  # + blocked jobs, + the API's 4 functions
    tpl.resource_count_is("AWS::EC2::NatGateway", 0)
    tpl.resource_count_is("Custom::S3BucketNotifications", 0)


def test_bucket_sends_events_to_eventbridge(tpl: Template) -> None:
    tpl.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "NotificationConfiguration": {
                        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                }
            ),
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_predict_rule_uses_batch_parameters(tpl: Template) -> None:
    tpl.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"source": ["aws.s3"], "detail-type": ["Object Created"]}
            ),
            "Targets": [
                Match.object_like(
                    {
                        "BatchParameters": {
                            "JobDefinition": {"Ref": C.ID_PREDICT_JOB},
                            "JobName": C.JOB_NAME_PREDICT,
                        },
                        "InputTransformer": {
                            "InputPathsMap": Match.object_like({"key": "$.detail.object.key"}),
                            "InputTemplate": Match.string_like_regexp(r'"key":<key>'),
                        },
                        "DeadLetterConfig": Match.any_value(),
                        "RetryPolicy": Match.any_value(),
                    }
                )
            ],
        },
    )


def test_job_definition_retry_strategy(tpl: Template) -> None:
    tpl.has_resource_properties(
        "AWS::Batch::JobDefinition",
        {
            "RetryStrategy": {
                "Attempts": 3,
                "EvaluateOnExit": Match.array_with(
                    [
                        {"Action": "EXIT", "OnExitCode": "2"},
                        {"Action": "EXIT", "OnExitCode": "3"},
                        {"Action": "EXIT", "OnExitCode": "5"},
                    ]
                ),
            },
            "ContainerProperties": Match.object_like(
                {"Command": Match.array_with(["predict", "Ref::key", "Ref::version"])}
            ),
        },
    )


def test_topics_encrypted(tpl: Template) -> None:
    topics = tpl.find_resources(
        "AWS::SNS::Topic", {"Properties": {"KmsMasterKeyId": Match.any_value()}}
    )
    assert set(topics) == {C.ID_TOPIC, C.ID_OPS_TOPIC}


def test_function_url_without_iam_auth(tpl: Template) -> None:
    tpl.has_resource_properties("AWS::Lambda::Url", {"AuthType": "NONE"})
    tpl.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE", "Principal": "*"},
    )


def test_outputs(tpl: Template) -> None:
    tpl.has_output("BucketName", {"Value": {"Ref": C.ID_DATA_BUCKET}})
    tpl.has_output("TopicArn", {"Value": {"Ref": C.ID_TOPIC}})
    tpl.has_output("UploadCommand", Match.any_value())
