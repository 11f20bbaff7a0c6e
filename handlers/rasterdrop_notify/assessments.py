"""The notifier's ``assess`` kind: a labelled sample was assessed (or refused).

The assess job (``batch_image.jobs.assess_job``) runs on ``assessments/<path>.gpkg`` and
writes ``output/<path>/assessment/summary.json`` (``"kind": "assess"``) or ``error.json``;
this module turns that into the email: overall accuracy, and per class the pixel-counting
area beside the error-adjusted area with its 95 % interval, and signed links to the
report. Failures go through the same failure rules as every job (``failures``).
The sample key rule is the job's (``check_sample_key``), check for check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rasterdrop_notify.failures import choose_failure, classify_job
from rasterdrop_notify.keyring import load_keys
from rasterdrop_notify.layout import (
    ASSESSMENT_SEGMENT,
    ASSESSMENTS_PREFIX,
    ERROR_JSON,
    OUTPUT_PREFIX,
    SAMPLE_SUFFIX,
    SUMMARY_JSON,
)
from rasterdrop_notify.links import link_expiry, link_url
from rasterdrop_notify.outcome import FAILED, SUCCEEDED, Link, Outcome
from rasterdrop_notify.paths import KeyRefused, check_key_under, file_name
from rasterdrop_notify.reports import get_json
from rasterdrop_notify.tokens import sign_token

ASSESS = "assess"
REPORT_LABELS = {
    "assessment.md": "Assessment report (Markdown)",
    "assessment.png": "Areas with intervals (PNG)",
    "assessment.json": "Assessment (JSON)",
}


@dataclass(frozen=True)
class AreaRow:
    name: str
    mapped: float | None
    estimate: float | None
    half_width: float | None
    users: float | None = None
    producers: float | None = None


@dataclass(frozen=True)
class AssessmentOutcome(Outcome):
    """An :class:`Outcome` of ``kind="assess"`` with the numbers the email shows."""

    overall: float | None = None
    overall_half_width: float | None = None
    areas: tuple[AreaRow, ...] = ()
    area_unit: str | None = None
    labelled: int | None = None


def check_sample_key(key: str, prefix: str = ASSESSMENTS_PREFIX) -> str:
    """``assessments/<path>.gpkg`` → ``<path>``; :class:`KeyRefused` as the job refuses."""
    return check_key_under(
        key, prefix, (SAMPLE_SUFFIX,), "outside_assessments_prefix", "not_a_geopackage",
        SAMPLE_SUFFIX,
    )  # fmt: skip


def is_assessment_key(key: str) -> bool:
    return key.startswith(ASSESSMENTS_PREFIX)


def results_prefix(path: str, output_prefix: str = OUTPUT_PREFIX) -> str:
    return f"{output_prefix}{path}/{ASSESSMENT_SEGMENT}"


def assessment_outcome(
    detail: Any, clients: Any, settings: Any, bucket: str, key: str, version: str | None,
    now: datetime,
) -> Any:  # fmt: skip
    """The :class:`~rasterdrop_notify.service.Prepared` message of one assess job."""
    from rasterdrop_notify.service import Prepared

    common = {"bucket": bucket, "key": key, "version": version, "job_id": detail.jobId,
              "kind": ASSESS, "attempts": len(detail.attempts)}  # fmt: skip
    try:
        folder = results_prefix(check_sample_key(key), settings.output_prefix)
    except KeyRefused as exc:
        return Prepared(AssessmentOutcome(status=FAILED, category="invalid_input",
                                          reason=f"{exc}: rename the file and upload it again.",
                                          code=exc.code, **common))  # fmt: skip
    common["results_prefix"] = folder
    if detail.status == SUCCEEDED.upper():
        summary = get_json(clients.s3, bucket, folder + SUMMARY_JSON)
        if summary is not None and _same_sample(summary, version):
            return _success(summary, clients, settings, folder, now, common)
        reason = "The assessment reported success but its summary.json is missing."
        return Prepared(AssessmentOutcome(status=FAILED, category="internal", reason=reason,
                                          **common))  # fmt: skip
    error_doc = get_json(clients.s3, bucket, folder + ERROR_JSON)
    if error_doc is not None and not _same_sample(error_doc, version):
        error_doc = None
    failure = choose_failure(classify_job(detail), error_doc)
    return Prepared(
        AssessmentOutcome(
            status=FAILED,
            category=failure.category,
            reason=failure.reason,
            code=failure.code,
            exit_code=failure.exit_code,
            **{**common, "attempts": failure.attempts},
        )
    )


def _same_sample(doc: dict[str, Any], version: str | None) -> bool:
    reported = (doc.get("sample") or doc.get("input") or {}).get("version_id")
    return not reported or not version or reported == version


def _success(summary, clients, settings, folder, now, common) -> Any:
    from rasterdrop_notify.service import Prepared

    overall = summary.get("overall_accuracy") or {}
    outcome = AssessmentOutcome(
        status=SUCCEEDED,
        overall=_num(overall.get("value")),
        overall_half_width=_half(overall),
        areas=tuple(_row(c) for c in summary.get("classes") or [] if isinstance(c, dict)),
        area_unit=summary.get("area_unit"),
        labelled=(summary.get("points") or {}).get("labelled"),
        processing_s=_num((summary.get("timings_s") or {}).get("total")),
        **common,
    )
    if not settings.link_base_url or not settings.link_secret_arn or clients.secrets is None:
        return Prepared(outcome)
    keys = load_keys(clients.secrets, settings.link_secret_arn)
    expires = link_expiry(now, settings, summary.get("created_at"))
    links = tuple(
        Link(label, link_url(settings.link_base_url, sign_token(folder + name, expires, keys)))
        for name, label in REPORT_LABELS.items()
    )
    return Prepared(outcome, links, datetime.fromtimestamp(expires, UTC))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _half(est: Any) -> float | None:
    ci = est.get("ci95") if isinstance(est, dict) else None
    if not isinstance(ci, list) or len(ci) != 2 or _num(ci[0]) is None or _num(ci[1]) is None:
        return None
    return (float(ci[1]) - float(ci[0])) / 2


def _row(c: dict[str, Any]) -> AreaRow:
    area = c.get("area") or {}
    return AreaRow(
        name=str(c.get("name", c.get("id", "?"))),
        mapped=_num(c.get("mapped_area")),
        estimate=_num(area.get("value")),
        half_width=_half(area),
        users=_num((c.get("users_accuracy") or {}).get("value")),
        producers=_num((c.get("producers_accuracy") or {}).get("value")),
    )


# --- rendering -------------------------------------------------------------------------------


def render_assessment(o: AssessmentOutcome, links: Sequence[Link], expires: datetime | None) -> Any:
    """Subject, body and attributes (``kind=assess``, ``tenant`` = first segment)."""
    from rasterdrop_notify.render import Message, category_advice, category_label, fit_subject

    attributes = {"status": o.status, "kind": ASSESS}
    first, sep, _ = o.key[len(ASSESSMENTS_PREFIX) :].partition("/")
    if o.key.startswith(ASSESSMENTS_PREFIX) and sep and first:
        attributes["tenant"] = first
    name = file_name(o.key)
    if o.status == SUCCEEDED:
        subject = fit_subject("rasterdrop: assessment of ", name, " ready")
        body = _success_body(o, name, links, expires)
    else:
        label = category_label(o.category)
        subject = fit_subject("rasterdrop: assessment of ", name, f" failed ({label})")
        reason = " ".join((o.reason or "no reason was recorded").split())
        lines = [f"The accuracy assessment of {name} failed: {label}.", "",
                 f"Sample       s3://{o.bucket}/{o.key}",
                 f"Reason       {reason}" + (f" [{o.code}]" if o.code else ""),
                 f"What to do   {category_advice(o.category)}"]  # fmt: skip
        if o.job_id:
            lines.append(f"Job          {o.job_id}")
        body = "\n".join(lines) + "\n"
    return Message(subject=subject, body=body, attributes=attributes)


def _scale(unit: str | None) -> tuple[float, str]:
    return (10_000.0, "ha") if unit == "metre^2" else (1.0, (unit or "units").replace("^2", "²"))


def _success_body(
    o: AssessmentOutcome, name: str, links: Sequence[Link], expires: datetime | None
) -> str:
    from rasterdrop_notify.text import format_utc

    scale, unit = _scale(o.area_unit)
    lines = [f"The accuracy assessment of {name} is ready.", "",
             f"Sample       s3://{o.bucket}/{o.key}"]  # fmt: skip
    if o.version:
        lines.append(f"             version {o.version}")
    if o.labelled is not None:
        lines.append(f"Points       {o.labelled:,} labelled")
    if o.overall is not None:
        ci = f" +/- {o.overall_half_width:.3f}" if o.overall_half_width is not None else ""
        lines.append(f"Accuracy     overall {o.overall:.3f}{ci} (95 % interval)")
    if o.job_id:
        lines.append(f"Job          {o.job_id}")
    rows = [
        (r.name, _fmt(r.mapped, scale), _fmt(r.estimate, scale) + _pm(r.half_width, scale),
         "-" if r.users is None else f"{r.users:.2f}",
         "-" if r.producers is None else f"{r.producers:.2f}")
        for r in o.areas
    ]  # fmt: skip
    header = ("Class", f"Mapped {unit}", f"Estimated {unit} (95 %)", "User's", "Producer's")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines += ["", "Area: pixel count of the map vs error-adjusted estimate (Olofsson et al. 2014)"]
    for r in [header, *rows]:
        lines.append(
            "  " + f"{r[0]:<{widths[0]}}" + "".join(
                f"  {cell:>{w}}" for cell, w in zip(r[1:], widths[1:], strict=True))
        )  # fmt: skip
    if links:
        lines.append("")
        lines.append(
            f"Downloads (links valid until {format_utc(expires)})" if expires else "Downloads"
        )
        for link in links:
            lines += [f"  {link.label}:", f"  {link.url}"]
    if o.results_prefix:
        lines += ["", f"All results: s3://{o.bucket}/{o.results_prefix}"]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, scale: float) -> str:
    return "-" if value is None else f"{value / scale:,.1f}"


def _pm(half: float | None, scale: float) -> str:
    return "" if half is None else f" +/- {half / scale:,.1f}"
