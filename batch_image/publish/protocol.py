"""The result protocol: what a reader may conclude from the files it finds.

A result location holds result files plus at most one marker: the done-marker
(``summary.json``; ``model.json`` for a model version) or the failure marker
(``error.json``). The marker is the only thing readers trust:

* :func:`publish`: the old done-marker goes first (while files are being
  replaced, nothing claims to be done), then every result file, then the stale
  failure marker, then the done-marker **last**. A crash at any point leaves no
  done-marker, or the complete new result under it.
* :func:`record_failure`: the done-marker goes first (a result of an earlier
  input version must not look current), then the failure marker.

Both run through a :class:`~batch_image.publish.sinks.ResultSink`, so local
predict, the predict job, the train job's run reports and the model stores
follow one author (``tests/batch_image/predict/test_one_result_author.py`` checks nobody
else names the markers; ``tests/batch_image/publish`` pins the order of writes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batch_image.publish.layout import ERROR_JSON, SUMMARY_JSON
from batch_image.publish.sinks import ResultSink


def publish(
    sink: ResultSink,
    files: Mapping[str, Path],
    document: Mapping[str, Any] | Path | Callable[[], Mapping[str, Any]],
    *,
    done: str = SUMMARY_JSON,
    failed: str | None = ERROR_JSON,
) -> dict[str, str]:
    """Publish ``files`` (name → local path) and then the done-marker ``document``
    (a JSON mapping, a local file such as ``model.json``, or a function called once the
    files are written, for a document that reports on them); returns name → location."""
    sink.delete(done)
    where = {name: sink.put_file(path, name) for name, path in files.items()}
    if failed:
        sink.delete(failed)
    if isinstance(document, Path):
        where[done] = sink.put_file(document, done)
    else:
        body = document() if callable(document) else document
        where[done] = sink.put_json(done, dict(body))
    return where


def record_failure(
    sink: ResultSink,
    document: Mapping[str, Any],
    *,
    done: str = SUMMARY_JSON,
    failed: str = ERROR_JSON,
) -> str:
    """Replace whatever result is there by the failure marker; returns its location.

    The done-marker is deleted only when there is one: in a versioned bucket a blind
    delete would leave a delete marker behind for every failure of a new input.
    """
    if sink.read_json(done) is not None:
        sink.delete(done)
    return sink.put_json(failed, dict(document))


def clear(sink: ResultSink, *, done: str = SUMMARY_JSON, failed: str = ERROR_JSON) -> None:
    """Remove both markers (a run starts: neither the old success nor failure holds)."""
    sink.delete(done)
    sink.delete(failed)


def done_by(sink: ResultSink, run_id: str | None, *, done: str = SUMMARY_JSON) -> bool:
    """Whether the done-marker there belongs to ``run_id`` (an exactly-once check)."""
    found = sink.read_json(done)
    return bool(isinstance(found, dict) and run_id and found.get("run_id") == run_id)


def current(sink: ResultSink, *, done: str = SUMMARY_JSON) -> dict[str, Any] | None:
    """The done-marker's document there, or None (absent, or not a JSON object)."""
    found = sink.read_json(done)
    return found if isinstance(found, dict) else None


def republish(sink: ResultSink, document: Mapping[str, Any], *, done: str = SUMMARY_JSON) -> str:
    """Rewrite the done-marker over result files that are already there (a reused result:
    the same input bytes and model version as the result in place). The files are not
    touched; the marker is replaced in one write, so a reader sees the old complete
    result or the new one, never a partial one. Returns its location."""
    return sink.put_json(done, dict(document))
