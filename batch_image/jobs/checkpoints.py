"""Finished chunks checkpointed to S3, so a retried attempt resumes instead of restarting.

Layout: ``partial/<run-id>/chunks/<plan>/<first>-<last>.npz``, where ``<plan>``
fingerprints the window plan (so chunks of a different plan are never mixed in)
and each object holds the consecutive windows ``first..last``: per window its
bounds, its layers (class ids, confidence, probabilities; or predicted values and
uncertainty), its counts and sums (:class:`~batch_image.predict.engine.ChunkResult`), saved with
``numpy.savez_compressed`` and read back with ``allow_pickle=False``. Windows
are batched until about ``batch_pixels`` pixels, then uploaded on a background
thread (one upload in flight) so the prediction pipeline does not wait on S3.

A restored chunk is the very arrays an earlier attempt computed, so a resumed
run writes exactly the pixels an uninterrupted run writes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from rasterio.windows import Window

from batch_image import s3io
from batch_image.predict.engine import ChunkResult

log = logging.getLogger(__name__)

_NAME = re.compile(r"(\d{8})-(\d{8})\.npz$")


def plan_fingerprint(windows: list[Window]) -> str:
    h = hashlib.sha256()
    for w in windows:
        h.update(f"{int(w.col_off)},{int(w.row_off)},{int(w.width)},{int(w.height)};".encode())
    return h.hexdigest()[:16]


def _bounds(w: Window) -> list[int]:
    return [int(w.col_off), int(w.row_off), int(w.width), int(w.height)]


def encode(chunks: list[tuple[int, ChunkResult]]) -> bytes:
    arrays: dict[str, np.ndarray] = {
        "index": np.array([i for i, _ in chunks], dtype=np.int64),
        "window": np.array([_bounds(r.window) for _, r in chunks], dtype=np.int64),
    }
    for k, (_, r) in enumerate(chunks):
        for name, layer in r.layers.items():
            arrays[f"layer_{name}_{k}"] = layer
        arrays[f"counts_{k}"] = np.asarray(r.counts, dtype=np.int64)
        arrays[f"sums_{k}"] = np.asarray(r.sums, dtype=np.float64)
        if r.margin is not None:
            arrays[f"margin_{k}"] = r.margin
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def decode(data: bytes) -> dict[int, ChunkResult]:
    out: dict[int, ChunkResult] = {}
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        index = npz["index"]
        bounds = npz["window"]
        names = npz.files
        for k, i in enumerate(index.tolist()):
            col, row, width, height = (int(v) for v in bounds[k])
            layers = {
                n.rpartition("_")[0][len("layer_") :]: npz[n]
                for n in names
                if n.startswith("layer_") and n.rpartition("_")[2] == str(k)
            }
            out[int(i)] = ChunkResult(
                Window(col, row, width, height),
                layers,
                npz[f"counts_{k}"],
                npz[f"sums_{k}"],
                npz[f"margin_{k}"] if f"margin_{k}" in names else None,
            )
    return out


class CheckpointStore:
    """The engine's ``restore``/``checkpoint`` hooks backed by S3."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        *,
        batch_pixels: int,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.s3, self.bucket, self.base = s3, bucket, prefix
        self.batch_pixels = max(1, batch_pixels)
        self.guard = guard
        self.layers: tuple[str, ...] | None = None  # the run's layer names, when known
        self.prefix = prefix
        self.windows: list[Window] = []
        self.ranges: list[tuple[int, int, str]] = []
        self.cache: dict[int, ChunkResult] = {}
        self.cache_key: str | None = None
        self.restored: set[int] = set()
        self.buffer: list[tuple[int, ChunkResult]] = []
        self.buffered_pixels = 0
        self.uploaded = 0
        self._uploader = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._pending: Future[None] | None = None

    # --- hooks -------------------------------------------------------------------------

    def plan(self, windows: list[Window]) -> None:
        """Called once with the window plan: find the chunks an earlier attempt left."""
        self.windows = list(windows)
        self.prefix = f"{self.base}{plan_fingerprint(self.windows)}/"
        for obj in s3io.list_keys(self.s3, self.bucket, self.prefix):
            m = _NAME.search(obj["Key"])
            if m:
                self.ranges.append((int(m.group(1)), int(m.group(2)), obj["Key"]))
        self.ranges.sort()
        if self.ranges:
            log.info("found %d checkpoint object(s) from an earlier attempt", len(self.ranges))

    def restore(self, i: int, window: Window) -> ChunkResult | None:
        key = next((k for first, last, k in self.ranges if first <= i <= last), None)
        if key is None:
            return None
        if key != self.cache_key:
            self.cache, self.cache_key = {}, key
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                self.cache = decode(body)
            except Exception:
                log.warning("checkpoint %s is unreadable: recomputing its windows", key)
                self.cache = {}
        result = self.cache.pop(i, None)
        if result is None or _bounds(result.window) != _bounds(window):
            return None
        if result.shape != (int(window.height), int(window.width)):
            return None
        if self.layers is not None and set(result.layers) != set(self.layers):
            return None  # another set of outputs (e.g. probabilities switched on)
        self.restored.add(i)
        return result

    def checkpoint(self, i: int, result: ChunkResult) -> None:
        if i in self.restored:
            self._flush()  # objects hold consecutive computed windows only
            return
        if self.guard:
            self.guard()
        self.buffer.append((i, result))
        self.buffered_pixels += int(result.window.width * result.window.height)
        if self.buffered_pixels >= self.batch_pixels or i == len(self.windows) - 1:
            self._flush()

    # --- uploads -----------------------------------------------------------------------

    def _flush(self) -> None:
        if not self.buffer:
            return
        chunks, self.buffer, self.buffered_pixels = self.buffer, [], 0
        key = f"{self.prefix}{chunks[0][0]:08d}-{chunks[-1][0]:08d}.npz"
        data = encode(chunks)
        self._wait()
        self._pending = self._uploader.submit(self._put, key, data)

    def _put(self, key: str, data: bytes) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream"
        )
        self.uploaded += 1

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def abort(self) -> None:
        """The run stopped (error, SIGTERM): save what is buffered for the retry, never raise.

        The engine has joined its threads before the exception reaches the caller, so
        the buffer holds only complete chunks.
        """
        try:
            self._flush()
            self._wait()
        except Exception:
            log.warning("could not save the last checkpoint batch", exc_info=True)
        finally:
            self.buffer = []
            self._uploader.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Upload what is buffered and wait for it (raises if an upload failed)."""
        try:
            self._flush()
            self._wait()
        finally:
            self._uploader.shutdown(wait=True)
