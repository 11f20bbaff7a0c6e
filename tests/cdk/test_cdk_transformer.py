"""The Batch input transformer: what a job receives for awkward keys, and safe failures."""

from __future__ import annotations

import copy
import json

import pytest
from cdk_helpers import load_event, props

from cdk import constants as C
from cdk.transformer import (
    TransformError,
    batch_parameters_template,
    parse_batch_parameters,
    render,
    render_batch_parameters,
)

pytestmark = pytest.mark.xdist_group("cdk")


def s3_event(key: str, size: int = 1234) -> dict:
    event = load_event("eventbridge_s3_object_created.json")
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["size"] = size
    return event


def synthesized_transformer(template: dict, rule_id: str) -> tuple[dict, str]:
    transformer = props(template, rule_id)["Targets"][0]["InputTransformer"]
    return transformer["InputPathsMap"], transformer["InputTemplate"]


def test_template_shape() -> None:
    paths, tpl = batch_parameters_template()
    assert paths == {
        "bucket": "$.detail.bucket.name",
        "key": "$.detail.object.key",
        "version": "$.detail.object.version-id",
        "etag": "$.detail.object.etag",
        "size": "$.detail.object.size",
    }
    assert tpl == (
        '{"Parameters":{"bucket":<bucket>,"key":<key>,"version":<version>,'
        '"etag":<etag>,"size":"<size>"}}'
    )


@pytest.mark.parametrize("rule_id", [C.ID_PREDICT_RULE, C.ID_PREDICT_LARGE_RULE, C.ID_TRAIN_RULE])
def test_every_batch_rule_uses_the_template(template: dict, rule_id: str) -> None:
    assert synthesized_transformer(template, rule_id) == batch_parameters_template()


@pytest.mark.parametrize(
    "key",
    [
        "input/plain.tif",
        "input/with space/scène d'été.tif",
        "input/a+b=c&d.tif",
        "input/日本語/画像.TIFF",
        "input/emoji-🛰️.tif",
        'input/quote"inside.tif',
        "input/back\\slash.tif",
    ],
)
def test_keys_reach_the_job_unchanged(template: dict, key: str) -> None:
    paths, tpl = synthesized_transformer(template, C.ID_PREDICT_RULE)
    params = render_batch_parameters(paths, tpl, s3_event(key, 52428800))
    assert params == {
        "bucket": "rasterdrop-data-bucket",
        "key": key,
        "version": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "etag": "b1946ac92492d2347c6235b4d2611184",
        "size": "52428800",
    }


def test_rendered_text_for_a_key_with_space_plus_and_unicode(template: dict) -> None:
    paths, tpl = synthesized_transformer(template, C.ID_PREDICT_RULE)
    text = render(paths, tpl, s3_event("input/a b+c/é.tif", 7))
    assert text == (
        '{"Parameters":{"bucket":"rasterdrop-data-bucket","key":"input/a b+c/é.tif",'
        '"version":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",'
        '"etag":"b1946ac92492d2347c6235b4d2611184","size":"7"}}'
    )


@pytest.mark.parametrize("key", ['input/quote"inside.tif', 'input/x","size":"1.tif'])
def test_a_double_quote_without_escaping_fails_instead_of_changing_the_key(
    template: dict, key: str
) -> None:
    """Pessimistic reading (EventBridge does not escape): a lone quote gives invalid JSON
    (delivery fails, dead-lettered); a crafted key injects a repeated JSON key, which the
    strict parser refuses and which the job's version-id/etag check would refuse too."""
    paths, tpl = synthesized_transformer(template, C.ID_PREDICT_RULE)
    with pytest.raises(TransformError, match=r"not valid JSON|repeats the JSON key"):
        render_batch_parameters(paths, tpl, s3_event(key), escape="none")


def test_a_backslash_without_escaping_is_caught_by_the_version_check(template: dict) -> None:
    """Unescaped `\\t` would decode to a TAB: a different key. The job must verify
    version-id and etag (it gets both), which cannot match for another key; this
    documents why the parameters carry them."""
    paths, tpl = synthesized_transformer(template, C.ID_PREDICT_RULE)
    key = "input/a\\tb.tif"
    try:
        params = render_batch_parameters(paths, tpl, s3_event(key), escape="none")
    except TransformError:
        return
    assert params["key"] != key
    assert params["version"] and params["etag"]


def test_missing_field_renders_nothing_and_is_rejected(template: dict) -> None:
    paths, tpl = synthesized_transformer(template, C.ID_PREDICT_RULE)
    event = s3_event("input/a.tif")
    del event["detail"]["object"]["version-id"]
    text = render(paths, tpl, event)
    assert '"version":,' in text
    with pytest.raises(TransformError, match="not valid JSON"):
        parse_batch_parameters(text)


@pytest.mark.parametrize(
    ("rendered", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "no Parameters"),
        ('{"Parameters": {"bucket": "b"}}', "exactly"),
        (
            '{"Parameters": {"bucket": "b", "key": 1, "version": "v", "etag": "e", "size": "1"}}',
            "non-empty strings",
        ),
        (
            '{"Parameters": {"bucket": "b", "key": "", "version": "v", "etag": "e", "size": "1"}}',
            "non-empty strings",
        ),
    ],
)
def test_malformed_results_fail_safely(rendered: str, message: str) -> None:
    with pytest.raises(TransformError, match=message):
        parse_batch_parameters(rendered)


def test_renderer_semantics_quoted_and_unquoted() -> None:
    paths = {"s": "$.detail.s", "n": "$.detail.n", "o": "$.detail.o", "a": "$.detail.list[1]"}
    tpl = '{"raw":"<s> has <n> and <o>","json":<s>,"num":<n>,"obj":<o>,"second":<a>}'
    event = {"detail": {"s": 'say "hi"', "n": 3, "o": {"k": "v"}, "list": ["x", "y"]}}
    out = render(paths, tpl, copy.deepcopy(event))
    assert out == (
        '{"raw":"say "hi" has 3 and {k:v}","json":"say \\"hi\\"","num":3,'
        '"obj":{"k":"v"},"second":"y"}'
    )
    # the quoted placeholder is not escaped, so this particular output is not JSON
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_unknown_placeholders_are_left_alone() -> None:
    assert render({"a": "$.a"}, '{"x":"<b>","y":<a>}', {"a": 1}) == '{"x":"<b>","y":1}'
