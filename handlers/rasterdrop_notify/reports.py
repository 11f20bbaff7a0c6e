"""Read the job's reports (``summary.json``/``error.json``) and turn them into Outcomes."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from rasterdrop_notify.absent import optional
from rasterdrop_notify.outcome import ClassShare, ValueStats

log = logging.getLogger("rasterdrop.notify")

MAX_REPORT_BYTES = 1024 * 1024
OUTPUT_LABELS = {
    "classes": "Classes (GeoTIFF)",
    "confidence": "Confidence (GeoTIFF)",
    "preview": "Preview (PNG)",
    "qgis_style": "QGIS style (QML)",
    "polygons": "Class polygons (GeoPackage)",
    "probabilities": "Class probabilities (GeoTIFF)",
    "prediction": "Prediction (GeoTIFF)",
    "uncertainty": "Uncertainty (GeoTIFF)",
    "accuracy_sample": "Accuracy sample to label in QGIS (GeoPackage)",
    "review": "Points to label next, where the model is least sure (GeoPackage for QGIS)",
}
#: Area units that mean nothing to a reader (pixel counts, square degrees): no area column.
NO_AREA_UNITS = frozenset({"pixel", "degree^2"})


def get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The JSON object at ``key``, or None if it does not exist (or is not a JSON object)."""
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        if code in ("AccessDenied", "403"):
            # Without s3:ListBucket S3 answers 403 for a missing key. Report the job from its
            # Batch record rather than sending nothing; the stack should grant ListBucket.
            log.warning("get_object %s denied: treating as missing (grant s3:ListBucket)", key)
            return None
        raise
    raw = resp["Body"].read(MAX_REPORT_BYTES + 1)
    if len(raw) > MAX_REPORT_BYTES:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def same_version(doc: dict[str, Any], version: str | None) -> bool:
    """False only when both the report and the event name an input version and they differ."""
    reported = optional(dict(doc.get("input") or {}).get("version_id"))
    expected = optional(version)
    return reported is None or expected is None or reported == expected


def model_of(doc: dict[str, Any] | None) -> tuple[str | None, str | None]:
    model = (doc or {}).get("model") or {}
    if not isinstance(model, dict):
        return None, None
    name, version = model.get("name"), model.get("version")
    return (str(name) if name else None), (str(version) if version else None)


def class_shares(summary: dict[str, Any], area_unit: str | None) -> tuple[ClassShare, ...]:
    show_area = area_unit not in NO_AREA_UNITS
    rows = []
    for item in summary.get("classes") or []:
        if not isinstance(item, dict):
            continue
        rows.append(
            ClassShare(
                name=str(item.get("name", item.get("id", "?"))),
                share=float(item.get("share") or 0.0),
                pixels=_int(item.get("pixels")),
                area=_float(item.get("area")) if show_area else None,
                area_unit=area_unit,
            )
        )
    return tuple(rows)


def value_stats(summary: dict[str, Any]) -> ValueStats | None:
    """A regression's ``values`` (name, unit, min, max, mean, std, percentiles), or None."""
    values = summary.get("values")
    if not isinstance(values, dict):
        return None
    raw = values.get("percentiles")
    percentiles = tuple(
        (str(k), float(v)) for k, v in (raw.items() if isinstance(raw, dict) else ())
        if _is_number(v)
    )  # fmt: skip
    return ValueStats(
        name=str(values.get("name") or "value"),
        unit=str(values.get("unit") or ""),
        minimum=_float(values.get("min")),
        maximum=_float(values.get("max")),
        mean=_float(values.get("mean")),
        std=_float(values.get("std")),
        percentiles=percentiles,
    )


def output_keys(summary: dict[str, Any], results_prefix: str) -> list[tuple[str, str]]:
    """(label, object key) for each downloadable output, confined to ``results_prefix``."""
    out = []
    outputs = summary.get("outputs") or {}
    for name, label in OUTPUT_LABELS.items():
        value = outputs.get(name) if isinstance(outputs, dict) else None
        if not isinstance(value, str) or not value:
            continue
        key = value if value.startswith(results_prefix) else results_prefix + value.lstrip("/")
        if "/" in key[len(results_prefix) :]:
            continue  # never sign anything outside this result's own folder
        out.append((label, key))
    return out


METRIC_GROUPS = {"blocked_cv": "blocked CV", "random_cv": "random CV"}
METRIC_NAMES = {
    "overall_accuracy": "accuracy",
    "macro_f1": "macro F1",
    "f1_macro": "macro F1",
    "r2": "R2",
    "rmse": "RMSE",
    "mae": "MAE",
}
METRIC_SKIP = frozenset({"folds", "n", "n_test", "skipped"})


def training_metrics(summary: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """Numeric metrics as ``(label, value)``; nested groups become ``"blocked CV: accuracy"``.

    Reads the train job's run summary (``metrics`` = ``{"blocked_cv": {...}, "random_cv":
    {...}}``) and also flat ``{"accuracy": 0.95}``; counts and skip notes are left out.
    """
    out: list[tuple[str, float]] = []
    metrics = summary.get("metrics") or {}
    if not isinstance(metrics, dict):
        return ()
    for key, value in metrics.items():
        if isinstance(value, dict):
            group = METRIC_GROUPS.get(key, key)
            out += [(f"{group}: {label}", v) for label, v in _numeric(value)]
        elif key not in METRIC_SKIP and _is_number(value):
            out.append((METRIC_NAMES.get(key, key), float(value)))
    return tuple(out)


def total_seconds(summary: dict[str, Any]) -> float | None:
    """``timings_s.total``, else the sum of the recorded phases."""
    timings = summary.get("timings_s") or {}
    if not isinstance(timings, dict):
        return None
    if _is_number(timings.get("total")):
        return float(timings["total"])
    phases = [float(v) for v in timings.values() if _is_number(v)]
    return sum(phases) if phases else None


def _numeric(group: dict[str, Any]) -> list[tuple[str, float]]:
    return [
        (METRIC_NAMES.get(k, k), float(v))
        for k, v in group.items()
        if k not in METRIC_SKIP and _is_number(v)
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


MAX_REASON_CHARS = 300
COMPARED = (("overall_accuracy", "accuracy"), ("kappa", "kappa"), ("macro_f1", "macro F1"))


def promotion_reason(model: dict[str, Any]) -> str | None:
    """The promotion gate's sentence (``model.promotion.reason`` of the run summary)."""
    promotion = model.get("promotion") if isinstance(model, dict) else None
    reason = promotion.get("reason") if isinstance(promotion, dict) else None
    return " ".join(str(reason).split())[:MAX_REASON_CHARS] if reason else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def comparison_lines(summary: dict[str, Any]) -> tuple[str, ...]:
    """The run summary's ``comparison`` as email lines: before → after on the same blocks."""
    comparison = summary.get("comparison")
    if not isinstance(comparison, dict):
        return ()
    if comparison.get("skipped"):
        return (f"not compared: {' '.join(str(comparison['skipped']).split())[:200]}",)
    before, after = comparison.get("before"), comparison.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ()
    lines = []
    for key, label in COMPARED:
        b, a = _num(before.get(key)), _num(after.get(key))
        if b is not None and a is not None:
            lines.append(f"{label} {b:.3f} -> {a:.3f}")
    changed = []
    for item in comparison.get("most_changed") or []:
        change = _num(item.get("change")) if isinstance(item, dict) else None
        if change is not None:
            changed.append(f"{item.get('name', item.get('id'))} {change:+.3f}")
    if changed:
        lines.append("F1 changed most: " + ", ".join(changed))
    return tuple(lines)
