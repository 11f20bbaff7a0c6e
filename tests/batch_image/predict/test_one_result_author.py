"""Only the result protocol writes a prediction's markers (summary.json, error.json).

Local predict and the predict job go through ``batch_image.publish.protocol``; a
module that names the marker files (imports ``SUMMARY_JSON`` / ``ERROR_JSON`` or
spells ``"summary.json"`` / ``"error.json"`` in code, docstrings aside) is a
module that could write them, so the set of such modules is pinned.
"""

from __future__ import annotations

import ast

from tests.batch_image.source_scan import PACKAGE, docstring_ids, module_name

MARKER_NAMES = {"SUMMARY_JSON", "ERROR_JSON"}
MARKER_FILES = {"summary.json", "error.json"}
# module → why it may name the markers
ALLOWED = {
    "batch_image.publish.layout": "defines the names",
    "batch_image.publish.protocol": "the one author of markers",
    "batch_image.jobs.run_reports": "reads the location publish() returned; writes via protocol",
    "batch_image.jobs.assess_job": "reads the prediction's done-marker (is the map finished, "
    "which file is it); writes its own result via protocol",
}
PREDICTION_MODULES = (
    "batch_image.predict.",
    "batch_image.jobs.predict_job",
    "batch_image.jobs.checkpoints",
    "batch_image.cli.predict",
)


def names_markers(source: str) -> bool:
    """Whether ``source`` imports a marker name or spells a marker file outside docstrings."""
    tree = ast.parse(source)
    docs = docstring_ids(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and {a.name for a in node.names} & MARKER_NAMES:
            return True
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in MARKER_NAMES:
                return True
        text = node.value if isinstance(node, ast.Constant) and id(node) not in docs else None
        if isinstance(text, str) and any(f in text for f in MARKER_FILES):
            return True
    return False


def marker_modules() -> set[str]:
    return {module_name(p) for p in PACKAGE.rglob("*.py") if names_markers(p.read_text())}


def test_the_scan_sees_a_marker_write() -> None:
    assert names_markers('sink.put_json("summary.json", doc)')
    assert names_markers("from batch_image.publish.layout import ERROR_JSON")
    assert names_markers("write(out / layout.SUMMARY_JSON)")
    assert not names_markers('"""Writes summary.json last."""\nx = 1')


def test_only_the_protocol_names_the_markers() -> None:
    found = marker_modules()
    assert "batch_image.publish.protocol" in found  # the scan finds the author itself
    assert found - set(ALLOWED) == set()


def test_no_prediction_module_names_the_markers() -> None:
    assert [m for m in marker_modules() if m.startswith(PREDICTION_MODULES)] == []
