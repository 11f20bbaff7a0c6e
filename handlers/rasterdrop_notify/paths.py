"""Pure key arithmetic shared with the job's convention (docs/contracts.md, S3 layout).

``input/<path>.tif`` → ``output/<path>/`` (extension ``.tif``/``.tiff``/``.vrt`` dropped, any
case);
``training/<name>/manifest.json`` → ``models/<name>/runs/<manifest version>/``.
Keys are used raw, exactly as S3 stores them: never URL-decoded here.

``check_key`` is the job's key rule (``batch_image``'s ``check_key``), check for check and in
the same order, so the notifier refuses exactly the keys the job refuses;
``tests/handlers/test_key_rule_parity.py`` runs both over the same keys.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from rasterdrop_notify.absent import optional
from rasterdrop_notify.layout import (
    BANDS_FOLDER_SUFFIX,
    INPUT_PREFIX,
    INPUT_SUFFIXES,
    MANIFEST_JSON,
    MODELS_PREFIX,
    NOTIFIED_PREFIX,
    NULL_RUN,
    OUTPUT_PREFIX,
    RUNS_SEGMENT,
    TRAINING_PREFIX,
)

MAX_KEY_BYTES = 1024
BAND_FILE = "vrt_band_file"  # a KeyRefused code the notifier stays silent about
_TRAINING_RE = re.compile(
    rf"^{re.escape(TRAINING_PREFIX)}(?P<name>[^/]+)/{re.escape(MANIFEST_JSON)}$"
)


class KeyRefused(ValueError):
    """A key the job refuses (so the notifier does too); ``code`` is the job's error code:
    ``bad_key``, ``outside_input_prefix``, ``not_a_tiff`` or ``vrt_band_file``."""

    def __init__(self, key: str, reason: str, code: str = "bad_key") -> None:
        super().__init__(f"key {key!r} {reason}")
        self.key = key
        self.code = code


def check_key(key: str, input_prefix: str = INPUT_PREFIX) -> str:
    """Validate an input key; return its ``<path>`` (below the prefix, without extension).

    Refused (KeyRefused, a ValueError), in this order: empty; over 1024 UTF-8 bytes; control
    characters (unicode category Cc); lone surrogates; not under ``input_prefix``; not
    ending in .tif/.tiff/.vrt (any case); an empty, ``.`` or ``..`` path segment; a folder
    segment ending in ``.bands`` (a VRT's band file: ``vrt_band_file``).
    """
    path = check_key_under(
        key,
        input_prefix,
        INPUT_SUFFIXES,
        "outside_input_prefix",
        "not_a_tiff",
        ".tif, .tiff or .vrt",
    )
    if any(segment.lower().endswith(BANDS_FOLDER_SUFFIX) for segment in path.split("/")[:-1]):
        raise KeyRefused(
            key,
            f"is a band file (its folder ends in {BANDS_FOLDER_SUFFIX}): it is read "
            "with the VRT that references it, never predicted alone",
            BAND_FILE,
        )
    return path


def check_key_under(
    key: str,
    prefix: str,
    suffixes: tuple[str, ...],
    outside_code: str,
    suffix_code: str,
    suffix_text: str,
) -> str:
    """The job's ``check_key_under``, check for check: any upload that starts a job."""
    if not key:
        raise KeyRefused(key, "is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyRefused(key, f"is longer than {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        raise KeyRefused(key, "contains control characters")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        raise KeyRefused(key, "is not valid unicode")
    if not key.startswith(prefix):
        raise KeyRefused(key, f"is not under {prefix}", outside_code)
    lowered = key.lower()
    suffix = next((s for s in suffixes if lowered.endswith(s)), None)
    if suffix is None:
        raise KeyRefused(key, f"does not end in {suffix_text}", suffix_code)
    path = key[len(prefix) : len(key) - len(suffix)]
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise KeyRefused(key, "has an empty, '.' or '..' path segment")
    return path


def output_prefix_for(
    key: str, input_prefix: str = INPUT_PREFIX, output_prefix: str = OUTPUT_PREFIX
) -> str:
    """Return ``output/<path>/`` for ``input/<path>.tif``; KeyRefused (ValueError) for a key
    the job refuses (see ``check_key``)."""
    return f"{output_prefix}{check_key(key, input_prefix)}/"


def is_raster_key(key: str) -> bool:
    return key.lower().endswith(INPUT_SUFFIXES)


def tenant_of(key: str, input_prefix: str = INPUT_PREFIX) -> str | None:
    """First path segment under ``input/`` when the key has one (``input/t/x.tif`` → ``t``)."""
    if not key.startswith(input_prefix):
        return None
    first, sep, _rest = key[len(input_prefix) :].partition("/")
    return first if sep and first else None


def training_name(key: str) -> str | None:
    """``<name>`` for ``training/<name>/manifest.json``, else None."""
    match = _TRAINING_RE.match(key)
    return match.group("name") if match else None


def training_run_prefix(name: str, manifest_version: str | None) -> str:
    """Where the train job writes its run report: ``models/<name>/runs/<version>/``
    (``runs/null/`` when the manifest has no version id)."""
    return f"{MODELS_PREFIX}{name}/{RUNS_SEGMENT}{optional(manifest_version) or NULL_RUN}/"


def file_name(key: str) -> str:
    """The last path segment of a key (what a user recognises as the file)."""
    return key.rstrip("/").rsplit("/", 1)[-1]


def marker_key(bucket: str, key: str, input_version: str | None, model_version: str | None) -> str:
    """``notified/<sha256(bucket, key, input version, model version)>.json``.

    The four values are hashed as a JSON array, so no choice of separator can make two
    different tuples collide (``("a/b", "c")`` vs ``("a", "b/c")``).
    """
    material = json.dumps([bucket, key, input_version or "", model_version or ""])
    return f"{NOTIFIED_PREFIX}{hashlib.sha256(material.encode()).hexdigest()}.json"
