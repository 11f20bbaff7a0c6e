"""EventBridge content filtering: does an event match a rule's event pattern?

A standalone implementation of the documented semantics, written independently of the
stack's own helpers so that the sandbox checks the template's patterns rather than
re-using the code that produced them:

- a pattern is a JSON object; every field in it must match (AND), `$or` takes a list of
  sub-patterns of which one must match;
- a leaf is a list of matchers, one of which must match (OR); when the event's value is
  a list, the leaf matches when any element matches;
- matchers: literal strings, numbers, booleans and null (exact, type-sensitive; numbers
  compare by value); `prefix` and `suffix` (with an optional `equals-ignore-case`
  inside), `equals-ignore-case`, `wildcard` (`*` any run, `\\*` a literal star),
  `numeric` (one or two comparisons, within EventBridge's range of ±5.0e9: a value
  beyond it matches no numeric condition), `anything-but` (a value, a list, or `prefix`,
  `suffix`, `equals-ignore-case`, `wildcard`), `exists` (true/false), `cidr`;
- a field the event lacks matches only `{"exists": false}`; `anything-but` needs the field
  to be present; a nested pattern under a missing or non-object field matches only when
  all its leaves accept a missing field.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

__all__ = ["PatternError", "matches"]


class PatternError(ValueError):
    """The pattern itself is malformed (EventBridge would refuse to create the rule)."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

NUMERIC_LIMIT = 5.0e9  # EventBridge numeric matching: -5.0e9 .. +5.0e9 inclusive
_COMPARATORS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when ``event`` matches the EventBridge ``pattern``."""
    if not isinstance(pattern, dict):
        raise PatternError("an event pattern must be a JSON object")
    return _object(pattern, event)


def _object(pattern: dict[str, Any], node: Any) -> bool:
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError("$or needs a list of at least two patterns")
            if not any(_object(alt, node) for alt in sub):
                return False
            continue
        value = node.get(key, MISSING) if isinstance(node, dict) else MISSING
        if isinstance(sub, dict):
            if not _nested(sub, value):
                return False
        elif isinstance(sub, list):
            if not _leaf(sub, value):
                return False
        else:
            raise PatternError(f"pattern value for {key!r} must be an object or a list")
    return True


def _nested(pattern: dict[str, Any], value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    objects = [c for c in candidates if isinstance(c, dict)]
    if objects:
        return any(_object(pattern, o) for o in objects)
    return _object(pattern, MISSING)


def _leaf(matchers: list[Any], value: Any) -> bool:
    if not matchers:
        raise PatternError("a pattern leaf must list at least one matcher")
    if isinstance(value, list):
        if not value:
            return any(_matcher(m, MISSING) for m in matchers if _is_exists(m))
        return any(_matcher(m, v) for v in value for m in matchers)
    if isinstance(value, dict):
        return any(_matcher(m, MISSING) for m in matchers if _is_exists(m, present=True))
    return any(_matcher(m, value) for m in matchers)


def _is_exists(matcher: Any, *, present: bool = False) -> bool:
    """An `exists` matcher; an object value counts as present for `exists: true`."""
    if isinstance(matcher, dict) and set(matcher) == {"exists"}:
        return not present or matcher["exists"] is True
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _literal(expected: Any, value: Any) -> bool:
    if value is MISSING:
        return False
    if _is_number(expected) and _is_number(value):
        return float(expected) == float(value)
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected is value
    if expected is None:
        return value is None
    return type(expected) is type(value) and expected == value


def _matcher(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _literal(matcher, value)
    if len(matcher) != 1:
        raise PatternError(f"a matcher object has exactly one operator, got {sorted(matcher)}")
    ((op, arg),) = matcher.items()
    if op == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false")
        present = value is not MISSING
        return present if arg else not present
    if value is MISSING:
        return False
    if op == "anything-but":
        return _anything_but(arg, value)
    if op == "numeric":
        return _numeric(arg, value)
    if op == "cidr":
        return _cidr(arg, value)
    return _string(op, arg, value)


def _string(op: str, arg: Any, value: Any) -> bool:
    if op not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        raise PatternError(f"unknown matcher {op!r}")
    ignore_case = False
    if op in ("prefix", "suffix") and isinstance(arg, dict):
        if set(arg) != {"equals-ignore-case"}:
            raise PatternError(f"{op} takes a string or {{'equals-ignore-case': string}}")
        arg, ignore_case = arg["equals-ignore-case"], True
    if not isinstance(arg, str):
        raise PatternError(f"{op} takes a string, got {arg!r}")
    if not isinstance(value, str):
        return False
    if op == "equals-ignore-case":
        return value.casefold() == arg.casefold()
    if op == "wildcard":
        return _wildcard(arg).fullmatch(value) is not None
    if ignore_case:
        value, arg = value.casefold(), arg.casefold()
    return value.startswith(arg) if op == "prefix" else value.endswith(arg)


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                raise PatternError("wildcard patterns may not contain consecutive '*'")
            out.append(".*")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _numeric(arg: Any, value: Any) -> bool:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise PatternError(f"numeric takes one or two [operator, number] pairs, got {arg!r}")
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in _COMPARATORS or not _is_number(bound) or abs(bound) > NUMERIC_LIMIT:
            raise PatternError(f"bad numeric comparison {op!r} {bound!r}")
    if not _is_number(value) or abs(value) > NUMERIC_LIMIT:
        return False
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if not _COMPARATORS[op](value, bound):
            return False
    return True


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError("anything-but takes one operator")
        ((op, inner),) = arg.items()
        options = inner if isinstance(inner, list) else [inner]
        if op == "numeric":
            return not _numeric(inner, value)
        return isinstance(value, str) and not any(_string(op, o, value) for o in options)
    options = arg if isinstance(arg, list) else [arg]
    return not any(_literal(o, value) for o in options)


def _cidr(arg: Any, value: Any) -> bool:
    if not isinstance(arg, str):
        raise PatternError("cidr takes a string")
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
    except ValueError:
        return False
