"""The sandbox's EventBridge matcher against the documented content-filtering semantics."""

from __future__ import annotations

import pytest

from sandbox.eventpattern import PatternError, matches

S3 = {
    "version": "0",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "resources": ["arn:aws:s3:::data-bucket"],
    "detail": {
        "bucket": {"name": "data-bucket"},
        "object": {"key": "input/acme/Field 7+b.TIF", "size": 2048, "etag": "abc"},
        "reason": "PutObject",
        "source-ip-address": "10.0.3.7",
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.s3"]}, True),
        ({"source": ["aws.batch"]}, False),
        ({"source": ["aws.batch", "aws.s3"]}, True),  # values OR
        ({"source": ["aws.s3"], "detail-type": ["Object Deleted"]}, False),  # fields AND
        ({"detail": {"object": {"key": [{"prefix": "input/"}]}}}, True),
        ({"detail": {"object": {"key": [{"prefix": "INPUT/"}]}}}, False),
        ({"detail": {"object": {"key": [{"prefix": {"equals-ignore-case": "INPUT/"}}]}}}, True),
        ({"detail": {"object": {"key": [{"suffix": ".tif"}]}}}, False),
        ({"detail": {"object": {"key": [{"suffix": {"equals-ignore-case": ".tif"}}]}}}, True),
        ({"detail": {"reason": [{"equals-ignore-case": "putobject"}]}}, True),
        ({"detail": {"object": {"key": [{"wildcard": "input/*.TIF"}]}}}, True),
        ({"detail": {"object": {"key": [{"wildcard": "input/*.tif"}]}}}, False),
        ({"detail": {"object": {"key": [{"wildcard": "input/*/Field*"}]}}}, True),
        ({"detail": {"object": {"key": [{"wildcard": "training/*/manifest.json"}]}}}, False),
        ({"detail": {"object": {"size": [{"numeric": [">", 0, "<=", 2048]}]}}}, True),
        ({"detail": {"object": {"size": [{"numeric": [">", 2048]}]}}}, False),
        ({"detail": {"object": {"size": [{"numeric": ["=", 2048.0]}]}}}, True),
        ({"detail": {"object": {"size": [2048]}}}, True),
        ({"detail": {"object": {"size": ["2048"]}}}, False),  # types differ
        ({"detail": {"object": {"etag": [{"numeric": [">", 0]}]}}}, False),  # not a number
        ({"detail": {"reason": [{"anything-but": "CopyObject"}]}}, True),
        ({"detail": {"reason": [{"anything-but": ["PutObject", "CopyObject"]}]}}, False),
        ({"detail": {"object": {"key": [{"anything-but": {"prefix": "input/"}}]}}}, False),
        ({"detail": {"object": {"key": [{"anything-but": {"suffix": ".json"}}]}}}, True),
        ({"detail": {"object": {"version-id": [{"anything-but": "x"}]}}}, False),  # missing
        ({"detail": {"object": {"version-id": [{"exists": False}]}}}, True),
        ({"detail": {"object": {"version-id": [{"exists": True}]}}}, False),
        ({"detail": {"object": {"etag": [{"exists": True}]}}}, True),
        ({"detail": {"missing": {"deeper": [{"exists": False}]}}}, True),
        ({"detail": {"missing": {"deeper": ["x"]}}}, False),
        ({"resources": ["arn:aws:s3:::data-bucket"]}, True),  # array in event: any element
        ({"resources": [{"prefix": "arn:aws:s3:::other"}]}, False),
        ({"detail": {"source-ip-address": [{"cidr": "10.0.0.0/16"}]}}, True),
        ({"detail": {"source-ip-address": [{"cidr": "10.1.0.0/16"}]}}, False),
        ({"$or": [{"source": ["aws.batch"]}, {"detail": {"reason": ["PutObject"]}}]}, True),
        ({"$or": [{"source": ["aws.batch"]}, {"detail": {"reason": ["Copy"]}}]}, False),
    ],
)
def test_matches(pattern: dict, expected: bool) -> None:
    assert matches(pattern, S3) is expected


def test_wildcard_escapes_a_literal_star() -> None:
    event = {"detail": {"key": "input/a*b.tif"}}
    assert matches({"detail": {"key": [{"wildcard": "input/a\\*b.tif"}]}}, event)
    assert not matches(
        {"detail": {"key": [{"wildcard": "input/a\\*b.tif"}]}}, {"detail": {"key": "input/aXb.tif"}}
    )


def test_numeric_matching_stops_at_five_billion() -> None:
    pattern = {"detail": {"size": [{"numeric": [">", 100]}]}}
    assert matches(pattern, {"detail": {"size": 5_000_000_000}})
    assert not matches(pattern, {"detail": {"size": 5_000_000_001}})  # beyond EventBridge's range
    with pytest.raises(PatternError):
        matches({"detail": {"size": [{"numeric": [">", 6e9]}]}}, {"detail": {"size": 1}})


def test_null_literal_and_booleans_are_type_exact() -> None:
    event = {"detail": {"flag": True, "nothing": None, "one": 1}}
    assert matches({"detail": {"flag": [True]}}, event)
    assert not matches({"detail": {"one": [True]}}, event)
    assert not matches({"detail": {"flag": [1]}}, event)
    assert matches({"detail": {"nothing": [None]}}, event)
    assert matches({"detail": {"nothing": [{"exists": True}]}}, event)


def test_job_state_rule_shape() -> None:
    pattern = {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {"status": ["SUCCEEDED", "FAILED"], "jobQueue": ["arn:q"]},
    }
    event = {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "detail": {"status": "FAILED", "jobQueue": "arn:q"},
    }
    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {"status": "RUNNABLE", "jobQueue": "arn:q"}})
    assert not matches(pattern, {**event, "detail": {"status": "FAILED", "jobQueue": "arn:other"}})


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": "aws.s3"},
        {"source": []},
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"source": [{"numeric": [">"]}]},
        {"source": [{"wildcard": "a**b"}]},
        {"source": [{"bogus": 1}]},
    ],
)
def test_malformed_patterns_are_refused(pattern: dict) -> None:
    with pytest.raises(PatternError):
        matches(pattern, S3)
