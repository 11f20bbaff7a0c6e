"""render_message: subject rules, body layout, attributes (pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rasterdrop_notify.decisions import DECISIONS
from rasterdrop_notify.outcome import ClassShare, Link, Outcome
from rasterdrop_notify.render import fit_subject, render_message
from rasterdrop_notify.text import (
    ascii_clean,
    format_area,
    format_bytes,
    format_duration,
    format_share,
)

CATEGORIES = {
    k: (d.label, d.advice) for k, d in DECISIONS.items() if d.status in ("failed", "rejected")
}
B = "rasterdrop-data-123456789012"


def _ok(key: str = "input/acme/field-7.tif", **kw) -> Outcome:
    return Outcome(
        status="succeeded",
        bucket=B,
        key=key,
        version="v1",
        model_name="demo",
        model_version="20261126T090000Z",
        job_id="job-1",
        processing_s=75.2,
        **{
            "classes": (
                ClassShare("water", 0.125, area=37_500_000.0, area_unit="metre^2"),
                ClassShare("forest", 0.875, area=262_500_000.0, area_unit="metre^2"),
            ),
            **kw,
        },
    )


def test_success_message():
    expires = datetime(2026, 12, 3, 9, 4, 59, tzinfo=UTC)
    links = (Link("Classes (GeoTIFF)", "https://x/?t=1"), Link("Preview (PNG)", "https://x/?t=2"))
    msg = render_message(_ok(), links, expires)
    assert msg.subject == "rasterdrop: field-7.tif ready"
    assert msg.attributes == {"status": "succeeded", "tenant": "acme"}
    lines = msg.body.splitlines()
    assert lines[0] == "field-7.tif is ready."
    assert "Model        demo, version 20261126T090000Z" in lines
    assert "Processing   1 min 15 s" in lines
    assert "Downloads (links valid until 2026-12-03 09:04 UTC)" in lines
    assert lines[lines.index("  Classes (GeoTIFF):") + 1] == "  https://x/?t=1"
    table = lines[lines.index("Classes (share of classified pixels)") + 1 :][:3]
    assert table == [
        "  Class    Share        Area",
        "  forest  87.5 %  262.50 km²",
        "  water   12.5 %   37.50 km²",
    ]


def test_sns_attributes_shape():
    msg = render_message(_ok())
    assert msg.sns_attributes() == {
        "status": {"DataType": "String", "StringValue": "succeeded"},
        "tenant": {"DataType": "String", "StringValue": "acme"},
    }


@pytest.mark.parametrize(
    ("key", "tenant"),
    [
        ("input/field.tif", None),
        ("input/t1/field.tif", "t1"),
        ("input/t1/a/b/f.tif", "t1"),
        ("input//f.tif", None),
    ],
)
def test_tenant_attribute(key, tenant):
    attrs = render_message(_ok(key=key)).attributes
    assert attrs.get("tenant") == tenant


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_every_failure_category_has_label_and_advice(category):
    o = Outcome(
        status="failed",
        bucket=B,
        key="input/f.tif",
        category=category,
        reason="line one\nline two\ttabbed",
        job_id="job-9",
        attempts=2,
        exit_code=137,
    )
    msg = render_message(o)
    label, advice = CATEGORIES[category]
    assert msg.subject == f"rasterdrop: f.tif failed ({label})"
    flat = " ".join(msg.body.split())
    assert "Reason line one line two tabbed" in flat  # one line
    assert advice in flat
    assert "job-9 (2 attempts, exit code 137)" in flat
    assert msg.attributes == {"status": "failed"}


def test_unknown_category_falls_back_to_internal():
    o = Outcome(status="failed", bucket=B, key="input/f.tif", category="weird")
    assert render_message(o).subject == "rasterdrop: f.tif failed (internal error)"


def test_long_reason_is_cut():
    o = Outcome(
        status="failed", bucket=B, key="input/f.tif", category="internal", reason="x " * 1000
    )
    reason_lines = [ln for ln in render_message(o).body.splitlines() if "x x" in ln]
    assert sum(len(ln) for ln in reason_lines) < 400


@pytest.mark.parametrize("length", [1, 50, 87, 88, 89, 100, 300, 1000])
@pytest.mark.parametrize("suffix", [" ready", " failed (out of memory)", " rejected (too large)"])
def test_subject_limit_and_ascii(length, suffix):
    name = ("ä" + "n" * length)[:length] + ".tif"
    subject = fit_subject("rasterdrop: ", name, suffix)
    assert len(subject) <= 99
    assert subject.isascii() and subject.isprintable()
    assert subject.endswith(suffix)
    assert subject.startswith("rasterdrop: a")
    if len("rasterdrop: ") + len(name) + len(suffix) > 99:
        assert "..." in subject and subject.endswith(".tif" + suffix)


def test_subject_never_contains_line_breaks_or_controls():
    subject = fit_subject("rasterdrop: ", "evil\r\nBcc: x@y\x00\x07.tif", " ready")
    assert subject == "rasterdrop: evil Bcc: x@y .tif ready"


def test_ascii_clean():
    assert ascii_clean("Gärten-Süd ☃.tif") == "Garten-Sud ?.tif"
    assert ascii_clean("東京.tif") == "??.tif"


def test_rejection_message():
    o = Outcome(
        status="rejected",
        bucket=B,
        key="input/acme/big.tif",
        category="too_large",
        reason="too big",
        size_bytes=21_474_836_480,
        max_bytes=10 * 1024**3,
    )
    msg = render_message(o)
    assert msg.subject == "rasterdrop: big.tif rejected (too large)"
    assert msg.attributes == {"status": "rejected", "tenant": "acme"}
    assert "Size         20.0 GiB; the limit is 10.0 GiB" in msg.body


def test_training_messages():
    ok = Outcome(
        status="succeeded",
        bucket=B,
        key="training/demo/manifest.json",
        kind="train",
        model_name="demo",
        model_version="v2",
        metrics=(("accuracy", 0.95),),
        promoted=False,
    )
    msg = render_message(ok)
    assert msg.subject == "rasterdrop: model demo trained"
    assert msg.attributes == {"status": "succeeded", "kind": "train"}
    assert "Promoted     no" in msg.body
    bad = Outcome(
        status="failed",
        bucket=B,
        key="training/demo/manifest.json",
        kind="train",
        model_name="demo",
        category="model_error",
        reason="no labels",
    )
    assert render_message(bad).subject == "rasterdrop: training demo failed (model error)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.04, "0.0 s"),
        (42.14, "42.1 s"),
        (60, "1 min 00 s"),
        (3599, "59 min 59 s"),
        (3600, "1 h 00 min"),
        (7385, "2 h 03 min"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_number_formats():
    assert format_share(0.0) == "0.0 %"
    assert format_share(0.0001) == "<0.1 %"
    assert format_share(1.0) == "100.0 %"
    assert format_area(5000.0, "metre^2") == "5,000 m²"
    assert format_area(25_000.0, "metre^2") == "2.50 ha"
    assert format_area(2500.4, "us survey foot^2") == "2,500 us survey foot²"
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(10 * 1024**3) == "10.0 GiB"


def test_class_table_is_capped():
    classes = tuple(ClassShare(f"c{i:03d}", 1 / 100) for i in range(100))
    body = render_message(_ok(classes=classes)).body
    assert "  ... 60 more classes, 60.0 % together" in body
    assert "c039" in body and "c040" not in body
