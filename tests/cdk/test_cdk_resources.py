"""Storage, encryption, queues, topics, handlers, alarms and outputs."""

from __future__ import annotations

import pytest
from cdk_helpers import props, resources

from cdk import constants as C

pytestmark = pytest.mark.xdist_group("cdk")


def lifecycle(template: dict) -> dict[str, dict]:
    rules = props(template, C.ID_DATA_BUCKET)["LifecycleConfiguration"]["Rules"]
    return {r["Id"]: r for r in rules}


def test_data_bucket_is_private_encrypted_versioned_logged(template: dict) -> None:
    bucket = props(template, C.ID_DATA_BUCKET)
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    (enc,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert enc["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": C.ID_ACCESS_LOG_BUCKET
    }
    assert bucket["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert template["Resources"][C.ID_DATA_BUCKET]["DeletionPolicy"] == "Retain"
    assert not resources(template, "Custom::S3AutoDeleteObjects")


@pytest.mark.parametrize("bucket", [C.ID_DATA_BUCKET, C.ID_ACCESS_LOG_BUCKET])
def test_buckets_refuse_plain_http(template: dict, bucket: str) -> None:
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    (statements,) = policies
    tls = [s for s in statements if s.get("Condition", {}).get("Bool")]
    assert tls and tls[0]["Effect"] == "Deny"
    assert tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_lifecycle_rules(template: dict, config) -> None:
    rules = lifecycle(template)
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }
    assert rules["expire-partial-checkpoints"]["Prefix"] == "partial/"
    assert rules["expire-partial-checkpoints"]["ExpirationInDays"] == config.partial_retention_days
    assert rules["expire-notified-markers"]["Prefix"] == "notified/"
    assert rules["expire-notified-markers"]["ExpirationInDays"] == config.notified_retention_days
    assert "expire-outputs" not in rules


def test_variant_expires_outputs_and_destroys(variant_template: dict) -> None:
    rules = lifecycle(variant_template)
    assert rules["expire-outputs"] == {
        "ExpirationInDays": 90,
        "Id": "expire-outputs",
        "Prefix": "output/",
        "Status": "Enabled",
    }
    assert variant_template["Resources"][C.ID_DATA_BUCKET]["DeletionPolicy"] == "Delete"
    assert resources(variant_template, "Custom::S3AutoDeleteObjects")


def test_queues_are_encrypted_and_tls_only(template: dict) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    assert set(queues) == {
        C.ID_EVENTS_DLQ, C.ID_HANDLER_DLQ, "FailedJobsQueue", C.ID_BLOCKED_JOBS_QUEUE
    }  # fmt: skip
    for q in queues.values():
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    tls_guarded = {
        qref["Ref"]
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for qref in p["Properties"]["Queues"]
    }
    assert tls_guarded == set(queues)


def test_topics_use_the_customer_key_and_tls(template: dict) -> None:
    for topic in (C.ID_TOPIC, C.ID_OPS_TOPIC):
        assert props(template, topic)["KmsMasterKeyId"] == {"Fn::GetAtt": [C.ID_TOPIC_KEY, "Arn"]}
        (policy,) = [
            p for p in resources(template, "AWS::SNS::TopicPolicy").values()
            if p["Properties"]["Topics"] == [{"Ref": topic}]
        ]  # fmt: skip
        st = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert st["Effect"] == "Deny" and st["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }
        # the ops topic also lets this account's alarms publish (test_cdk_first_deploy)
        allows = [x["Sid"] for x in policy["Properties"]["PolicyDocument"]["Statement"][1:]]
        assert allows == (["AllowThisAccountsAlarmsToPublish"] if topic == C.ID_OPS_TOPIC else [])
    assert props(template, C.ID_TOPIC_KEY)["EnableKeyRotation"] is True


def test_subscriptions_and_tenant_filters(variant_template: dict, template: dict) -> None:
    assert not resources(template, "AWS::SNS::Subscription")
    subs = {
        (s["Properties"]["Endpoint"], s["Properties"]["TopicArn"]["Ref"]): s["Properties"]
        for s in resources(variant_template, "AWS::SNS::Subscription").values()
    }
    assert set(subs) == {
        ("team@example.com", C.ID_TOPIC),
        ("a@example.com", C.ID_TOPIC),
        ("shared@example.com", C.ID_TOPIC),
        ("b@example.com", C.ID_TOPIC),
        ("ops@example.com", C.ID_OPS_TOPIC),
    }
    assert "FilterPolicy" not in subs[("team@example.com", C.ID_TOPIC)]
    assert subs[("a@example.com", C.ID_TOPIC)]["FilterPolicy"] == {"tenant": ["tenant-a"]}
    assert subs[("shared@example.com", C.ID_TOPIC)]["FilterPolicy"] == {
        "tenant": ["tenant-a", "tenant-b"]
    }
    assert all(s["Protocol"] == "email" for s in subs.values())


@pytest.mark.parametrize(
    ("function", "handler"),
    [
        (C.ID_NOTIFY_FUNCTION, "notify.handler"),
        (C.ID_REJECT_FUNCTION, "reject.handler"),
        (C.ID_LINK_FUNCTION, "link.handler"),
    ],
)
def test_handlers(template: dict, function: str, handler: str, config) -> None:
    fn = props(template, function)
    assert fn["Handler"] == handler
    assert fn["Runtime"] == "python3.13"
    assert fn["TracingConfig"] == {"Mode": "Active"}
    (layer,) = fn["Layers"]
    joined = "".join(p if isinstance(p, str) else "{}" for p in layer["Fn::Join"][1])
    # the publishing account is chosen per region (test_cdk_first_deploy resolves it)
    assert joined == (
        "arn:{}:lambda:{}:{}:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:"
        f"{config.powertools_layer_version}"
    )
    log_group = fn["LoggingConfig"]["LogGroup"]["Ref"]
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    env = fn["Environment"]["Variables"]
    assert env["RASTERDROP_BUCKET"] == {"Ref": C.ID_DATA_BUCKET}
    assert env["RASTERDROP_LINK_SECRET_ARN"] == {"Ref": C.ID_LINK_SECRET}
    if function != C.ID_LINK_FUNCTION:
        assert fn["Timeout"] == 30  # below the handlers' 90 s marker lease
    assert env["RASTERDROP_OUTPUT_PREFIX"] == "output/"
    assert env["RASTERDROP_LINK_TTL_DAYS"] == "7"
    assert env["POWERTOOLS_SERVICE_NAME"] == "rasterdrop"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Rasterdrop"


def test_notify_environment_is_the_contract(template: dict) -> None:
    env = props(template, C.ID_NOTIFY_FUNCTION)["Environment"]["Variables"]
    assert set(env) == {
        "RASTERDROP_BUCKET", "RASTERDROP_TOPIC_ARN", "RASTERDROP_INPUT_PREFIX",
        "RASTERDROP_OUTPUT_PREFIX", "RASTERDROP_LINK_TTL_DAYS", "RASTERDROP_LINK_BASE_URL",
        "RASTERDROP_LINK_SECRET_ARN", "RASTERDROP_MAX_INPUT_BYTES",
        "RASTERDROP_OUTPUT_RETENTION_DAYS",
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE",
    }  # fmt: skip
    assert env["RASTERDROP_OUTPUT_RETENTION_DAYS"] == "0"
    assert env["RASTERDROP_TOPIC_ARN"] == {"Ref": C.ID_TOPIC}
    assert env["RASTERDROP_LINK_BASE_URL"]["Fn::GetAtt"][1] == "FunctionUrl"
    assert env["RASTERDROP_MAX_INPUT_BYTES"] == str(4 * 1024**3)


def test_async_handlers_dead_letter(template: dict) -> None:
    for function in (C.ID_NOTIFY_FUNCTION, C.ID_REJECT_FUNCTION):
        assert props(template, function)["DeadLetterConfig"] == {
            "TargetArn": {"Fn::GetAtt": [C.ID_HANDLER_DLQ, "Arn"]}
        }


def test_link_endpoint_is_a_public_function_url(template: dict) -> None:
    (url,) = resources(template, "AWS::Lambda::Url").values()
    assert url["Properties"] == {
        "AuthType": "NONE",
        "InvokeMode": "BUFFERED",
        "TargetFunctionArn": {"Fn::GetAtt": [C.ID_LINK_FUNCTION, "Arn"]},
    }
    generated = props(template, C.ID_LINK_SECRET)["GenerateSecretString"]
    assert generated["SecretStringTemplate"] == "{}"
    assert generated["GenerateStringKey"] == "key"
    assert generated["PasswordLength"] >= 32


def test_output_retention_reaches_the_links(variant_template: dict) -> None:
    env = props(variant_template, C.ID_NOTIFY_FUNCTION)["Environment"]["Variables"]
    assert env["RASTERDROP_OUTPUT_RETENTION_DAYS"] == "90"


def test_alarms_go_to_the_ops_topic(template: dict, config) -> None:
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    by_metric: dict[tuple, dict] = {}
    for a in alarms:
        p = a["Properties"]
        assert p["AlarmActions"] == [{"Ref": C.ID_OPS_TOPIC}]
        (dim,) = p["Dimensions"]
        target = dim["Value"].get("Ref") or dim["Value"]["Fn::GetAtt"][0]
        by_metric[(p["Namespace"], p["MetricName"], target)] = p
    assert set(by_metric) == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", C.ID_EVENTS_DLQ),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", C.ID_HANDLER_DLQ),
        ("AWS/Lambda", "Errors", C.ID_NOTIFY_FUNCTION),
        ("AWS/Lambda", "Errors", C.ID_REJECT_FUNCTION),
        ("AWS/Lambda", "Errors", C.ID_LINK_FUNCTION),
        ("AWS/SQS", "NumberOfMessagesSent", "FailedJobsQueue"),
        ("AWS/SQS", "NumberOfMessagesSent", C.ID_BLOCKED_JOBS_QUEUE),
        *(
            ("AWS/Lambda", "Errors", fn)
            for fn in (
                "ApiAuthorizerFunction", "ApiUploadsFunction", "ApiResultsFunction",
                "ApiUsageFunction",
            )
        ),
    }  # fmt: skip
    failed = by_metric[("AWS/SQS", "NumberOfMessagesSent", "FailedJobsQueue")]
    assert failed["Threshold"] == config.failed_jobs_alarm_threshold
    assert failed["Period"] == 3600


def test_outputs(template: dict) -> None:
    out = template["Outputs"]
    assert out["BucketName"]["Value"] == {"Ref": C.ID_DATA_BUCKET}
    assert out["TopicArn"]["Value"] == {"Ref": C.ID_TOPIC}
    assert out["UploadCommand"]["Value"] == {
        "Fn::Join": ["", ["aws s3 cp scene.tif s3://", {"Ref": C.ID_DATA_BUCKET}, "/input/"]]
    }
    assert "LinkUrl" in out and "OpsTopicArn" in out and "JobQueueArn" in out


def test_log_groups_all_have_retention(template: dict) -> None:
    groups = resources(template, "AWS::Logs::LogGroup").values()
    assert groups and all(g["Properties"]["RetentionInDays"] == 30 for g in groups)


def test_notification_ids_survive_the_split_into_units(template: dict) -> None:
    """CDK derives these ids from construct paths; a changed id means CloudFormation replaces
    the resource (a new function URL breaks every emailed link, a new log group loses logs)."""
    derived = {k for k in template["Resources"] if k.startswith("Notifications")}
    assert derived == {
        "NotificationsJobStateAllowEventRuleRasterdropNotificationsNotify2834115BBAA1A94B",
        "NotificationsLinkFunctionUrl427238AC",
        "NotificationsLinkLogs210177CF",
        "NotificationsLinkRoleA81C1158",
        "NotificationsLinkRoleDefaultPolicy5BB130CB",
        "NotificationsLinkinvokefunctionDB0C7166",
        "NotificationsLinkinvokefunctionurl0E824F59",
        "NotificationsNotifyEventInvokeConfig9775D7F1",
        "NotificationsNotifyLogsA71CB412",
        "NotificationsNotifyRole9B139C0C",
        "NotificationsNotifyRoleDefaultPolicy0D213E8F",
        "NotificationsRejectEventInvokeConfig7BD4DF2F",
        "NotificationsRejectLogs9BBA1948",
        "NotificationsRejectRoleBD6AFAC8",
        "NotificationsRejectRoleDefaultPolicy4D727E99",
        "NotificationsTopicPolicyAF92D34A",
    }
    oversize = "RulesOversizeAllowEventRuleRasterdropNotificationsReject39FB34F484247D82"
    assert oversize in template["Resources"]  # depends on the reject function's path
