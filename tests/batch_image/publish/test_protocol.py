"""The result protocol's order of writes, on a recording sink and on a real directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch_image.publish.protocol import clear, done_by, publish, record_failure
from batch_image.publish.sinks import LocalDir


class Recording(LocalDir):
    """A local directory that logs every call, in order."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: list[tuple[str, str]] = []

    def put_file(self, source: Path, name: str) -> str:
        self.calls.append(("put", name))
        return super().put_file(source, name)

    def put_json(self, name: str, document: Any) -> str:
        self.calls.append(("put", name))
        return super().put_json(name, document)

    def delete(self, name: str) -> None:
        self.calls.append(("delete", name))
        super().delete(name)


def _file(tmp: Path, name: str, text: str) -> Path:
    path = tmp / "staging" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_publish_removes_the_old_marker_first_and_writes_the_new_one_last(tmp_path: Path) -> None:
    sink = Recording(tmp_path / "out")
    sink.put_json("error.json", {"status": "failed"})
    sink.calls.clear()
    where = publish(sink, {"classes.tif": _file(tmp_path, "c", "pixels")}, {"run_id": "r1"})
    assert sink.calls == [
        ("delete", "summary.json"),
        ("put", "classes.tif"),
        ("delete", "error.json"),
        ("put", "summary.json"),
    ]
    assert where["summary.json"] == str(tmp_path / "out" / "summary.json")
    assert (tmp_path / "out" / "classes.tif").read_text() == "pixels"
    assert not (tmp_path / "out" / "error.json").exists()
    assert done_by(sink, "r1") and not done_by(sink, "r2") and not done_by(sink, None)


def test_a_failure_replaces_a_result_and_deletes_only_what_is_there(tmp_path: Path) -> None:
    sink = Recording(tmp_path / "out")
    record_failure(sink, {"status": "failed", "code": "a"})
    assert sink.calls == [("put", "error.json")]  # nothing to delete: no delete marker
    sink.put_json("summary.json", {"run_id": "r1"})
    sink.calls.clear()
    record_failure(sink, {"status": "failed", "code": "b"})
    assert sink.calls == [("delete", "summary.json"), ("put", "error.json")]
    assert json.loads((tmp_path / "out" / "error.json").read_text())["code"] == "b"
    clear(sink)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_a_model_version_uses_its_card_as_the_done_marker(tmp_path: Path) -> None:
    sink = Recording(tmp_path / "model")
    card = _file(tmp_path, "model.json", '{"name": "demo"}')
    publish(
        sink, {"model.skops": _file(tmp_path, "m", "skops")}, card, done="model.json", failed=None
    )
    assert sink.calls == [("delete", "model.json"), ("put", "model.skops"), ("put", "model.json")]


def test_a_document_function_is_called_after_the_files_are_written(tmp_path: Path) -> None:
    sink = Recording(tmp_path / "out")

    def document() -> dict[str, Any]:
        sink.calls.append(("render", "summary.json"))
        return {"files_written": (tmp_path / "out" / "classes.tif").exists()}

    publish(sink, {"classes.tif": _file(tmp_path, "c", "pixels")}, document)
    assert sink.calls[-2:] == [("render", "summary.json"), ("put", "summary.json")]
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {"files_written": True}
