"""Event patterns: structure, and which rule real-shaped events reach."""

from __future__ import annotations

import pytest
from cdk_helpers import load_event, matching_rules, props, rule_patterns

from cdk import constants as C
from cdk.patterns import all_case_spellings, tiff_key_wildcards
from sandbox.eventpattern import matches

pytestmark = pytest.mark.xdist_group("cdk")

BUCKET = "rasterdrop-data-bucket"
QUEUE = "arn:aws:batch:eu-west-1:111122223333:job-queue/JobQueue-abc"
VALUES = {"DataBucket": BUCKET, "JobQueue": QUEUE, "JobQueue.JobQueueArn": QUEUE}
GIB = 1024**3
S3_RULES = {
    C.ID_PREDICT_RULE,
    C.ID_PREDICT_VRT_RULE,
    C.ID_PREDICT_LARGE_RULE,
    C.ID_OVERSIZE_RULE,
    C.ID_VRT_KEY_CHECK_RULE,
    C.ID_TRAIN_RULE,
}


def s3_event(key: str, size: int = 1000, bucket: str = BUCKET) -> dict:
    event = load_event("eventbridge_s3_object_created.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, size=size)
    return event


def job_event(status: str = "SUCCEEDED", queue: str = QUEUE) -> dict:
    event = load_event("eventbridge_batch_job_state_change.json")
    event["detail"].update(status=status, jobQueue=queue)
    return event


@pytest.fixture(scope="module")
def patterns(template: dict) -> dict:
    return rule_patterns(template, VALUES)


def test_predict_pattern_structure(template: dict, config) -> None:
    pattern = props(template, C.ID_PREDICT_RULE)["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": C.ID_DATA_BUCKET}]
    assert pattern["detail"]["object"]["key"] == [
        {"wildcard": "input/*.tif"},
        {"wildcard": "input/*.TIF"},
        {"wildcard": "input/*.tiff"},
        {"wildcard": "input/*.TIFF"},
    ]
    assert pattern["detail"]["object"]["size"] == [
        {"numeric": [">=", 0, "<=", config.large_job_threshold_bytes]}
    ]


def test_wildcards_stay_few(template: dict) -> None:
    """Same-prefix wildcards add up in EventBridge's rule complexity; keep them to four."""
    for rule in S3_RULES:
        keys = props(template, rule)["EventPattern"]["detail"]["object"]["key"]
        assert len(keys) <= 4
        assert all(set(k) == {"wildcard"} and k["wildcard"].count("*") == 1 for k in keys)


JOB_RULES = {C.ID_PREDICT_RULE, C.ID_PREDICT_VRT_RULE, C.ID_PREDICT_LARGE_RULE, C.ID_TRAIN_RULE}
E = C.EVENTBRIDGE_NUMERIC_MAX


@pytest.mark.parametrize(
    ("key", "size", "job_rule"),
    [
        ("input/scene.tif", 50 * 1024**2, C.ID_PREDICT_RULE),
        ("input/tenant-a/deep/path/scene.TIF", 1, C.ID_PREDICT_RULE),
        ("input/scene.tiff", 0, C.ID_PREDICT_RULE),
        ("input/with space+plus/é.TIFF", GIB, C.ID_PREDICT_RULE),
        ("input/big.tif", GIB + 1, C.ID_PREDICT_LARGE_RULE),
        ("input/big.tif", 4 * GIB, C.ID_PREDICT_LARGE_RULE),
        ("input/huge.tif", 4 * GIB + 1, None),  # reject handler only
        ("input/huge.tif", E, None),
        ("input/huge.TIFF", E + 1, None),  # beyond EventBridge numbers: no numeric match
        ("input/huge.TIFF", 5 * 1024**4, None),
    ],
)
def test_tiff_uploads_reach_one_job_rule_and_the_size_check(
    patterns: dict, key: str, size: int, job_rule: str | None
) -> None:
    hits = matching_rules(patterns, s3_event(key, size))
    assert hits & JOB_RULES == ({job_rule} if job_rule else set())
    assert C.ID_OVERSIZE_RULE in hits  # the reject handler checks every TIFF's size


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("output/scene/classes.tif", set()),  # our own outputs never loop back
        ("partial/run/chunk-0001.tif", set()),
        ("models/demo/v1/model.tif", set()),
        ("input/scene.jpg", set()),
        ("input/scene.tif.aux.xml", set()),
        ("input/scene.tifx", set()),
        ("input/", set()),
        ("scene.tif", set()),
        ("training/demo/manifest.json", {C.ID_TRAIN_RULE}),
        ("training/a/b/manifest.json", {C.ID_TRAIN_RULE}),
        ("training/manifest.json", set()),
        ("training/demo/labels.tif", set()),
        ("input/demo/manifest.json", set()),
        # whatever its (tiny) size; the reject handler checks the key can be carried
        ("input/landsat/scene.vrt", {C.ID_PREDICT_VRT_RULE, C.ID_VRT_KEY_CHECK_RULE}),
        ("input/landsat/SCENE.VRT", {C.ID_PREDICT_VRT_RULE, C.ID_VRT_KEY_CHECK_RULE}),
        ("input/scene.vrt.aux.xml", set()),
        ("output/scene/x.vrt", set()),
        ("training/demo/scene.vrt", set()),
    ],
)
def test_other_keys(patterns: dict, key: str, expected: set) -> None:
    assert matching_rules(patterns, s3_event(key, 300)) & S3_RULES == expected


def test_every_size_has_exactly_one_job_route_up_to_the_limit(patterns: dict, config) -> None:
    limit, threshold = config.max_input_bytes, config.large_job_threshold_bytes
    for size in (0, 1, threshold - 1, threshold, threshold + 1, limit - 1, limit):
        hits = matching_rules(patterns, s3_event("input/x.tif", size)) & JOB_RULES
        assert len(hits) == 1, (size, hits)
    for size in (limit + 1, E, E + 1, 10 * E):
        assert not matching_rules(patterns, s3_event("input/x.tif", size)) & JOB_RULES


def test_size_bounds_stay_inside_eventbridge_numbers(template: dict) -> None:
    for rule in (C.ID_PREDICT_RULE, C.ID_PREDICT_LARGE_RULE):
        (cond,) = props(template, rule)["EventPattern"]["detail"]["object"]["size"]
        numbers = cond["numeric"][1::2]
        assert all(0 <= n <= E for n in numbers)
    assert "size" not in props(template, C.ID_OVERSIZE_RULE)["EventPattern"]["detail"]["object"]


def test_other_buckets_and_event_types_are_ignored(patterns: dict) -> None:
    assert not matching_rules(patterns, s3_event("input/x.tif", bucket="someone-else"))
    deleted = s3_event("input/x.tif")
    deleted["detail-type"] = "Object Deleted"
    assert not matching_rules(patterns, deleted)


def test_mixed_case_extensions_are_a_documented_gap(patterns: dict) -> None:
    """Only lower- and upper-case extensions route (EventBridge wildcard complexity)."""
    routed = {
        ext
        for base in (".tif", ".tiff")
        for ext in all_case_spellings(base)
        if matching_rules(patterns, s3_event(f"input/x{ext}")) & JOB_RULES
    }
    assert routed == {".tif", ".TIF", ".tiff", ".TIFF"}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (job_event("SUCCEEDED"), {C.ID_JOB_STATE_RULE}),
        (job_event("FAILED"), {C.ID_JOB_STATE_RULE, C.ID_JOB_FAILED_RULE}),
        (job_event("RUNNING"), set()),
        (job_event("RUNNABLE"), set()),
        (job_event("SUCCEEDED", queue=QUEUE.replace("JobQueue-abc", "other")), set()),
    ],
)
def test_job_state_events(patterns: dict, event: dict, expected: set) -> None:
    assert matching_rules(patterns, event) == expected


@pytest.mark.parametrize(
    ("exit_code", "counted"),
    [(1, True), (137, True), (2, True), (None, True), (4, False), (5, False)],
)
def test_superseded_and_in_progress_jobs_are_not_counted_as_failed(
    patterns: dict, exit_code: int | None, counted: bool
) -> None:
    event = job_event("FAILED")
    event["detail"].setdefault("container", {}).pop("exitCode", None)
    if exit_code is not None:
        event["detail"]["container"]["exitCode"] = exit_code
    hits = matching_rules(patterns, event)
    assert C.ID_JOB_STATE_RULE in hits  # the notifier still sees it (and sends nothing)
    assert (C.ID_JOB_FAILED_RULE in hits) is counted


def test_job_state_rules_are_limited_to_our_queues(template: dict) -> None:
    for rule in (C.ID_JOB_STATE_RULE, C.ID_JOB_FAILED_RULE):
        pattern = props(template, rule)["EventPattern"]
        assert pattern["source"] == ["aws.batch"]
        assert pattern["detail-type"] == ["Batch Job State Change"]
        assert pattern["detail"]["jobQueue"] == [{"Fn::GetAtt": [C.ID_JOB_QUEUE, "JobQueueArn"]}]
    assert props(template, C.ID_JOB_STATE_RULE)["EventPattern"]["detail"]["status"] == [
        "SUCCEEDED",
        "FAILED",
    ]


def test_without_large_jobs_standard_runs_up_to_the_limit(variant_template: dict) -> None:
    res = variant_template["Resources"]
    assert C.ID_PREDICT_LARGE_RULE not in res
    assert C.ID_PREDICT_LARGE_JOB not in res
    pats = rule_patterns(variant_template, VALUES)
    assert matching_rules(pats, s3_event("input/a.tif", 4 * GIB)) & JOB_RULES == {C.ID_PREDICT_RULE}
    assert not matching_rules(pats, s3_event("input/a.tif", 4 * GIB + 1)) & JOB_RULES


def test_targets_point_where_the_rule_says(template: dict) -> None:
    def target(rule: str) -> dict:
        (t,) = props(template, rule)["Targets"]
        return t

    assert target(C.ID_PREDICT_RULE)["BatchParameters"] == {
        "JobDefinition": {"Ref": C.ID_PREDICT_JOB},
        "JobName": C.JOB_NAME_PREDICT,
    }
    assert target(C.ID_PREDICT_LARGE_RULE)["BatchParameters"]["JobDefinition"] == {
        "Ref": C.ID_PREDICT_LARGE_JOB
    }
    assert target(C.ID_TRAIN_RULE)["BatchParameters"]["JobDefinition"] == {"Ref": C.ID_TRAIN_JOB}
    assert target(C.ID_PREDICT_VRT_RULE)["BatchParameters"] == {
        "JobDefinition": {"Ref": C.ID_PREDICT_JOB},
        "JobName": C.JOB_NAME_PREDICT,
    }
    for rule in (
        C.ID_PREDICT_RULE,
        C.ID_PREDICT_VRT_RULE,
        C.ID_PREDICT_LARGE_RULE,
        C.ID_TRAIN_RULE,
    ):
        assert target(rule)["Arn"] == {"Fn::GetAtt": [C.ID_JOB_QUEUE, "JobQueueArn"]}
    for rule in (C.ID_OVERSIZE_RULE, C.ID_VRT_KEY_CHECK_RULE):
        assert target(rule)["Arn"] == {"Fn::GetAtt": [C.ID_REJECT_FUNCTION, "Arn"]}
    assert target(C.ID_JOB_STATE_RULE)["Arn"] == {"Fn::GetAtt": [C.ID_NOTIFY_FUNCTION, "Arn"]}


def test_every_rule_target_retries_and_dead_letters(template: dict) -> None:
    rules = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Events::Rule"}
    # predict, vrt, large, oversize, vrt key check, train, assess, job state/failed, blocked
    assert len(rules) == 10
    for logical_id, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert target["RetryPolicy"] == {
                "MaximumEventAgeInSeconds": C.EVENT_MAX_AGE_HOURS * 3600,
                "MaximumRetryAttempts": C.EVENT_RETRY_ATTEMPTS,
            }, logical_id
            assert target["DeadLetterConfig"] == {
                "Arn": {"Fn::GetAtt": [C.ID_EVENTS_DLQ, "Arn"]}
            }, logical_id


# ------------------------------------------------------------- the matcher
@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),
        ({"a": [1]}, {"a": "1"}, False),
        ({"a": [{"prefix": "in"}]}, {"a": "input"}, True),
        ({"a": [{"suffix": {"equals-ignore-case": ".TIF"}}]}, {"a": "x.tif"}, True),
        ({"a": [{"equals-ignore-case": "ABC"}]}, {"a": "abc"}, True),
        ({"a": [{"wildcard": "in*/*.tif"}]}, {"a": "input/b/c.tif"}, True),
        ({"a": [{"wildcard": "in*.tif"}]}, {"a": "input/b/c.tiff"}, False),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 6}, False),
        ({"a": [{"numeric": [">", 0]}]}, {"a": "7"}, False),
        ({"a": [{"numeric": [">", 0]}]}, {"a": 5_000_000_001}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "z"}, True),
        ({"a": [{"anything-but": {"prefix": "out"}}]}, {"a": "output/x"}, False),
        ({"d": {"b": ["x"]}}, {"d": {"b": "x"}}, True),
        ({"d": {"b": ["x"]}}, {"d": "b"}, False),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "2"}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"c": "2"}, False),
    ],
)
def test_matcher(pattern: dict, event: dict, expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_numeric_bounds_beyond_eventbridge_are_refused() -> None:
    with pytest.raises(ValueError, match="bad numeric comparison"):
        matches({"a": [{"numeric": ["<", 6_000_000_000]}]}, {"a": 1})


def test_tiff_wildcards() -> None:
    assert tiff_key_wildcards("in/") == ["in/*.tif", "in/*.TIF", "in/*.tiff", "in/*.TIFF"]
    assert len(all_case_spellings(".tiff")) == 16
