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
    "LGBMClassifier",
    "XGBClassifier",
)


@dataclass
class ChunkResult:
    """One window's outputs: ``layers`` by name (``classes``, ``confidence``,
    ``probabilities``; or ``prediction``, ``uncertainty``), each ``(h, w)`` or
    ``(bands, h, w)``, nodata where the input is invalid; plus its statistics.

    Classification: ``counts`` pixels per class (model class order), ``sums`` the
    confidence sums per class. Regression: ``counts`` ``[valid pixels]``, ``sums``
    ``[sum, sum of squares, min, max]`` of the predicted values (min/max ±inf when none).
    """

    window: Window
    layers: dict[str, np.ndarray]
    counts: np.ndarray
    sums: np.ndarray
    margin: np.ndarray | None = None  # (h, w) uint8 best − second best probability, 0..100

    @property
    def classes(self) -> np.ndarray:
        return self.layers["classes"]

    @property
    def confidence(self) -> np.ndarray:
        return self.layers["confidence"]

    @property
    def shape(self) -> tuple[int, int]:
        first = next(iter(self.layers.values()))
        return int(first.shape[-2]), int(first.shape[-1])


@dataclass(frozen=True)
class ValueStats:
    """Exact statistics of the predicted values over the valid pixels (regression)."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, sums: np.ndarray, n: int) -> ValueStats:
        return ValueStats(
            self.n + n,
            self.total + float(sums[0]),
            self.squares + float(sums[1]),
            min(self.low, float(sums[2])),
            max(self.high, float(sums[3])),
        )


@dataclass
class EngineStats:
    valid_pixels: int = 0
    nodata_pixels: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    conf_sums: dict[int, float] = field(default_factory=dict)
    model_seconds: float = 0.0
    restored_windows: int = 0
    values: ValueStats | None = None  # regression


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
        est.n_jobs = inner  # scikit-learn, and LightGBM's predict (its num_threads)
    if hasattr(est, "get_booster"):  # XGBoost predicts with its booster's nthread
        est.get_booster().set_param({"nthread": inner})
    return concurrency, inner


class Classifier:
    """Class ids and confidence (0–100) for feature rows, from one model pass; with
    ``probabilities`` also every class's probability (0–100) from that same pass.

    With ``margin`` it also keeps the gap between the two best class probabilities
    (0–100) from the same ``predict_proba`` call, for the review points
    (:mod:`batch_image.predict.review`): a field of the chunk, not an output layer.
    """

    regression = False

    def __init__(
        self,
        estimator: Any,
        card: ModelCard,
        *,
        probabilities: bool = False,
        margin: bool = False,
    ) -> None:
        self.estimator = estimator
        self.card = card
        self.classes = np.asarray(card.estimator_class_ids(estimator.classes_), np.uint8)
        self._index = np.asarray(card.class_index, np.uint8) if card.class_index else None
        self.exact_argmax = type(final_estimator(estimator)).__name__ in _ARGMAX_EXACT
        self.probabilities = probabilities
        self.margin = margin

    @property
    def stat_size(self) -> int:
        return len(self.classes)

    def layer_names(self) -> tuple[str, ...]:
        extra = ("probabilities",) if self.probabilities else ()
        return ("classes", "confidence", *extra)

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, ...]:
        """Class ids and confidence per row, then the probabilities if asked for."""
        ids, conf, proba, _ = self.classify(features)
        return (ids, conf, proba) if proba is not None else (ids, conf)

    def classify(
        self, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Class ids, confidence, (with ``probabilities``) every class's probability and
        (with ``margin``) the top-two margin per row, from one ``predict_proba`` call."""
        proba = self.estimator.predict_proba(features)
        winner = proba.argmax(axis=1)
        conf = np.rint(proba[np.arange(proba.shape[0]), winner] * 100).astype(np.uint8)
        if self.exact_argmax:
            ids = self.classes[winner]
        else:
            ids = np.asarray(self.estimator.predict(features))
            ids = (self._index[ids] if self._index is not None else ids).astype(np.uint8)
        probs = np.rint(proba * 100).astype(np.uint8) if self.probabilities else None
        gap = margin_percent(proba, axis=1) if self.margin else None
        return ids, conf, probs, gap

    def chunk(self, block: Block, window: Window) -> ChunkResult:
        """Predict the valid pixels of one window; the rest are nodata (255)."""
        h, w = block.data.shape[1], block.data.shape[2]
        valid = block.valid.reshape(-1)
        classes = np.full(h * w, NODATA_CLASS, dtype=np.uint8)
        confidence = np.full(h * w, NODATA_CLASS, dtype=np.uint8)
        n_cls = len(self.classes)
        proba = np.full((n_cls, h * w), NODATA_CLASS, np.uint8) if self.probabilities else None
        counts = np.zeros(n_cls, dtype=np.int64)
        conf_sums = np.zeros(n_cls, dtype=np.float64)
        margin = np.full(h * w, NODATA_CLASS, dtype=np.uint8) if self.margin else None
        if valid.any():
            ids, conf, probs, gap = self.classify(_features(block, valid, self.card))
            classes[valid] = ids
            confidence[valid] = conf
            if proba is not None and probs is not None:
                proba[:, valid] = probs.T
            if margin is not None and gap is not None:
                margin[valid] = gap
            order = np.searchsorted(self.classes, ids)
            counts = np.bincount(order, minlength=n_cls)
            conf_sums = np.bincount(order, weights=conf, minlength=n_cls)
        layers = {"classes": classes.reshape(h, w), "confidence": confidence.reshape(h, w)}
        if proba is not None:
            layers["probabilities"] = proba.reshape(n_cls, h, w)
        gaps = None if margin is None else margin.reshape(h, w)
        return ChunkResult(window, layers, counts, conf_sums, gaps)


_FORESTS = (
    "RandomForestRegressor",
    "ExtraTreesRegressor",
)


class Regressor:
    """Predicted values (float32) for feature rows; for a forest also the standard deviation
    of its trees' predictions (``uncertainty``), from the same per-tree pass.

    For a forest the prediction is the trees' sum in tree order divided by their number,
    as scikit-learn's ``predict`` computes it, so it equals ``model.predict`` exactly.
    """

    regression = True
    stat_size = 4

    def __init__(self, estimator: Any, card: ModelCard) -> None:
        self.estimator = estimator
        self.card = card
        self.forest = type(final_estimator(estimator)).__name__ in _FORESTS

    def layer_names(self) -> tuple[str, ...]:
        return ("prediction", "uncertainty") if self.forest else ("prediction",)

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, ...]:
        if not self.forest:
            return (np.asarray(self.estimator.predict(features)).astype(np.float32),)
        x = features
        steps = getattr(self.estimator, "steps", None)
        if steps:
            for _, step in steps[:-1]:
                x = step.transform(x)
        forest = final_estimator(self.estimator)
        x = np.asarray(x, dtype=np.float32)
        trees = np.empty((len(forest.estimators_), x.shape[0]), dtype=np.float64)
        total = np.zeros(x.shape[0], dtype=np.float64)
        for i, tree in enumerate(forest.estimators_):
            trees[i] = tree.predict(x, check_input=False)
            total += trees[i]
        total /= len(forest.estimators_)
        return total.astype(np.float32), trees.std(axis=0).astype(np.float32)

    def chunk(self, block: Block, window: Window) -> ChunkResult:
        """Predict the valid pixels of one window; the rest are NaN."""
        h, w = block.data.shape[1], block.data.shape[2]
        valid = block.valid.reshape(-1)
        layers = {n: np.full(h * w, np.nan, np.float32) for n in self.layer_names()}
        sums = np.array([0.0, 0.0, np.inf, -np.inf])
        n = int(valid.sum())
        if n:
            out = self(_features(block, valid, self.card))
            for name, values in zip(self.layer_names(), out, strict=True):
                layers[name][valid] = values
            v = out[0].astype(np.float64)
            sums = np.array([v.sum(), (v * v).sum(), v.min(), v.max()])
        return ChunkResult(
            window,
            {k: a.reshape(h, w) for k, a in layers.items()},
            np.array([n], dtype=np.int64),
            sums,
        )


Predictor = Classifier | Regressor


def predictor_for(
    estimator: Any, card: ModelCard, *, probabilities: bool = False, margin: bool = False
) -> Predictor:
    """The card's task decides: a regressor, or a classifier (optionally with probabilities
    and the review points' margin; a regression has no review points)."""
    if card.is_regression:
        return Regressor(estimator, card)
    return Classifier(estimator, card, probabilities=probabilities, margin=margin)


@dataclass
class Block:
    """One window as read: ``data`` ``(bands, h, w)`` and its valid pixels ``(h, w)``."""

    data: np.ndarray
    valid: np.ndarray


def _features(block: Block, valid: np.ndarray, card: ModelCard) -> np.ndarray:
    pixels = block.data.reshape(block.data.shape[0], -1)[:, valid].T
    return compute_features(pixels, card.features, card.band_names)


def predict_chunk(block: Block, window: Window, predictor: Predictor) -> ChunkResult:
    """Predict the valid pixels of one window (the rest are nodata)."""
    return predictor.chunk(block, window)


def run(
    windows: list[Window],
    read: Callable[[Window], Block],
    write: Callable[[ChunkResult], None],
    classify: Predictor,
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
    regression = classify.regression
    totals = np.zeros(1 if regression else classify.stat_size, dtype=np.int64)
    conf_totals = np.zeros(0 if regression else classify.stat_size, dtype=np.float64)
    values = ValueStats()
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
            if regression:
                values = values.add(result.sums, int(result.counts[0]))
            else:
                conf_totals += result.sums
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
    if regression:
        stats.values = values
        return stats
    for cid, cnt, cs in zip(
        classify.classes.tolist(), totals.tolist(), conf_totals.tolist(), strict=True
    ):
        stats.counts[int(cid)] = int(cnt)
        stats.conf_sums[int(cid)] = float(cs)
    return stats
