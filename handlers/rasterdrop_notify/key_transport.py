"""Keys an S3 event cannot carry to the job: EventBridge's input transformer does not escape.

The predict rules pass the object key into the Batch parameters through an input transformer
("EventBridge does not escape values extracted by the input path": the key is pasted into the
JSON as it is). A double quote ends the string early (invalid JSON: the delivery fails and the
event is dead-lettered), a backslash starts an escape (``\\t`` becomes a tab: the job is given
another key, or the JSON breaks), and control characters make the JSON invalid or alter the
key. No job can run on such a key, so the reject handler, which sees every upload, tells the
uploader instead, naming the characters.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
"""

from __future__ import annotations

_NAMED = {'"': 'a double quote (")', "\\": "a backslash (\\)", "\t": "a tab"}
_NAMED |= {"\n": "a line break", "\r": "a carriage return"}


def _name(ch: str) -> str:
    return _NAMED.get(ch, f"a control character (U+{ord(ch):04X})")


def untransportable(key: str) -> list[str]:
    """The characters of ``key`` an input transformer cannot pass faithfully, named, in
    order of first appearance (empty: the key is carried as it is)."""
    seen: dict[str, None] = {}
    for ch in key:
        if ch in _NAMED or ord(ch) < 0x20 or ord(ch) == 0x7F:
            seen.setdefault(_name(ch))
    return list(seen)


def untransportable_reason(names: list[str]) -> str:
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (
        f"The file name contains {listed}, which the upload event cannot pass to the job, "
        "so no job was started."
    )
