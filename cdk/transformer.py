"""EventBridge InputTransformer the stack writes for its Batch targets.

`batch_parameters_template()` builds the InputPathsMap/InputTemplate that turns
an S3 "Object Created" event into the Batch target's input
`{"Parameters": {"bucket": .., "key": .., "version": .., "etag": .., "size": ..}}`
(EventBridge passes `Parameters` to SubmitJob; Batch substitutes them into the
job definition's `Ref::name` command arguments).

What EventBridge makes of it for a given event (rendering, escaping, the
checks a delivery must pass) is emulated by `sandbox.transformer`, which the
sandbox and the tests feed real events through.
"""

from __future__ import annotations

from cdk.constants import JOB_PARAMETER_NAMES

# Event fields behind each Batch parameter (S3 "Object Created" via EventBridge).
PARAMETER_PATHS: dict[str, str] = {
    "bucket": "$.detail.bucket.name",
    "key": "$.detail.object.key",
    "version": "$.detail.object.version-id",
    "etag": "$.detail.object.etag",
    "size": "$.detail.object.size",
}
# size is a JSON number in the event; Batch parameters are strings, so it is quoted.
QUOTED_PARAMETERS = frozenset({"size"})


def batch_parameters_template() -> tuple[dict[str, str], str]:
    """InputPathsMap and InputTemplate for the Batch targets (one variable per parameter)."""
    paths = {name: PARAMETER_PATHS[name] for name in JOB_PARAMETER_NAMES}
    parts = []
    for name in JOB_PARAMETER_NAMES:
        value = f'"<{name}>"' if name in QUOTED_PARAMETERS else f"<{name}>"
        parts.append(f'"{name}":{value}')
    return paths, '{"Parameters":{' + ",".join(parts) + "}}"
