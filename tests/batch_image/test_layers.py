"""The package's rooms and the one direction imports flow between them.

cli → jobs / synthetic → predict / train → accuracy → model → raster → publish →
s3io → errors / logs / clock. A module may import its own room and any lower one, never
a higher one nor a peer (predict and train do not know each other); the top level
stays small.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.batch_image.source_scan import PACKAGE, module_name

RANK = {
    "__init__": 0,
    "errors": 0,
    "logs": 0,
    "clock": 0,
    "s3io": 1,
    "publish": 2,
    "raster": 3,
    "model": 4,
    "accuracy": 5,  # below predict: the predict job draws the accuracy sample
    "predict": 6,
    "train": 6,
    "jobs": 7,
    "synthetic": 7,
    "cli": 8,
    "__main__": 9,
}


def _room(module: str) -> str:
    """``batch_image.jobs.lease`` → ``jobs``; ``batch_image`` (its ``__init__``) → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "batch_image":
                found |= {f"batch_image.{a.name}" for a in node.names}
            elif node.module.startswith("batch_image."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("batch_image.")}
    return found


def test_every_room_has_a_rank() -> None:
    rooms = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
    }
    assert rooms == set(RANK)


def test_top_level_has_at_most_six_modules() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 6


def test_imports_flow_one_way() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = _room(module_name(path)) if path.parent != PACKAGE else path.stem
        for target in _imports(path):
            there = _room(target)
            if there == "__version__":
                there = "__init__"
            if there == here:
                continue
            if RANK[there] >= RANK[here]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert wrong == []


def test_no_import_cycle_inside_a_room() -> None:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        graph[module_name(path)] = {t for t in _imports(path) if t != module_name(path)}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*trail, node, nxt]
            if nxt in graph and not state.get(nxt):
                cycle = visit(nxt, [*trail, node])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    cycles = [c for n in sorted(graph) if not state.get(n) and (c := visit(n, []))]
    assert cycles == []
