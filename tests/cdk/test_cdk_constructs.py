"""The notification units on their own: each construct in a bare `Stack()`, asserted on
what it synthesizes (no app, no config, no cdk-nag: seconds, not a full synth)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from cdk import constants as C
from cdk.notifications.environment import LINK_VARIABLES, HandlerRuntime, HandlerSettings
from cdk.notifications.job_state import JobStateRule
from cdk.notifications.link import LinkEndpoint
from cdk.notifications.senders import NotificationSenders
from cdk.notifications.topic import NotificationTopic

QUEUE_ARN = "arn:aws:batch:eu-west-1:111122223333:job-queue/q"
LAYER_ARN = "arn:aws:lambda:eu-west-1:017000801446:layer:Powertools:1"


def runtime(stack: Stack) -> HandlerRuntime:
    return HandlerRuntime(
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
        layer=lambda_.LayerVersion.from_layer_version_arn(stack, "Layer", LAYER_ARN),
        log_retention=logs.RetentionDays.ONE_WEEK,
    )


def settings() -> HandlerSettings:
    return HandlerSettings(
        bucket_name="data-bucket",
        secret_arn="arn:aws:secretsmanager:eu-west-1:111122223333:secret:link",
        link_ttl_days=3,
        max_input_bytes=1000,
        output_retention_days=None,
    )


def policy_statements(template: Template, role_logical_id: str) -> list[dict]:
    """Statements of the identity policies attached to one role."""
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_topic_subscribes_each_address_once_with_its_tenants() -> None:
    stack = Stack()
    NotificationTopic(
        stack,
        "Topic",
        key=kms.Key(stack, "Key"),
        emails=["team@example.com"],
        tenant_routing={"a": ["a@example.com", "team@example.com"], "b": ["a@example.com"]},
        removal_policy=RemovalPolicy.RETAIN,
    )
    template = Template.from_stack(stack)
    topic = template.find_resources("AWS::SNS::Topic")
    assert list(topic) == [C.ID_TOPIC]
    assert "KmsMasterKeyId" in topic[C.ID_TOPIC]["Properties"]
    subs = {
        s["Properties"]["Endpoint"]: s["Properties"]
        for s in template.find_resources("AWS::SNS::Subscription").values()
    }
    assert sorted(subs) == ["a@example.com", "team@example.com"]
    assert "FilterPolicy" not in subs["team@example.com"]
    assert subs["a@example.com"]["FilterPolicy"] == {"tenant": ["a", "b"]}
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                    )
                ]
            }
        },
    )
    secret = template.find_resources("AWS::SecretsManager::Secret")
    assert list(secret) == [C.ID_LINK_SECRET]
    assert secret[C.ID_LINK_SECRET]["Properties"]["GenerateSecretString"]["PasswordLength"] == 64


def test_link_endpoint_is_public_reads_output_only_and_keeps_its_ids() -> None:
    stack = Stack()
    secret = secretsmanager.Secret(stack, "Secret")
    endpoint = LinkEndpoint(
        stack,
        "Link",
        bucket=s3.Bucket(stack, "Bucket"),
        secret=secret,
        runtime=runtime(stack),
        settings=settings(),
    )
    template = Template.from_stack(stack)
    assert endpoint.node.default_child is endpoint.function
    (url,) = template.find_resources("AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "NONE"
    assert url["Properties"]["InvokeMode"] == "BUFFERED"
    fn = template.find_resources("AWS::Lambda::Function")[C.ID_LINK_FUNCTION]["Properties"]
    assert tuple(fn["Environment"]["Variables"]) == LINK_VARIABLES
    assert fn["Timeout"] == C.LINK_LAMBDA_TIMEOUT_SECONDS
    assert C.ID_LINK_LOGS in template.find_resources("AWS::Logs::LogGroup")
    assert C.ID_LINK_ROLE_POLICY in template.find_resources("AWS::IAM::Policy")
    statements = {
        st.get("Sid") or st["Action"][0].split(":")[0]: st
        for st in policy_statements(template, C.ID_LINK_ROLE)
    }
    assert set(statements) == {
        "WriteOwnLogs", "xray", "ReadResults", "ListResultsSoMissingObjectsAre404",
        "secretsmanager",
    }  # fmt: skip
    assert statements["ReadResults"]["Resource"]["Fn::Join"][1][-1] == "/output/*"
    assert statements["ListResultsSoMissingObjectsAre404"]["Condition"] == {
        "StringLike": {"s3:prefix": ["output/*"]}
    }
    assert sorted(statements["secretsmanager"]["Action"]) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]


def test_senders_publish_and_only_notify_signs_links() -> None:
    stack = Stack()
    topic = sns.Topic(stack, "T")
    secret = secretsmanager.Secret(stack, "Secret")
    NotificationSenders(
        stack,
        "Senders",
        bucket=s3.Bucket(stack, "Bucket"),
        topic=topic,
        secret=secret,
        link_url="https://link.example",
        runtime=runtime(stack),
        settings=settings(),
        dead_letter_queue=sqs.Queue(stack, "Dlq"),
    )
    template = Template.from_stack(stack)
    functions = template.find_resources("AWS::Lambda::Function")
    assert set(functions) == {C.ID_NOTIFY_FUNCTION, C.ID_REJECT_FUNCTION}
    for logical_id in functions:
        env = functions[logical_id]["Properties"]["Environment"]["Variables"]
        assert env["RASTERDROP_LINK_BASE_URL"] == "https://link.example"
        assert env["RASTERDROP_MAX_INPUT_BYTES"] == "1000"
        assert env["RASTERDROP_OUTPUT_RETENTION_DAYS"] == "0"
        assert "TargetArn" in functions[logical_id]["Properties"]["DeadLetterConfig"]
    template.resource_count_is("AWS::Lambda::EventInvokeConfig", 2)
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"MaximumRetryAttempts": C.LAMBDA_ASYNC_RETRY_ATTEMPTS},
    )
    roles = {
        logical_id: [st.get("Sid") or st["Action"] for st in policy_statements(template, role)]
        for logical_id, role in (
            (lid, fn["Properties"]["Role"]["Fn::GetAtt"][0]) for lid, fn in functions.items()
        )
    }

    def reads_secret(entries: list) -> bool:
        return any("secretsmanager:GetSecretValue" in entry for entry in entries)

    assert reads_secret(roles[C.ID_NOTIFY_FUNCTION])
    assert not reads_secret(roles[C.ID_REJECT_FUNCTION])
    assert "sns:Publish" in roles[C.ID_REJECT_FUNCTION]
    assert "ReadResultsRunReportsAndMarkers" not in roles[C.ID_REJECT_FUNCTION]


def test_job_state_rule_sends_finished_jobs_of_its_queues_to_the_function() -> None:
    stack = Stack()
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    JobStateRule(
        stack,
        "JobState",
        job_queues=[batch.JobQueue.from_job_queue_arn(stack, "Queue", QUEUE_ARN)],
        function=function,
        dead_letter_queue=sqs.Queue(stack, "Dlq"),
    )
    template = Template.from_stack(stack)
    rule = template.find_resources("AWS::Events::Rule")[C.ID_JOB_STATE_RULE]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {"status": ["SUCCEEDED", "FAILED"], "jobQueue": [QUEUE_ARN]},
    }
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": C.EVENT_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": C.EVENT_MAX_AGE_HOURS * 3600,
    }
    assert "Arn" in target["DeadLetterConfig"]
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"},
    )
