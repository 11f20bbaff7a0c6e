"""Intrinsics in the synthesized template resolve to the sandbox's names, or fail loudly."""

from __future__ import annotations

import pytest

from sandbox.cfn import Resolver, TemplateError

TEMPLATE = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
    "Conditions": {"IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}},
    "Mappings": {"Layer": {"eu-west-1": {"Arn": "arn:layer:eu"}}},
    "Resources": {
        "DataBucket": {"Type": "AWS::S3::Bucket"},
        "NotificationTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "notes"}},
        "JobQueue": {"Type": "AWS::Batch::JobQueue"},
        "LinkFunction": {"Type": "AWS::Lambda::Function"},
        "LinkFunctionUrl": {"Type": "AWS::Lambda::Url"},
        "Role": {"Type": "AWS::IAM::Role"},
        "Odd": {"Type": "AWS::Some::Thing"},
    },
}


@pytest.fixture
def resolver() -> Resolver:
    r = Resolver(TEMPLATE, region="eu-west-1", account="123456789012", stack_name="Rd")
    r.bind("DataBucket", "sandbox-data", Arn="arn:aws:s3:::sandbox-data")
    r.bind("LinkFunctionUrl", "ignored", FunctionUrl="http://127.0.0.1:9/")
    return r


def test_bound_and_default_references(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "DataBucket"}) == "sandbox-data"
    assert resolver.resolve({"Fn::GetAtt": ["DataBucket", "Arn"]}) == "arn:aws:s3:::sandbox-data"
    assert resolver.resolve({"Fn::GetAtt": "LinkFunctionUrl.FunctionUrl"}) == "http://127.0.0.1:9/"
    assert (
        resolver.resolve({"Ref": "NotificationTopic"}) == "arn:aws:sns:eu-west-1:123456789012:notes"
    )
    assert resolver.resolve({"Ref": "JobQueue"}) == (
        "arn:aws:batch:eu-west-1:123456789012:job-queue/Rd-JobQueue"
    )
    assert (
        resolver.resolve({"Fn::GetAtt": ["Role", "Arn"]})
        == "arn:aws:iam::123456789012:role/Rd-Role"
    )


def test_functions_and_pseudo_parameters(resolver: Resolver) -> None:
    value = {
        "Fn::Join": ["", ["s3://", {"Ref": "DataBucket"}, "/models/demo/"]],
    }
    assert resolver.resolve(value) == "s3://sandbox-data/models/demo/"
    sub = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${DataBucket}/input/* ${!Literal}"}
    assert resolver.resolve(sub) == "arn:aws:s3:::sandbox-data/input/* ${Literal}"
    sub_vars = {"Fn::Sub": ["${A}-${DataBucket.Arn}", {"A": {"Ref": "AWS::Region"}}]}
    assert resolver.resolve(sub_vars) == "eu-west-1-arn:aws:s3:::sandbox-data"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert resolver.resolve({"Fn::FindInMap": ["Layer", {"Ref": "AWS::Region"}, "Arn"]}) == (
        "arn:layer:eu"
    )
    assert resolver.resolve({"Fn::If": ["IsDev", "yes", "no"]}) == "yes"
    assert resolver.resolve({"A": {"Ref": "AWS::NoValue"}, "B": [1, {"Ref": "AWS::NoValue"}]}) == {
        "B": [1]
    }


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Nowhere"},
        {"Fn::GetAtt": ["Odd", "Whatever"]},
        {"Fn::GetAtt": ["Missing", "Arn"]},
        {"Fn::ImportValue": "x"},
        {"Fn::Join": ["", [{"Fn::Split": [",", "a,b"]}]]},
    ],
)
def test_unresolvable_values_name_what_is_missing(resolver: Resolver, value: dict) -> None:
    with pytest.raises(TemplateError):
        resolver.resolve(value)


def test_bind_refuses_unknown_resources(resolver: Resolver) -> None:
    with pytest.raises(TemplateError):
        resolver.bind("NotThere", "x")
