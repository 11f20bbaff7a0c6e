"""The InputTransformer emulator on the stack's Batch transformer: what a job receives for
awkward keys, and safe failures. (That every Batch rule of the synthesized template uses
exactly `batch_parameters_template()` is tests/cdk/test_cdk_transformer.py.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cdk.transformer import batch_parameters_template
from sandbox.transformer import (
    TransformError,
    parse_batch_parameters,
    render,
    render_batch_parameters,
)

EVENTS = Path(__file__).resolve().parent.parent / "events"


def s3_event(key: str, size: int = 1234) -> dict:
    event = json.loads((EVENTS / "eventbridge_s3_object_created.json").read_text("utf-8"))
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["size"] = size
    return event


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
def test_keys_reach_the_job_unchanged(key: str) -> None:
    paths, tpl = batch_parameters_template()
    params = render_batch_parameters(paths, tpl, s3_event(key, 52428800))
    assert params == {
        "bucket": "rasterdrop-data-bucket",
        "key": key,
        "version": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "etag": "b1946ac92492d2347c6235b4d2611184",
        "size": "52428800",
    }


def test_rendered_text_for_a_key_with_space_plus_and_unicode() -> None:
    paths, tpl = batch_parameters_template()
    text = render(paths, tpl, s3_event("input/a b+c/é.tif", 7))
    assert text == (
        '{"Parameters":{"bucket":"rasterdrop-data-bucket","key":"input/a b+c/é.tif",'
        '"version":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",'
        '"etag":"b1946ac92492d2347c6235b4d2611184","size":"7"}}'
    )


@pytest.mark.parametrize("key", ['input/quote"inside.tif', 'input/x","size":"1.tif'])
def test_a_double_quote_without_escaping_fails_instead_of_changing_the_key(key: str) -> None:
    """Pessimistic reading (EventBridge does not escape): a lone quote gives invalid JSON
    (delivery fails, dead-lettered); a crafted key injects a repeated JSON key, which the
    strict parser refuses and which the job's version-id/etag check would refuse too."""
    paths, tpl = batch_parameters_template()
    with pytest.raises(TransformError, match=r"not valid JSON|repeats the JSON key"):
        render_batch_parameters(paths, tpl, s3_event(key), escape="none")


def test_a_backslash_without_escaping_is_caught_by_the_version_check() -> None:
    """Unescaped `\\t` would decode to a TAB: a different key. The job must verify
    version-id and etag (it gets both), which cannot match for another key; this
    documents why the parameters carry them."""
    paths, tpl = batch_parameters_template()
    key = "input/a\\tb.tif"
    try:
        params = render_batch_parameters(paths, tpl, s3_event(key), escape="none")
    except TransformError:
        return
    assert params["key"] != key
    assert params["version"] and params["etag"]


def test_missing_field_renders_nothing_and_is_rejected() -> None:
    paths, tpl = batch_parameters_template()
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
