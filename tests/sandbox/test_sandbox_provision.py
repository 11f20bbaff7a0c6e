"""The template's buckets, queues, topics and secrets, made on the embedded AWS."""

from __future__ import annotations

import json
import string

from sandbox.cfn import Resolver
from sandbox.provision import generate_secret, provision
from sandbox.server import MotoServer

TEMPLATE = {
    "Resources": {
        "Data": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
        },
        "Named": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "given-name-bucket"}},
        "Dlq": {"Type": "AWS::SQS::Queue"},
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Secret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True}
            },
        },
    }
}


def test_generate_secret_follows_the_spec() -> None:
    plain = generate_secret({"PasswordLength": 64, "ExcludePunctuation": True})
    assert len(plain) == 64 and set(plain) <= set(string.ascii_letters + string.digits)
    keyed = json.loads(
        generate_secret(
            {
                "GenerateStringKey": "key",
                "SecretStringTemplate": '{"user": "x"}',
                "ExcludeCharacters": "abc",
                "PasswordLength": 40,
            }
        )
    )
    assert keyed["user"] == "x" and len(keyed["key"]) == 40 and not set("abc") & set(keyed["key"])


def test_provision_creates_and_binds_every_resource() -> None:
    with MotoServer() as server:
        r = Resolver(TEMPLATE, server.region, "123456789012", stack_name="Stack")
        s3, sqs, sns, secrets = (server.client(x) for x in ("s3", "sqs", "sns", "secretsmanager"))
        made = provision(TEMPLATE, r, s3=s3, sqs=sqs, sns=sns, secrets=secrets, stack_name="Stack")
        assert made.names["Data"] == "stack-data-123456789012"
        assert made.names["Named"] == "given-name-bucket"
        assert s3.get_bucket_versioning(Bucket="stack-data-123456789012")["Status"] == "Enabled"
        assert "Status" not in s3.get_bucket_versioning(Bucket="given-name-bucket")
        assert r.resolve({"Ref": "Data"}) == "stack-data-123456789012"
        assert r.resolve({"Fn::GetAtt": ["Dlq", "Arn"]}).endswith(":Stack-Dlq")
        topic = r.resolve({"Ref": "Topic"})
        sns.publish(TopicArn=topic, Message="hello", Subject="s")
        got = sqs.receive_message(QueueUrl=made.capture_queues["Topic"], WaitTimeSeconds=1)
        assert json.loads(got["Messages"][0]["Body"])["Message"] == "hello"
        value = secrets.get_secret_value(SecretId=r.resolve({"Ref": "Secret"}))["SecretString"]
        assert len(value) == 48 and value.isalnum()
