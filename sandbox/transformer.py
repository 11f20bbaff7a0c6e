"""EventBridge InputTransformer emulator: what a target receives for an event.

The stack writes the transformer (`cdk.transformer.batch_parameters_template`);
this module is the AWS side the sandbox runs it on.

`render()` reproduces what EventBridge does with an InputTransformer, so tests
and the sandbox can feed real events through the real synthesized template:

* each InputPathsMap value is a JSON path (dot notation, array indices) into
  the event; a path that does not exist creates no variable, and its
  placeholder renders as nothing (so `{"a": <missing>}` is not JSON);
* a placeholder outside quotes receives the value as JSON (a string with its
  quotes); inside a quoted string it receives the raw text of the value.
  EventBridge documents that it does not escape extracted values, so
  `escape="none"` models the pessimistic reading where even unquoted strings
  are wrapped in quotes without escaping; `escape="json"` the reading where
  an unquoted placeholder receives the value's JSON encoding.

`parse_batch_parameters()` is the check EventBridge and Batch effectively
apply: the result must be a JSON object with string parameters, or the
delivery fails (retried, then dead-lettered) instead of starting a job on a
different key. Strings are never repaired.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from cdk.constants import JOB_PARAMETER_NAMES

Escape = Literal["json", "none"]

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_PATH_TOKEN = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


class TransformError(ValueError):
    """The rendered input is not what the target accepts; EventBridge would fail delivery."""


def extract(event: Any, path: str) -> tuple[bool, Any]:
    """Evaluate a simple JSON path (`$.a.b-c[0]`); returns (found, value)."""
    if path == "$":
        return True, event
    if not path.startswith("$"):
        raise TransformError(f"unsupported JSON path {path!r}")
    rest, pos, node = path[1:], 0, event
    while pos < len(rest):
        m = _PATH_TOKEN.match(rest, pos)
        if m is None:
            raise TransformError(f"unsupported JSON path {path!r}")
        pos = m.end()
        if m.group(1) is not None:
            if not isinstance(node, dict) or m.group(1) not in node:
                return False, None
            node = node[m.group(1)]
        else:
            index = int(m.group(2))
            if not isinstance(node, list) or index >= len(node):
                return False, None
            node = node[index]
    return True, node


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _unquoted(value: Any, escape: Escape) -> str:
    if isinstance(value, str) and escape == "none":
        return '"' + value + '"'
    return _json_text(value)


def _quoted(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return _json_text(value).replace('"', "")
    return _json_text(value)


def render(
    input_paths_map: dict[str, str], input_template: str, event: dict, *, escape: Escape = "json"
) -> str:
    """Render `input_template` for `event` the way EventBridge's InputTransformer does."""
    variables: dict[str, Any] = {}
    for name, path in input_paths_map.items():
        found, value = extract(event, path)
        if found:
            variables[name] = value
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(input_template):
        ch = input_template[i]
        m = _PLACEHOLDER.match(input_template, i) if ch == "<" else None
        if m and m.group(1) in input_paths_map:
            name = m.group(1)
            if name in variables:
                value = variables[name]
                out.append(_quoted(value) if in_string else _unquoted(value, escape))
            i = m.end()
            continue
        if in_string and ch == "\\" and i + 1 < len(input_template):
            out.append(input_template[i : i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        out.append(ch)
        i += 1
    return "".join(out)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            # A key like `x","size":"1.tif` rendered without escaping would inject a
            # second "size"; most JSON readers keep the last value, i.e. a forged one.
            raise TransformError(f"rendered input repeats the JSON key {key!r} (injection)")
        seen[key] = value
    return seen


def parse_batch_parameters(rendered: str) -> dict[str, str]:
    """Validate a rendered Batch input; returns the Parameters or raises `TransformError`.

    Stricter than a plain JSON reader on purpose: repeated keys are an
    injection through an unescaped value and are refused.
    """
    try:
        body = json.loads(rendered, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise TransformError(f"rendered input is not valid JSON: {exc.msg}") from None
    params = body.get("Parameters") if isinstance(body, dict) else None
    if not isinstance(params, dict):
        raise TransformError("rendered input has no Parameters object")
    if set(params) != set(JOB_PARAMETER_NAMES):
        raise TransformError(
            f"Parameters must be exactly {JOB_PARAMETER_NAMES}, got {sorted(params)}"
        )
    bad = {k: v for k, v in params.items() if not isinstance(v, str) or v == ""}
    if bad:
        raise TransformError(f"Parameters must be non-empty strings: {sorted(bad)}")
    return params


def render_batch_parameters(
    input_paths_map: dict[str, str], input_template: str, event: dict, *, escape: Escape = "json"
) -> dict[str, str]:
    """`render` then `parse_batch_parameters`: what the job would receive, or `TransformError`."""
    return parse_batch_parameters(render(input_paths_map, input_template, event, escape=escape))
