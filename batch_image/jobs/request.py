"""What the event tells the job, checked before anything touches S3.

The key arrives exactly as S3 stores it (EventBridge passes it raw): it is never
URL-decoded, so ``a+b.tif`` is a key with a plus sign and ``a%20b.tif`` one with
a percent sign. Spaces, ``+`` and any unicode are fine; what is refused is a key
outside the input prefix, an extension other than ``.tif``/``.tiff``/``.vrt``, a
``..`` or empty path segment (which would make the output location ambiguous), and
control characters. A key inside a folder whose name ends in ``.bands`` is a VRT's band
file (``input/x/scene.bands/B4.tif``): its own upload starts no prediction (code
``vrt_band_file``, and the notifier stays silent about it).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from batch_image.errors import ConfigError, InvalidInputError
from batch_image.publish.layout import BANDS_FOLDER_SUFFIX, INPUT_SUFFIXES

MAX_KEY_BYTES = 1024
#: ``--part`` of a sharded run's jobs (Batch parameter ``part``; the notifier's twin is
#: ``rasterdrop_notify.decisions.PART_SHARD``): an array job's child predicts its share of
#: the windows, the assemble job publishes. Absent: the job the rule started.
PART_SHARD = "shard"
PART_ASSEMBLE = "assemble"
PARTS = (PART_SHARD, PART_ASSEMBLE)
# EventBridge / Batch stand-ins for "no value": absent field, JSON null rendered as text,
# or a Batch parameter reference left unresolved because the parameter was not set.
_ABSENT = {"", "null", "none", "undefined"}


def optional(value: str | None) -> str | None:
    """``None`` for the ways an absent event field reaches the command line."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped.lower() in _ABSENT or stripped.startswith("Ref::"):
        return None
    return value


def optional_size(value: str | None) -> int | None:
    value = optional(value)
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        return None  # the event's size is advisory: HEAD is authoritative
    return size if size >= 0 else None


@dataclass(frozen=True)
class JobRequest:
    """One S3 predict job as the event describes it (version/etag/size optional)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    part: str | None = None  # PART_SHARD | PART_ASSEMBLE | None (the rule's job)
    shards: int | None = None  # children of the sharded run (parts only)

    @classmethod
    def from_cli(
        cls,
        bucket: str,
        key: str,
        version_id: str | None,
        etag: str | None,
        size: str | None,
        part: str | None = None,
        shards: str | None = None,
    ) -> JobRequest:
        etag_value = optional(etag)
        part_value = optional(part)
        count = optional_size(shards)
        if part_value is not None and (part_value not in PARTS or not count or count < 2):
            raise ConfigError(
                f"--part {part_value!r} --shards {shards!r}: a part is one of {', '.join(PARTS)}"
                " with at least 2 shards",
                code="config_invalid",
            )
        return cls(
            bucket=bucket,
            key=key,
            version_id=optional(version_id),
            etag=etag_value.strip('"') if etag_value else None,
            size=optional_size(size),
            part=part_value,
            shards=count if part_value else None,
        )


def check_key(key: str, input_prefix: str = "input/") -> str:
    """Validate an input key; return its ``<path>`` (below the prefix, without extension)."""
    path = check_key_under(
        key,
        input_prefix,
        INPUT_SUFFIXES,
        "outside_input_prefix",
        "not_a_tiff",
        ".tif, .tiff or .vrt",
    )
    if any(seg.lower().endswith(BANDS_FOLDER_SUFFIX) for seg in path.split("/")[:-1]):
        raise InvalidInputError(
            f"key {key!r} is a band file (its folder ends in {BANDS_FOLDER_SUFFIX}): it is read "
            "with the VRT that references it, never predicted alone",
            code="vrt_band_file",
            key=key,
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
    """The key rule for any upload that starts a job (inputs, accuracy samples): ``<path>``
    of ``<prefix><path><suffix>``, or :class:`InvalidInputError` in this order: empty, too
    long, control characters, lone surrogates, outside ``prefix``, wrong suffix (any case),
    an empty, ``.`` or ``..`` path segment."""

    def bad(reason: str, code: str = "bad_key") -> InvalidInputError:
        return InvalidInputError(f"key {key!r} {reason}", code=code, key=key)

    if not key:
        raise bad("is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise bad(f"is longer than {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        raise bad("contains control characters")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        raise bad("is not valid unicode")
    if not key.startswith(prefix):
        raise bad(f"is not under {prefix}", code=outside_code)
    lowered = key.lower()
    suffix = next((s for s in suffixes if lowered.endswith(s)), None)
    if suffix is None:
        raise bad(f"does not end in {suffix_text}", code=suffix_code)
    path = key[len(prefix) : len(key) - len(suffix)]
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise bad("has an empty, '.' or '..' path segment")
    return path


def output_prefix_for(path: str, output_prefix: str = "output/") -> str:
    """``input/<path>.tif`` (or ``.vrt``) → ``output/<path>/``."""
    return f"{output_prefix}{path}/"


def run_id(bucket: str, key: str, input_identity: str, model_name: str, model_version: str) -> str:
    """Stable id of one (input version, model version) pair: names ``partial/<run-id>/``."""
    h = hashlib.sha256()
    for part in (bucket, key, input_identity, model_name, model_version):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:32]
