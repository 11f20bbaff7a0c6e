"""A handler that keeps failing: retried as its EventInvokeConfig says, then dead-lettered."""

from __future__ import annotations

import json

from sandbox.core import Options, Sandbox
from tests.sandbox.test_sandbox_core import TEMPLATE

FAILING = {
    "Resources": {
        "Data": TEMPLATE["Resources"]["Data"],
        "HandlerDlq": {"Type": "AWS::SQS::Queue"},
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "failing.handler",
                "Environment": {"Variables": {"BUCKET": {"Ref": "Data"}}},
                "DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["HandlerDlq", "Arn"]}},
            },
        },
        "FnInvokeConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {"FunctionName": {"Ref": "Fn"}, "MaximumRetryAttempts": 1},
        },
        "Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventPattern": {
                    "source": ["aws.s3"],
                    "detail": {"object": {"key": [{"prefix": "in/"}]}},
                },
                "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "T0"}],
            },
        },
    }
}


def test_failing_handler_is_retried_then_dead_lettered(tmp_path, monkeypatch) -> None:
    from sandbox.core import REPO_ROOT

    root = tmp_path / "repo"
    (root / "handlers").mkdir(parents=True)
    (root / "batch_image").mkdir()
    (root / "cdk.json").write_text((REPO_ROOT / "cdk.json").read_text())
    (root / "batch_image" / "Dockerfile").write_text('FROM x\nENTRYPOINT ["python", "-m", "x"]\n')
    (root / "handlers" / "failing.py").write_text(
        "import os\nCALLS = []\n"
        "def handler(event, context):\n"
        "    raise RuntimeError('cannot handle ' + os.environ['BUCKET'])\n"
    )
    with Sandbox(Options(template=FAILING, work_dir=tmp_path / "work"), root=root) as sb:
        event = sb.upload(b"x", "in/a.tif")
        sb.run_until_idle()
        calls = [i for i in sb.lambdas.invocations if i.function == "Fn"]
        assert len(calls) == 2  # one try and MaximumRetryAttempts: 1
        assert all("cannot handle " + sb.bucket in str(c.error) for c in calls)
        (delivery,) = [d for d in sb.trace if d.event_id == event["id"]]
        assert delivery.outcome.startswith("dead-lettered to")
        got = sb.sqs.receive_message(QueueUrl=sb.names["HandlerDlq"])["Messages"]
        assert json.loads(got[0]["Body"])["detail"]["object"]["key"] == "in/a.tif"
