"""The key structure of summary.json / error.json: as docs/contracts.md shows it, and as
the code wrote it before the documents became typed values (pinned here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parents[3] / "docs" / "contracts.md"

SUMMARY = {
    "": [
        "schema",
        "status",
        "input",
        "raster",
        "model",
        "classes",
        "outputs",
        "timings_s",
        "workers",
        "parallel",
        "windows",
        "resumed_windows",
        "peak_rss_mb",
        "versions",
        "created_at",
        "review",
    ],
    "input": ["path", "bucket", "key", "version_id", "etag", "size_bytes"],
    "raster": [
        "width",
        "height",
        "count",
        "dtype",
        "crs",
        "transform",
        "pixel_area",
        "area_unit",
        "valid_pixels",
        "nodata_pixels",
    ],
    "model": ["name", "version"],
    "classes[]": ["id", "name", "colour", "pixels", "share", "area", "mean_confidence"],
    "outputs": ["classes", "confidence", "preview", "qgis_style", "review"],
    "timings_s": ["validate", "predict", "model", "finalize", "total"],
    "review": [
        "file",
        "requested",
        "points",
        "min_distance_px",
        "score",
        "per_class",
        "fingerprint",
    ],
}
# the S3 job's summary: the same, plus its own fields at the ends of their parts
S3_SUMMARY = {
    **SUMMARY,
    "": [*SUMMARY[""][:-1], "run_id", "review", "compute", "job"],
    "model": ["name", "version", "uri"],
    "compute": ["vcpus", "job_vcpu_s", "cpu_s", "vcpu_s"],  # a sharded run adds its shards'
    "job": ["id", "attempt"],  # the Batch job that wrote it (the notifier reads it)
    "timings_s": [*SUMMARY["timings_s"], "checks", "job_total"],
}
ERROR = {
    "": ["schema", "status", "category", "code", "message", "details", "input", "created_at"],
    "input": ["path"],
}
S3_ERROR = {
    "": [*ERROR[""], "model", "run_id"],
    "input": SUMMARY["input"],
    "model": ["name", "version", "uri"],
}


def structure(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Path → its keys in order, for the document and each of its parts (``versions``
    and ``details`` vary by run and are left out)."""
    out = {"": list(doc)}
    for key, value in doc.items():
        if key in ("versions", "details"):
            continue
        if isinstance(value, dict):
            out[key] = list(value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            shapes = {tuple(item) for item in value}
            assert len(shapes) == 1, shapes  # every class entry has the same keys
            out[f"{key}[]"] = list(value[0])
    return out


def _json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", CONTRACTS.read_text(), flags=re.S)


def contract_example(schema: str) -> dict[str, Any]:
    """The example document of ``schema`` in docs/contracts.md, placeholders made JSON."""
    block = next(b for b in _json_blocks() if f'"schema": "{schema}"' in b)
    block = re.sub(r"\[a, b, c, d, e, f\]", "[]", block).replace("{...}", "{}")
    return json.loads(block)


def is_ordered_subset(part: list[str], whole: list[str]) -> bool:
    """Every key of ``part`` is in ``whole``, in the same order."""
    it = iter(whole)
    return all(key in it for key in part)


def assert_follows_contract(doc: dict[str, Any], schema: str) -> None:
    """Each part of the contract's example is in ``doc`` with its keys in that order."""
    real = structure(doc)
    for path, keys in structure(contract_example(schema)).items():
        if path == "input" and keys == [] and schema.endswith("error/1"):
            continue  # the example's input is "{...}"
        assert path in real, path
        assert is_ordered_subset(keys, real[path]), (path, keys, real[path])
