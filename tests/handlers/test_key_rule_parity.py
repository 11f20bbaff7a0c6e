"""The notifier refuses exactly the keys the job refuses, and reads absent values the same way.

Both sides run over the same inputs: a table of tricky keys and a seeded stream of generated
ones (hypothesis is not a dependency of this project), then a table of "absent" event values.
The job's functions are imported here, in one place, so this file follows them when they move.
"""

from __future__ import annotations

import random

import pytest

from batch_image.jobs.request import check_key, optional
from batch_image.jobs.request import output_prefix_for as job_output_prefix_for
from rasterdrop_notify import absent, paths

DEFAULT = ("input/", "output/")

# (key, expected verdict under the default prefixes): "refused" or the output prefix. The
# expectation pins the rule itself, so both sides drifting together still fails.
TRICKY_KEYS: list[tuple[str, str]] = [
    ("input/a.tif", "output/a/"),
    ("input/a/b/c.tiff", "output/a/b/c/"),
    ("input/landsat/scene.vrt", "output/landsat/scene/"),
    ("input/landsat/SCENE.VRT", "output/landsat/SCENE/"),
    ("input/landsat/scene.bands/B4.TIF", "refused"),  # a VRT's band file
    ("input/landsat/scene.BANDS/x/B4.tif", "refused"),
    ("input/landsat/scene.bands.tif", "output/landsat/scene.bands/"),  # a file, not a folder
    ("input/a.vrt.tif", "output/a.vrt/"),
    ("input/A.TIF", "output/A/"),
    ("input/a.TiFf", "output/a/"),
    ("input/a.tif.tif", "output/a.tif/"),
    ("input/a/b.TIF.tiff", "output/a/b.TIF/"),
    ("input/.hidden.tif", "output/.hidden/"),
    ("input/a..b.tif", "output/a..b/"),
    ("input/...tif", "refused"),  # path ".."
    ("input/..tif", "refused"),  # path "."
    ("input/.tif", "refused"),  # path ""
    ("input/a/.tif", "refused"),
    ("input/a//b.tif", "refused"),
    ("input//a.tif", "refused"),
    ("input/a/../b.tif", "refused"),
    ("input/./a.tif", "refused"),
    ("input/a/./b.tif", "refused"),
    ("input/a/ /b.tif", "output/a/ /b/"),
    ("input/ .tif", "output/ /"),
    ("input/my field+1=2&x.tif", "output/my field+1=2&x/"),
    ("input/a%2F..%2Fb.tif", "output/a%2F..%2Fb/"),  # raw: never URL-decoded
    ("input/..\\a.tif", "output/..\\a/"),
    ("input/ünïcødé/Gärten-Süd.tif", "output/ünïcødé/Gärten-Süd/"),
    ("input/日本/画像.tif", "output/日本/画像/"),
    ("input/emoji-🙂.tif", "output/emoji-🙂/"),
    ("input/a\u200b.tif", "output/a\u200b/"),  # zero-width space: format (Cf), allowed
    ("input/a\u00a0.tif", "output/a\u00a0/"),  # no-break space: allowed
    ("input/\u0130.tif", "output/\u0130/"),  # İ lowers to two characters
    ("input/a.t\u0130f", "refused"),
    ("input/a\u0085.tif", "refused"),  # NEL is a C1 control character
    ("input/a\x7f.tif", "refused"),
    ("input/a\x00.tif", "refused"),
    ("input/a\t.tif", "refused"),
    ("input/a\r\n.tif", "refused"),
    ("input/a\ud800.tif", "refused"),  # lone surrogates
    ("input/a\udfff.tif", "refused"),
    ("input/a\ud800", "refused"),
    ("", "refused"),
    ("input/", "refused"),
    ("input", "refused"),
    ("Input/a.tif", "refused"),
    ("/input/a.tif", "refused"),
    ("inputs/a.tif", "refused"),
    ("output/a.tif", "refused"),
    ("input/a.tif/", "refused"),
    ("input/a.tif ", "refused"),
    ("input/a.tiff.bak", "refused"),
    ("input/a.png", "refused"),
    ("other/\x00.png", "refused"),
    ("input/" + "a" * 1014 + ".tif", "output/" + "a" * 1014 + "/"),  # exactly 1024 bytes
    ("input/" + "a" * 1015 + ".tif", "refused"),
    ("input/" + "é" * 507 + ".tif", "output/" + "é" * 507 + "/"),  # 1024 bytes
    ("input/" + "é" * 508 + ".tif", "refused"),  # 1026 bytes, 518 characters
    ("input/" + "\x00" * 1100 + ".tif", "refused"),
    ("input/" + "a/" * 300 + "b.tif", "output/" + "a/" * 300 + "b/"),
]


def job_verdict(key: str, prefixes: tuple[str, str] = DEFAULT) -> tuple:
    """("ok", output prefix) or ("refused", code, message) by the job's rule."""
    try:
        path = check_key(key, prefixes[0])
    except Exception as exc:  # the job's InvalidInputError: compared by category and code
        assert getattr(exc, "category", None) == "invalid_input", exc
        return ("refused", exc.code, str(exc))
    return ("ok", job_output_prefix_for(path, prefixes[1]))


def handler_verdict(key: str, prefixes: tuple[str, str] = DEFAULT) -> tuple:
    try:
        prefix = paths.output_prefix_for(key, *prefixes)
    except ValueError as exc:
        assert isinstance(exc, paths.KeyRefused), exc
        return ("refused", exc.code, str(exc))
    return ("ok", prefix)


@pytest.mark.parametrize(("key", "expected"), TRICKY_KEYS, ids=lambda v: ascii(v)[:60])
def test_tricky_keys_get_the_same_verdict(key, expected):
    job, handler = job_verdict(key), handler_verdict(key)
    assert handler == job
    assert (job[1] if job[0] == "ok" else "refused") == expected


@pytest.mark.parametrize(
    ("key", "prefixes"),
    [
        ("in/a.tif", ("in/", "out/")),
        ("input/a.tif", ("in/", "out/")),
        ("in.put/x/y.TIFF", ("in.put/", "results/")),
        ("tenant-uploads/acme/a.tif", ("tenant-uploads/", "o/")),
        ("tenant-uploads/../a.tif", ("tenant-uploads/", "o/")),
    ],
)
def test_custom_prefixes_get_the_same_verdict(key, prefixes):
    assert handler_verdict(key, prefixes) == job_verdict(key, prefixes)


_FRAGMENTS = [
    "input/", "in/", "/", "//", ".", "..", "a", "B7", " ", "+", "%2F", "é", "日", "🙂",
    "\x00", "\x1f", "\x7f", "\u0085", "\u200b", "\ud800", "\udc00", "\\", "İ",
    ".tif", ".TIF", ".tiff", ".TiFf", ".png", ".tif.", "output/", ".vrt", ".bands/",
]  # fmt: skip


def generated_keys(n: int, seed: int = 20261126) -> list[str]:
    """Keys built from the fragments the rule cares about; some pushed past 1024 bytes."""
    rng = random.Random(seed)
    keys = []
    for _ in range(n):
        parts = [rng.choice(_FRAGMENTS) for _ in range(rng.randint(0, 10))]
        if rng.random() < 0.7:
            parts.insert(0, "input/")
        if rng.random() < 0.5:
            parts.append(rng.choice([".tif", ".TIFF", ".tiff", ".vrt"]))
        if rng.random() < 0.05:
            parts.insert(1, rng.choice(["a", "é", "日"]) * rng.randint(250, 1100))
        keys.append("".join(parts))
    return keys


def test_generated_keys_get_the_same_verdict():
    keys = generated_keys(3000)
    verdicts = [(key, job_verdict(key), handler_verdict(key)) for key in keys]
    assert [(k, j, h) for k, j, h in verdicts if j != h] == []
    # the stream exercises every branch of the rule, so an agreement here means something
    outcomes = {j[1] if j[0] == "refused" else "ok" for _, j, _ in verdicts}
    assert outcomes == {"ok", "bad_key", "outside_input_prefix", "not_a_tiff", "vrt_band_file"}
    messages = {j[2].removeprefix(f"key {k!r} ") for k, j, _ in verdicts if j[0] == "refused"}
    assert {
        "is empty",
        "is longer than 1024 bytes",
        "contains control characters",
        "is not valid unicode",
        "is not under input/",
        "does not end in .tif, .tiff or .vrt",
        "has an empty, '.' or '..' path segment",
    } <= messages


ABSENT_VALUES: list[tuple[str | None, str | None]] = [
    (None, None),
    ("", None),
    (" ", None),
    ("\t\n", None),
    ("null", None),
    ("NULL", None),
    (" null ", None),
    ("Null", None),
    ("None", None),
    ("none", None),
    ("undefined", None),
    ("UNDEFINED", None),
    ("Ref::version", None),
    (" Ref::version", None),
    ("Ref::", None),
    ("ref::version", "ref::version"),  # the Batch reference is case-sensitive
    ("Ref:version", "Ref:version"),
    ("x Ref::y", "x Ref::y"),
    ("nul", "nul"),
    ("nullx", "nullx"),
    ("0", "0"),
    ("false", "false"),
    ("v1", "v1"),
    (" v1 ", " v1 "),  # present values are returned as given, not stripped
    ("3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY", "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"),
]


@pytest.mark.parametrize(("value", "expected"), ABSENT_VALUES)
def test_absent_values_are_read_like_the_job(value, expected):
    assert absent.optional(value) == optional(value) == expected


def test_absent_values_from_json_documents_become_text():
    # reports are JSON: a number where a version id belongs is a present value, as text
    assert absent.optional(5) == "5"
    assert absent.optional(0) == "0"
