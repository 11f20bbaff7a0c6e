"""EventBridge event patterns: the ones the stack uses, and a small matcher.

`matches(pattern, event)` implements the subset of EventBridge's content
filtering the stack (and its tests and the sandbox) needs: exact values,
`prefix`, `suffix` (also with `equals-ignore-case`), `equals-ignore-case`,
`wildcard`, `numeric` (within EventBridge's +-5e9), `exists`, `anything-but`
(values, prefix, suffix, wildcard, equals-ignore-case) and `$or`. Fields are
ANDed, the values of one field ORed, and an array in the event matches when
any element does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import product
from typing import Any

from cdk import constants as C

_MISSING = object()
_NUMERIC_OPS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


# ------------------------------------------------------------ stack patterns
def case_variants(text: str) -> list[str]:
    """All-lower and all-upper spellings of `text` (".tif" -> [".tif", ".TIF"])."""
    return list(dict.fromkeys([text.lower(), text.upper()]))


def tiff_key_wildcards(prefix: str = C.INPUT_PREFIX) -> list[str]:
    """Wildcards for TIFF keys under `prefix`: `input/*.tif`, `input/*.TIF`, ....

    EventBridge cannot AND two conditions on the same field, so "prefix input/
    and suffix .tif in any case" must be one wildcard per spelling. Every
    spelling shares the `input/*` prefix, and EventBridge rejects patterns
    whose wildcard complexity is high ("Rule is too complex"), so only the
    lower- and upper-case spellings are listed (4 wildcards); a mixed-case
    extension such as `.Tif` is not picked up (README, Deploy).
    """
    return [f"{prefix}*{ext}" for base in C.TIFF_EXTENSIONS for ext in case_variants(base)]


def all_case_spellings(text: str) -> list[str]:
    """Every upper/lower spelling of `text` (for tests of what is and is not matched)."""
    options = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in text]
    return ["".join(p) for p in product(*options)]


# ------------------------------------------------------------------- matcher
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(?<!\\)\*", pattern)
    return re.compile("^" + ".*".join(re.escape(p.replace("\\*", "*")) for p in parts) + "$", re.S)


def _numeric(condition: list[Any], value: Any) -> bool:
    """EventBridge numeric matching: JSON numbers within +-5e9 only (event-ruler)."""
    ops = list(condition)
    for bound in ops[1::2]:
        if abs(bound) > C.EVENTBRIDGE_NUMERIC_MAX:
            raise ValueError(f"EventBridge refuses numeric bound {bound} (outside +-5e9)")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if abs(value) > C.EVENTBRIDGE_NUMERIC_MAX:
        return False  # not comparable as a number: matches no numeric condition
    for op, bound in zip(ops[::2], ops[1::2], strict=True):
        if not _NUMERIC_OPS[op](value, bound):
            return False
    return True


def _string_op(kind: str, arg: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(arg, dict):  # {"equals-ignore-case": "..."}
        ((mode, text),) = arg.items()
        if mode != "equals-ignore-case":
            raise ValueError(f"unsupported {kind} option {mode!r}")
        value, arg = value.lower(), text.lower()
    if kind == "prefix":
        return value.startswith(arg)
    if kind == "suffix":
        return value.endswith(arg)
    if kind == "equals-ignore-case":
        return value.lower() == arg.lower()
    if kind == "wildcard":
        return bool(_wildcard_regex(arg).match(value))
    raise ValueError(f"unsupported operator {kind!r}")


def _anything_but(arg: Any, value: Any) -> bool:
    if value is _MISSING:
        return False
    if isinstance(arg, dict):
        ((kind, inner),) = arg.items()
        inner_list = inner if isinstance(inner, list) else [inner]
        return not any(_string_op(kind, item, value) for item in inner_list)
    values = arg if isinstance(arg, list) else [arg]
    return value not in values


def _condition(cond: Any, value: Any) -> bool:
    if not isinstance(cond, dict):
        return value is not _MISSING and value == cond and type(value) is type(cond)
    ((kind, arg),) = cond.items()
    if kind == "exists":
        return (value is not _MISSING) == bool(arg)
    if value is _MISSING:
        return False
    if kind == "numeric":
        return _numeric(arg, value)
    if kind == "anything-but":
        return _anything_but(arg, value)
    return _string_op(kind, arg, value)


def _values(node: Any) -> Iterable[Any]:
    return node if isinstance(node, list) else [node]


def _field(conditions: list[Any], node: Any) -> bool:
    if node is _MISSING:
        return any(_condition(c, _MISSING) for c in conditions)
    return any(_condition(c, v) for v in _values(node) for c in conditions)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when `event` matches the EventBridge `pattern`."""
    for key, sub in pattern.items():
        if key == "$or":
            if not any(matches(alt, event) for alt in sub):
                return False
            continue
        node = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(sub, dict):
            candidates = (
                [n for n in _values(node) if isinstance(n, dict)] if node is not _MISSING else []
            )
            if not any(matches(sub, n) for n in candidates) and not (
                not candidates and _all_absent_ok(sub)
            ):
                return False
        elif isinstance(sub, list):
            if not _field(sub, node):
                return False
        else:
            raise ValueError(f"pattern value for {key!r} must be an object or a list")
    return True


def _all_absent_ok(pattern: dict[str, Any]) -> bool:
    """A nested pattern whose conditions all accept a missing field ({"exists": false})."""
    return all(
        _all_absent_ok(sub) if isinstance(sub, dict) else _field(sub, _MISSING)
        for key, sub in pattern.items()
        if key != "$or"
    )


# ------------------------------------------------ template -> concrete values
def resolve_intrinsics(node: Any, values: dict[str, Any]) -> Any:
    """Replace `{"Ref": X}` / `{"Fn::GetAtt": [X, A]}` by `values["X"]` / `values["X.A"]`.

    For reading event patterns out of the synthesized template and matching
    them against real events (tests, sandbox). An unknown reference raises.
    """
    if isinstance(node, list):
        return [resolve_intrinsics(item, values) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return values[node["Ref"]]
        if set(node) == {"Fn::GetAtt"}:
            logical_id, attribute = node["Fn::GetAtt"]
            return values[f"{logical_id}.{attribute}"]
        return {key: resolve_intrinsics(value, values) for key, value in node.items()}
    return node


def rule_patterns(template: dict[str, Any], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """logical id -> resolved EventPattern of every AWS::Events::Rule in the template."""
    return {
        logical_id: resolve_intrinsics(res["Properties"]["EventPattern"], values)
        for logical_id, res in template["Resources"].items()
        if res["Type"] == "AWS::Events::Rule" and "EventPattern" in res["Properties"]
    }


def matching_rules(patterns: dict[str, dict[str, Any]], event: dict[str, Any]) -> set[str]:
    """Logical ids of the rules whose pattern matches `event`."""
    return {logical_id for logical_id, pattern in patterns.items() if matches(pattern, event)}
