"""``render_message``: one outcome → (subject, plain-text body, SNS message attributes).

Pure and deterministic (the caller passes links and their expiry), used by the notify and
reject handlers and by the sandbox. SNS requires the subject to be ASCII, without line breaks
or control characters, and under 100 characters: file names are transliterated, cleaned and
shortened in the middle with ``...`` (keeping the extension), never cut mid-status.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rasterdrop_notify.decisions import decide, failure_decision
from rasterdrop_notify.layout import INPUT_PREFIX
from rasterdrop_notify.outcome import REJECTED, SUCCEEDED, TRAIN, Link, Outcome, ValueStats
from rasterdrop_notify.paths import file_name, tenant_of
from rasterdrop_notify.text import (
    ascii_clean,
    format_area,
    format_bytes,
    format_compute,
    format_duration,
    format_share,
    format_utc,
    one_line,
)

SUBJECT_LIMIT = 99
LABEL_WIDTH = 12
WRAP = 76
MAX_CLASS_ROWS = 40


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)

    def sns_attributes(self) -> dict[str, dict[str, str]]:
        """``MessageAttributes`` for ``sns.publish`` (all strings, so filter policies match)."""
        return {k: {"DataType": "String", "StringValue": v} for k, v in self.attributes.items()}


def render_message(
    outcome: Outcome,
    links: Sequence[Link] = (),
    links_expire_at: datetime | None = None,
    *,
    input_prefix: str = INPUT_PREFIX,
) -> Message:
    """The email for ``outcome``: subject (ASCII, ≤ 99 chars), body, attributes."""
    if outcome.kind == "assess":  # its own kind, rendered by its own module
        from rasterdrop_notify.assessments import render_assessment

        return render_assessment(outcome, links, links_expire_at)  # type: ignore[arg-type]
    attributes = {"status": outcome.status}
    tenant = tenant_of(outcome.key, input_prefix)
    if tenant:
        attributes["tenant"] = tenant
    if outcome.kind == TRAIN:
        attributes["kind"] = TRAIN
    return Message(
        subject=_subject(outcome),
        body=_body(outcome, links, links_expire_at),
        attributes=attributes,
    )


def category_label(category: str | None) -> str:
    """The subject's words for a failure category (the decision table's row)."""
    return failure_decision(category).label


def category_advice(category: str | None) -> str:
    """What the email tells the user to do about a failure category."""
    return failure_decision(category).advice


# --- subject ---------------------------------------------------------------------------------


def _subject(o: Outcome) -> str:
    label = category_label(o.category)
    if o.kind == TRAIN:
        name = o.model_name or file_name(o.key)
        if o.status == SUCCEEDED:
            return fit_subject("rasterdrop: model ", name, " trained")
        return fit_subject("rasterdrop: training ", name, f" failed ({label})")
    name = file_name(o.key)
    if o.status == SUCCEEDED:
        return fit_subject("rasterdrop: ", name, " " + decide(o.name).label)
    if o.status == REJECTED:
        return fit_subject("rasterdrop: ", name, f" rejected ({label})")
    return fit_subject("rasterdrop: ", name, f" failed ({label})")


def fit_subject(prefix: str, name: str, suffix: str, limit: int = SUBJECT_LIMIT) -> str:
    """``prefix + name + suffix`` within ``limit`` ASCII chars, shortening only the name."""
    name = ascii_clean(name) or "file"
    room = limit - len(prefix) - len(suffix)
    if len(name) > room:
        name = _shorten_middle(name, max(room, 5))
    return (prefix + name + suffix)[:limit]


def _shorten_middle(name: str, room: int) -> str:
    ellipsis = "..."
    stem, dot, ext = name.rpartition(".")
    tail = f".{ext}" if dot and stem and len(ext) <= 8 else ""
    keep = room - len(ellipsis) - len(tail)
    if keep < 4:
        return name[: room - len(ellipsis)] + ellipsis
    head_len = (keep + 1) // 2
    core = name[: -len(tail)] if tail else name
    return core[:head_len] + ellipsis + core[len(core) - (keep - head_len) :] + tail


# --- body ------------------------------------------------------------------------------------


def _body(o: Outcome, links: Sequence[Link], expires: datetime | None) -> str:
    if o.kind == TRAIN:
        return _train_body(o)
    name = file_name(o.key)
    if o.status == SUCCEEDED:
        return _success_body(o, name, links, expires)
    return _failure_body(o, name)


def _success_body(o: Outcome, name: str, links: Sequence[Link], expires: datetime | None) -> str:
    lines = [f"{name} is ready.", ""]
    note = decide(o.name).advice
    if note:
        lines += [*textwrap.wrap(note, width=WRAP), ""]
    lines += _field("Input", _s3_uri(o.bucket, o.key))
    if o.version:
        lines += _field("", f"version {o.version}")
    if o.reused_from_version:
        lines += _field("Reused", f"the results of version {o.reused_from_version}")
    outcome = "succeeded"
    if o.width and o.height:
        outcome += f": {o.width:,} x {o.height:,} pixels"
        if o.valid_pixels is not None:
            outcome += f", {o.valid_pixels:,} {'predicted' if o.values else 'classified'}"
    lines += _field("Outcome", outcome)
    lines += _field("Model", _model(o))
    if o.processing_s is not None:
        lines += _field("Processing", format_duration(o.processing_s))
    if o.compute_vcpu_s is not None:
        lines += _field("Compute used", format_compute(o.compute_vcpu_s, o.shards))
    if o.job_id:
        lines += _field("Job", o.job_id)
    if o.classes:
        lines += ["", "Classes (share of classified pixels)", *class_table(o)]
    if o.values is not None:
        lines += ["", *value_lines(o.values)]
    if links:
        lines.append("")
        if expires is not None:
            lines.append(f"Downloads (links valid until {format_utc(expires)})")
        else:
            lines.append("Downloads")
        for link in links:
            lines += [f"  {link.label}:", f"  {link.url}"]
    if o.results_prefix:
        lines += ["", f"All results: {_s3_uri(o.bucket, o.results_prefix)}"]
    return "\n".join(lines) + "\n"


def _failure_body(o: Outcome, name: str) -> str:
    label = category_label(o.category)
    if o.status == REJECTED:
        lines = [f"{name} was not processed: {label}.", ""]
    else:
        lines = [f"{name} could not be processed: {label}.", ""]
    lines += _field("Input", _s3_uri(o.bucket, o.key))
    if o.version:
        lines += _field("", f"version {o.version}")
    lines += _field("Outcome", f"{o.status} ({label})")
    if o.size_bytes is not None and o.max_bytes is not None:
        lines += _field(
            "Size", f"{format_bytes(o.size_bytes)}; the limit is {format_bytes(o.max_bytes)}"
        )
    reason = one_line(o.reason or "no reason was recorded")
    if o.code:
        reason += f" [{o.code}]"
    lines += _field("Reason", reason)
    lines += _field("What to do", category_advice(o.category))
    if o.model_name or o.model_version:
        lines += _field("Model", _model(o))
    if o.job_id:
        lines += _field("Job", _job_line(o))
    return "\n".join(lines) + "\n"


def _train_body(o: Outcome) -> str:
    model = o.model_name or "model"
    if o.status == SUCCEEDED:
        lines = [f"Model {model} version {o.model_version or '?'} is trained.", ""]
    else:
        lines = [f"Training {model} failed: {category_label(o.category)}.", ""]
    lines += _field("Manifest", _s3_uri(o.bucket, o.key))
    if o.version:
        lines += _field("", f"version {o.version}")
    lines += _field("Outcome", o.status)
    if o.model_version:
        lines += _field("Model", _model(o))
    if o.promoted is not None:
        verdict = "yes: predictions now use it" if o.promoted else "no"
        lines += _field("Promoted", verdict)
        if o.promotion_reason:
            lines += _field("", f"why: {o.promotion_reason}")
    if o.comparison:
        lines += _field("Compared", "current version -> this one, on the same blocks:")
        for text in o.comparison:
            lines += _field("", text)
    for i, text in enumerate(_metric_lines(o.metrics)):
        lines += _field("Metrics" if i == 0 else "", text)
    if o.processing_s is not None:
        lines += _field("Processing", format_duration(o.processing_s))
    if o.status != SUCCEEDED:
        reason = one_line(o.reason or "no reason was recorded")
        lines += _field("Reason", reason + (f" [{o.code}]" if o.code else ""))
        lines += _field("What to do", category_advice(o.category))
    if o.results_prefix:
        lines += _field("Report", _s3_uri(o.bucket, o.results_prefix))
    if o.job_id:
        lines += _field("Job", _job_line(o))
    return "\n".join(lines) + "\n"


def _metric_lines(metrics: Sequence[tuple[str, float]]) -> list[str]:
    """``"blocked CV: accuracy"`` labels grouped into one line per group."""
    groups: dict[str, list[str]] = {}
    for label, value in metrics:
        group, sep, name = label.rpartition(": ")
        groups.setdefault(group if sep else "", []).append(f"{name} {value:.3f}")
    return [f"{g}: {', '.join(items)}" if g else ", ".join(items) for g, items in groups.items()]


def class_table(o: Outcome) -> list[str]:
    """Aligned rows: class name, share (%), area when known, largest share first."""
    rows = sorted(o.classes, key=lambda c: (-c.share, c.name))
    hidden = rows[MAX_CLASS_ROWS:]
    rows = rows[:MAX_CLASS_ROWS]
    cells = [(c.name, format_share(c.share), format_area(c.area, c.area_unit)) for c in rows]
    show_area = any(c.area is not None for c in rows)
    header = ("Class", "Share", "Area")
    w = [max(len(h), *(len(cell[i]) for cell in cells)) for i, h in enumerate(header)]
    out = []
    for name, share, area in [header, *cells]:
        line = f"  {name:<{w[0]}}  {share:>{w[1]}}"
        if show_area:
            line += f"  {area:>{w[2]}}"
        out.append(line.rstrip())
    if hidden:
        rest = sum(c.share for c in hidden)
        out.append(f"  ... {len(hidden)} more classes, {format_share(rest)} together")
    return out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def value_lines(v: ValueStats) -> list[str]:
    """A regression's statistics: the target with its unit, range, mean ± std, percentiles."""
    unit = f" ({v.unit})" if v.unit else ""
    out = [f"Predicted {v.name}{unit}"]
    out.append(f"  min {_num(v.minimum)}, max {_num(v.maximum)}")
    out.append(f"  mean {_num(v.mean)}, standard deviation {_num(v.std)}")
    if v.percentiles:
        out.append("  percentiles " + ", ".join(f"{k} {_num(x)}" for k, x in v.percentiles))
    return out


def _field(label: str, value: str) -> list[str]:
    indent = " " * (LABEL_WIDTH + 1)
    first = f"{label:<{LABEL_WIDTH}} " if label else indent
    return textwrap.wrap(
        value,
        width=WRAP,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _model(o: Outcome) -> str:
    name = o.model_name or "unknown model"
    return f"{name}, version {o.model_version}" if o.model_version else name


def _job_line(o: Outcome) -> str:
    parts = []
    if o.attempts:
        parts.append(f"{o.attempts} attempt{'s' if o.attempts != 1 else ''}")
    if o.exit_code is not None:
        parts.append(f"exit code {o.exit_code}")
    return f"{o.job_id} ({', '.join(parts)})" if parts else str(o.job_id)


def _s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
