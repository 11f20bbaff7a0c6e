"""Plain-text formatting for the email: numbers, durations, sizes, times, ASCII folding."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

REASON_LIMIT = 300


def ascii_clean(text: str) -> str:
    """Printable ASCII only: accents folded (é → e), others '?', whitespace runs → one space."""
    folded = unicodedata.normalize("NFKD", text)
    out = []
    for ch in folded:
        if unicodedata.combining(ch):
            continue
        if ch.isspace() or unicodedata.category(ch).startswith("C"):
            out.append(" ")
        elif ch.isascii():
            out.append(ch)
        else:
            out.append("?")
    return re.sub(r" +", " ", "".join(out)).strip()


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def format_share(share: float) -> str:
    pct = share * 100
    if 0 < pct < 0.05:
        return "<0.1 %"
    return f"{pct:.1f} %"


def format_area(area: float | None, unit: str | None) -> str:
    if area is None:
        return ""
    if unit in ("metre^2", "meter^2", "m^2", "m2"):
        if area >= 1_000_000:
            return f"{area / 1_000_000:,.2f} km²"
        if area >= 10_000:
            return f"{area / 10_000:,.2f} ha"
        return f"{area:,.0f} m²"
    return f"{area:,.0f} {(unit or 'units').replace('^2', '²')}"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_compute(vcpu_s: float, shards: int | None = None) -> str:
    """Compute used: vCPU-hours (vCPU-minutes under one hour), and the shards' count."""
    amount = (
        f"{vcpu_s / 60:.1f} vCPU-minutes" if vcpu_s < 3600 else f"{vcpu_s / 3600:.2f} vCPU-hours"
    )
    return f"{amount} ({shards} shards in parallel)" if shards else amount


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


def format_utc(when: datetime) -> str:
    """Minute precision, rounded down, so the stated time is never later than the real one."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
