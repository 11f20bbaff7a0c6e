"""Who reads the environment, and who spells the S3 layout: one module each.

The job's settings are parsed once (``batch_image.jobs.settings``; ``logs`` reads
its one format variable before settings exist), so a knob has one name, one
default and one error for a bad value. Run-report keys are built only by
``jobs/run_reports.py``. Checked on the syntax tree, so docstrings and messages
that mention a variable do not count.
"""

from __future__ import annotations

import ast
import re

from tests.batch_image.source_scan import PACKAGE, docstring_ids

ENV_READERS = {"jobs/settings.py", "logs.py"}
# cli/main.py sets GDAL's block cache for the process before GDAL starts: a write of a
# GDAL variable, not a setting of ours.
ENV_WRITES = {("cli/main.py", "GDAL_CACHEMAX")}
NOT_ENV_NAMES = {"RASTERDROP_CLASSES"}  # a GeoTIFF tag (train/labels.CLASSES_TAG)
ENV_NAME = re.compile(r"RASTERDROP_[A-Z0-9_]+")


def environment_uses(source: str, rel: str) -> list[str]:
    """``rel:line what`` for every touch of the environment and every RASTERDROP_ name."""
    tree = ast.parse(source)
    docs = docstring_ids(tree)
    hits = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            call = _enclosing_setdefault(tree, node)
            if (rel, call) not in ENV_WRITES:
                hits.append(f"{where} os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            hits += [f"{where} from os import {a.name}" for a in node.names if "env" in a.name]
        elif _is_env_name(node, docs):
            hits.append(f"{where} {node.value!r}")
    return hits


def _is_env_name(node: ast.AST, docs: set[int]) -> bool:
    """A string literal (not a docstring) that is exactly one of our variable names."""
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docs:
        return False
    return bool(ENV_NAME.fullmatch(node.value)) and node.value not in NOT_ENV_NAMES


def _enclosing_setdefault(tree: ast.AST, attr: ast.Attribute) -> str | None:
    """The variable of an ``os.environ.setdefault("NAME", ...)`` call, if ``attr`` is one."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.value is attr
            and node.func.attr == "setdefault"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return str(node.args[0].value)
    return None


def _sources() -> list[tuple[str, str]]:
    return [
        (p.relative_to(PACKAGE).as_posix(), p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))
    ]


def test_only_settings_and_logs_read_the_environment() -> None:
    wrong = [
        hit
        for rel, text in _sources()
        if rel not in ENV_READERS
        for hit in environment_uses(text, rel)
    ]
    assert wrong == []


def test_the_check_sees_the_ways_to_read_a_variable() -> None:
    snippet = '''
"""RASTERDROP_WORKERS in a docstring is fine."""
import os
from os import environ
a = os.environ.get("RASTERDROP_WORKERS")
b = os.getenv("HOME")
c = "RASTERDROP_MAX_PIXELS"
d = "RASTERDROP_CLASSES"
os.environ.setdefault("GDAL_CACHEMAX", "64")
'''
    hits = sorted(h.split(" ", 1)[1] for h in environment_uses(snippet, "x.py"))
    assert hits == [
        "'RASTERDROP_MAX_PIXELS'",
        "'RASTERDROP_WORKERS'",
        "from os import environ",
        "os.environ",
        "os.environ",
        "os.getenv",
    ]
    assert (
        environment_uses('import os\nos.environ.setdefault("GDAL_CACHEMAX", "1")\n', "cli/main.py")
        == []
    )


def test_only_run_reports_builds_run_report_keys() -> None:
    users = sorted(rel for rel, text in _sources() if builds_run_keys(text))
    assert users == ["jobs/run_reports.py", "publish/layout.py"]  # the rule and its constant


def test_the_check_sees_a_run_key_built_by_hand() -> None:
    assert builds_run_keys('k = f"{prefix}{name}/runs/{run_id}/summary.json"\n')
    assert builds_run_keys("k = prefix + name + '/runs/'\n")
    assert builds_run_keys("from batch_image.publish.layout import RUNS_SEGMENT\n")
    assert not builds_run_keys('"""models/<name>/runs/<id>/ described."""\nx = "other/"\n')


def builds_run_keys(source: str) -> bool:
    """Whether code (not a docstring) spells ``runs/`` in a key or uses ``RUNS_SEGMENT``."""
    return bool(re.search(r"\bRUNS_SEGMENT\b|[\"'][^\"'\n]*runs/[\"'{]", _code_only(source)))


def _code_only(source: str) -> str:
    """The source without docstrings (they may describe the layout)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body[0].value.value = ""
    return ast.unparse(tree)
