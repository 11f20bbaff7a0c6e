"""The prediction loop: read a window, predict its valid pixels, write the result.

Reads, model calls and writes overlap: one thread reads the next window while
the model works on the current one (with all cores, through the estimator's own
threads) and another thread writes the previous result. Memory is bounded by a
few windows, whatever the raster's size.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
from rasterio.windows import Window

from batch_image.model.card import NODATA_CLASS, ModelCard
from batch_image.model.features import compute_features
from batch_image.predict.review import margin_percent

# Estimators whose predict() is exactly classes_[argmax(predict_proba())]:
# for these one predict_proba call gives both outputs (half the work of two calls).
_ARGMAX_EXACT = (
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "HistGradientBoostingClassifier",
    "GradientBoostingClassifier",
    "KNeighborsClassifier",
)


@dataclass
class ChunkResult:
    window: Window
    classes: np.ndarray  # (h, w) uint8, 255 where invalid
    confidence: np.ndarray  # (h, w) uint8 0..100, 255 where invalid
    counts: np.ndarray  # pixels per class, in model class order
    conf_sums: np.ndarray  # sum of confidence per class
    margin: np.ndarray | None = None  # (h, w) uint8 best − second best probability, 0..100


@dataclass
class EngineStats:
    valid_pixels: int = 0
    nodata_pixels: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    conf_sums: dict[int, float] = field(default_factory=dict)
    model_seconds: float = 0.0
    restored_windows: int = 0


def final_estimator(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


PARALLEL_SCHEMES = ("windows", "model")


def configure_threads(estimator: Any, workers: int, scheme: str) -> tuple[int, int]:
    """Split ``workers`` cores between windows and the model's own threads.

    ``windows``: that many windows at once, each model call single-threaded (no
    lock contention between a forest's tree threads, no oversubscription);
    ``model``: one window at a time, the estimator's n_jobs / OpenMP threads use
    every core. Returns ``(concurrent windows, threads per model call)``.
    """
    if scheme not in PARALLEL_SCHEMES:
        raise ValueError(f"unknown parallel scheme {scheme!r}")
    concurrency, inner = (workers, 1) if scheme == "windows" else (1, workers)
    est = final_estimator(estimator)
    if hasattr(est, "n_jobs"):
        est.n_jobs = inner
    return concurrency, inner


class Classifier:
    """Class ids and confidence (0–100) for feature rows, from one model pass.

    With ``margin`` it also keeps the gap between the two best class probabilities
    (0–100) from the same ``predict_proba`` call, for the review points
    (:mod:`batch_image.predict.review`); :attr:`last_margin` holds the last call's.
    """

    def __init__(self, estimator: Any, card: ModelCard, *, margin: bool = False) -> None:
        self.estimator = estimator
        self.card = card
        self.classes = np.asarray(estimator.classes_).astype(np.uint8)
        self.exact_argmax = type(final_estimator(estimator)).__name__ in _ARGMAX_EXACT
        self.margin = margin

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, conf, _ = self.classify(features)
        return ids, conf

    def classify(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Class ids, confidence and (with ``margin``) the top-two margin per row."""
        proba = self.estimator.predict_proba(features)
        winner = proba.argmax(axis=1)
        conf = np.rint(proba[np.arange(proba.shape[0]), winner] * 100).astype(np.uint8)
        if self.exact_argmax:
            ids = self.classes[winner]
        else:
            ids = np.asarray(self.estimator.predict(features)).astype(np.uint8)
        gap = margin_percent(proba, axis=1) if self.margin else None
        return ids, conf, gap


@dataclass
class Block:
    """One window as read: ``data`` ``(bands, h, w)`` and its valid pixels ``(h, w)``."""

    data: np.ndarray
    valid: np.ndarray


def predict_chunk(block: Block, window: Window, classify: Classifier) -> ChunkResult:
    """Predict the valid pixels of one window; the rest are nodata (255)."""
    card = classify.card
    h, w = block.data.shape[1], block.data.shape[2]
    valid = block.valid.reshape(-1)
    classes = np.full(h * w, NODATA_CLASS, dtype=np.uint8)
    confidence = np.full(h * w, NODATA_CLASS, dtype=np.uint8)
    n_cls = len(classify.classes)
    counts = np.zeros(n_cls, dtype=np.int64)
    conf_sums = np.zeros(n_cls, dtype=np.float64)
    margin = np.full(h * w, NODATA_CLASS, dtype=np.uint8) if classify.margin else None
    if valid.any():
        pixels = block.data.reshape(block.data.shape[0], -1)[:, valid].T
        features = compute_features(pixels, card.features, card.band_names)
        ids, conf, gap = classify.classify(features)
        classes[valid] = ids
        confidence[valid] = conf
        if margin is not None and gap is not None:
            margin[valid] = gap
        order = np.searchsorted(classify.classes, ids)
        counts = np.bincount(order, minlength=n_cls)
        conf_sums = np.bincount(order, weights=conf, minlength=n_cls)
    return ChunkResult(
        window,
        classes.reshape(h, w),
        confidence.reshape(h, w),
        counts,
        conf_sums,
        None if margin is None else margin.reshape(h, w),
    )


def run(
    windows: list[Window],
    read: Callable[[Window], Block],
    write: Callable[[ChunkResult], None],
    classify: Classifier,
    *,
    concurrency: int = 1,
    on_progress: Callable[[int], None] | None = None,
    prefetch: int = 1,
    restore: Callable[[int, Window], ChunkResult | None] | None = None,
    checkpoint: Callable[[int, ChunkResult], None] | None = None,
) -> EngineStats:
    """Pipeline ``read → predict → write`` over ``windows``; returns pixel statistics.

    ``concurrency`` windows are predicted at once on their own threads (the model
    code releases the GIL); one thread reads ahead, one writes behind.
    ``restore(i, window)`` may return a chunk finished by an earlier attempt (it is
    written again, not recomputed); ``checkpoint(i, result)`` runs on the writer
    thread after each chunk is written, so a resumable caller can persist it.
    """
    stats = EngineStats()
    totals = np.zeros(len(classify.classes), dtype=np.int64)
    conf_totals = np.zeros(len(classify.classes), dtype=np.float64)
    concurrency = max(1, concurrency)

    def load(i: int, w: Window) -> ChunkResult | Block:
        done = restore(i, w) if restore else None
        return done if done is not None else read(w)

    def compute(loaded: ChunkResult | Block, w: Window) -> tuple[ChunkResult, float | None]:
        if isinstance(loaded, ChunkResult):
            return loaded, None
        t0 = time.perf_counter()
        result = predict_chunk(loaded, w, classify)
        return result, time.perf_counter() - t0

    def store(i: int, result: ChunkResult) -> None:
        write(result)
        if checkpoint:
            checkpoint(i, result)

    with (
        ThreadPoolExecutor(1, thread_name_prefix="read") as reader,
        ThreadPoolExecutor(concurrency, thread_name_prefix="predict") as predictors,
        ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
    ):
        it: Iterator[tuple[int, Window]] = iter(enumerate(windows))
        reads: deque[tuple[int, Window, Future[ChunkResult | Block]]] = deque()
        preds: deque[tuple[int, Window, Future[tuple[ChunkResult, float | None]]]] = deque()
        pending_write: Future[None] | None = None
        for i, w in islice(it, concurrency + prefetch):
            reads.append((i, w, reader.submit(load, i, w)))
        while reads or preds:
            while reads and len(preds) < concurrency:
                i, w, fut = reads.popleft()
                loaded = fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    reads.append((nxt[0], nxt[1], reader.submit(load, *nxt)))
                preds.append((i, w, predictors.submit(compute, loaded, w)))
                del loaded
            index, window, pf = preds.popleft()
            result, seconds = pf.result()
            if seconds is None:
                stats.restored_windows += 1
            else:
                stats.model_seconds += seconds
            totals += result.counts
            conf_totals += result.conf_sums
            n = int(window.width * window.height)
            valid = int(result.counts.sum())
            stats.valid_pixels += valid
            stats.nodata_pixels += n - valid
            if pending_write is not None:
                pending_write.result()
            pending_write = writer.submit(store, index, result)
            if on_progress:
                on_progress(n)
        if pending_write is not None:
            pending_write.result()
    for cid, cnt, cs in zip(
        classify.classes.tolist(), totals.tolist(), conf_totals.tolist(), strict=True
    ):
        stats.counts[int(cid)] = int(cnt)
        stats.conf_sums[int(cid)] = float(cs)
    return stats
