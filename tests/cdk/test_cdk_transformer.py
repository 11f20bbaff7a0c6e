"""The Batch input transformer the stack writes (what EventBridge makes of it: tests/sandbox)."""

from __future__ import annotations

import pytest
from cdk_helpers import props

from cdk import constants as C
from cdk.transformer import batch_parameters_template

pytestmark = pytest.mark.xdist_group("cdk")


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


@pytest.mark.parametrize(
    "rule_id",
    [C.ID_PREDICT_RULE, C.ID_PREDICT_VRT_RULE, C.ID_PREDICT_LARGE_RULE, C.ID_TRAIN_RULE],
)
def test_every_batch_rule_uses_the_template(template: dict, rule_id: str) -> None:
    assert synthesized_transformer(template, rule_id) == batch_parameters_template()
