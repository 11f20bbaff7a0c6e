"""The in-process Lambda runtime, the function URL server and the template reader."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sandbox.cfn import Resolver, TemplateError
from sandbox.lambdas import LambdaRuntime
from sandbox.linkserver import FunctionUrlServer, function_url_event
from sandbox.stack import (
    Function,
    eventbridge_buckets,
    read_function_urls,
    read_functions,
    read_job_definitions,
    read_rules,
)

HANDLER = """
import os
COLD = {"n": 0}
COLD["n"] += 1

def handler(event, context):
    print("log line to the log file")
    if event.get("fail"):
        raise RuntimeError("boom")
    return {"setting": os.environ["SETTING"], "cold": COLD["n"], "region": os.environ["AWS_REGION"],
            "name": context.function_name, "left": context.get_remaining_time_in_millis() > 0,
            "event": event}
"""


@pytest.fixture
def runtime(tmp_path: Path) -> LambdaRuntime:
    code = tmp_path / "code"
    code.mkdir()
    (code / "hello.py").write_text(HANDLER)
    rt = LambdaRuntime(code, {"AWS_DEFAULT_REGION": "eu-west-1"}, tmp_path / "lambda.log")
    yield rt
    rt.close()


def fn(**env: str) -> Function:
    return Function(
        "Hello",
        "Stack-Hello",
        "arn:aws:lambda:eu-west-1:1:function:Stack-Hello",
        "hello.handler",
        dict(env),
        timeout_s=5,
    )


def test_invoke_with_template_environment_and_cold_start(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    first = runtime.invoke(fn(SETTING="a"), {"x": 1})
    second = runtime.invoke(fn(SETTING="b"), {"x": 2})
    assert first.error is None and second.error is None
    assert first.result["setting"] == "a" and second.result["setting"] == "b"
    assert first.result["cold"] == second.result["cold"] == 1  # every invocation a cold start
    assert first.result["region"] == "eu-west-1"
    assert first.result["name"] == "Stack-Hello" and first.result["left"]
    assert "log line to the log file" in (tmp_path / "lambda.log").read_text()
    assert "SETTING" not in os.environ  # the environment is restored


def test_handler_errors_are_recorded(runtime: LambdaRuntime) -> None:
    record = runtime.invoke(fn(SETTING="a"), {"fail": True})
    assert isinstance(record.error, RuntimeError)
    assert record.result is None


def test_function_url_event_shape() -> None:
    event = function_url_event(
        "GET", "/?t=abc.def&x=1&x=2", {"User-Agent": "curl/8"}, b"", "127.0.0.1", "127.0.0.1:9"
    )
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/" and event["rawQueryString"] == "t=abc.def&x=1&x=2"
    assert event["queryStringParameters"] == {"t": "abc.def", "x": "1,2"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["userAgent"] == "curl/8"
    assert event["headers"]["user-agent"] == "curl/8"
    assert event["isBase64Encoded"] is False


def test_function_url_server_round_trip() -> None:
    seen = []

    def invoke(event):
        seen.append(event)
        if event["rawPath"] == "/gone":
            return {
                "statusCode": 410,
                "headers": {"Content-Type": "text/plain"},
                "body": "expired\n",
            }
        return {"statusCode": 200, "body": json.dumps({"t": event["queryStringParameters"]["t"]})}

    server = FunctionUrlServer(invoke).start()
    try:
        with urllib.request.urlopen(server.url + "?t=tok", timeout=10) as resp:  # noqa: S310
            assert json.loads(resp.read()) == {"t": "tok"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "gone", timeout=10)  # noqa: S310
        assert err.value.code == 410 and err.value.read() == b"expired\n"
    finally:
        server.stop()
    assert len(seen) == 2


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
        "Logs": {"Type": "AWS::S3::Bucket"},
        "Queue": {"Type": "AWS::Batch::JobQueue"},
        "Job": {
            "Type": "AWS::Batch::JobDefinition",
            "Properties": {
                "ContainerProperties": {
                    "Command": ["predict", "--key", "Ref::key"],
                    "Environment": [
                        {
                            "Name": "URI",
                            "Value": {"Fn::Join": ["", ["s3://", {"Ref": "Data"}, "/m/"]]},
                        }
                    ],
                    "Image": "img",
                    "ResourceRequirements": [{"Type": "VCPU", "Value": "4"}],
                },
                "Parameters": {"key": ""},
                "RetryStrategy": {"Attempts": 2},
                "Timeout": {"AttemptDurationSeconds": 60},
            },
        },
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "notify.handler",
                "Environment": {"Variables": {"URL": {"Fn::GetAtt": ["Url", "FunctionUrl"]}}},
            },
        },
        "Url": {
            "Type": "AWS::Lambda::Url",
            "Properties": {"TargetFunctionArn": {"Fn::GetAtt": ["Fn", "Arn"]}},
        },
        "Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {"detail": {"bucket": {"name": [{"Ref": "Data"}]}}},
                "Targets": [
                    {
                        "Arn": {"Fn::GetAtt": ["Queue", "JobQueueArn"]},
                        "Id": "T0",
                        "BatchParameters": {"JobDefinition": {"Ref": "Job"}, "JobName": "j"},
                        "InputTransformer": {
                            "InputPathsMap": {"key": "$.detail.object.key"},
                            "InputTemplate": '{"Parameters":{"key":<key>}}',
                        },
                    },
                    {"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "T1"},
                ],
            },
        },
        "Scheduled": {
            "Type": "AWS::Events::Rule",
            "Properties": {"ScheduleExpression": "rate(1 day)"},
        },
    }
}


def test_template_reader_resolves_to_sandbox_names() -> None:
    r = Resolver(TEMPLATE, "eu-west-1", "123456789012", stack_name="S")
    r.bind("Data", "sandbox-data")
    r.bind("Url", "http://127.0.0.1:5/", FunctionUrl="http://127.0.0.1:5/")
    assert eventbridge_buckets(TEMPLATE) == ["Data"]
    (rule,) = read_rules(TEMPLATE, r)
    assert rule.pattern == {"detail": {"bucket": {"name": ["sandbox-data"]}}}
    batch, lam = rule.targets
    assert (batch.kind, batch.job_definition, batch.job_name) == ("batch", "Job", "j")
    assert batch.arn == "arn:aws:batch:eu-west-1:123456789012:job-queue/S-Queue"
    assert batch.transformer.paths == {"key": "$.detail.object.key"}
    assert (lam.kind, lam.resource) == ("lambda", "Fn")
    job = read_job_definitions(TEMPLATE, r)["Job"]
    assert job.command == ("predict", "--key", "Ref::key")
    assert job.environment == {"URI": "s3://sandbox-data/m/"}
    assert (job.retry.attempts, job.timeout_s, job.vcpus) == (2, 60, "4")
    function = read_functions(TEMPLATE, r)["Fn"]
    assert function.handler == "notify.handler"
    assert function.environment == {"URL": "http://127.0.0.1:5/"}
    assert [(u.logical_id, u.function) for u in read_function_urls(TEMPLATE)] == [("Url", "Fn")]


def test_template_reader_refuses_a_batch_target_without_definition() -> None:
    broken = json.loads(json.dumps(TEMPLATE))
    del broken["Resources"]["Rule"]["Properties"]["Targets"][0]["BatchParameters"]
    r = Resolver(broken, "eu-west-1", "1", stack_name="S")
    r.bind("Data", "d")
    with pytest.raises(TemplateError):
        read_rules(broken, r)


def test_closing_the_runtime_points_loggers_back_at_stdout(tmp_path: Path) -> None:
    import logging

    code = tmp_path / "code"
    code.mkdir()
    (code / "logs.py").write_text(
        "import logging, sys\n"
        "log = logging.getLogger('sandbox-test-service')\n"
        "if not log.handlers:\n"
        "    log.addHandler(logging.StreamHandler(sys.stdout))\n"
        "def handler(event, context):\n"
        "    log.warning('hello from the handler')\n"
    )
    rt = LambdaRuntime(code, {}, tmp_path / "lambda.log")
    record = rt.invoke(
        Function(
            "Logs", "S-Logs", "arn:aws:lambda:eu-west-1:1:function:S-Logs", "logs.handler", {}
        ),
        {},
    )
    assert record.error is None
    rt.close()
    assert "hello from the handler" in (tmp_path / "lambda.log").read_text()
    (handler,) = logging.getLogger("sandbox-test-service").handlers
    assert handler.stream is sys.__stdout__


def test_ecs_properties_job_definition_uses_the_essential_container() -> None:
    template = json.loads(json.dumps(TEMPLATE))
    props = template["Resources"]["Job"]["Properties"]
    container = props.pop("ContainerProperties")
    props["EcsProperties"] = {
        "TaskProperties": [
            {
                "Containers": [
                    {"Name": "sidecar", "Essential": False, "Image": "x", "Command": ["sleep"]},
                    {"Name": "main", **container},
                ]
            }
        ]
    }
    r = Resolver(template, "eu-west-1", "1", stack_name="S")
    r.bind("Data", "d")
    job = read_job_definitions(template, r)["Job"]
    assert job.command == ("predict", "--key", "Ref::key")
    assert job.environment == {"URI": "s3://d/m/"}
