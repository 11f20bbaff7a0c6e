"""Predict a GeoTIFF into a directory (the engine's file ends), and the local run.

:func:`predict_to_dir` runs the phases one after the other, each a short
function: validate the header, plan the windows and predict them into
uncompressed scratch rasters, convert those to COGs, write the QGIS style and
the preview, build the summary. It writes result files only; the done-marker
is the caller's, through :mod:`batch_image.publish.protocol`:
:func:`predict_file` (local mode) and :mod:`batch_image.jobs.predict_job` (S3).
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import rasterio
from rasterio.transform import from_gcps
from rasterio.windows import Window
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from batch_image.errors import InternalError, InvalidInputError, RasterdropError
from batch_image.logs import log_fields
from batch_image.model import source as model_source
from batch_image.model.card import ModelCard, load_card, load_estimator
from batch_image.model.compatibility import BandBinding, check_compatible
from batch_image.predict import engine, postprocess, regression, review
from batch_image.predict.documents import (
    ErrorDocument,
    InputRef,
    LocalInput,
    RunFacts,
    Summary,
    Timings,
    summarize,
)
from batch_image.predict.outputs import (
    CLASSES_QML,
    CLASSES_TIF,
    CONFIDENCE_TIF,
    LAYER_FILES,
    LAYER_RESAMPLING,
    PREDICTION_QML,
    PREDICTION_TIF,
    PREVIEW_PNG,
    describe_classes,
    describe_confidence,
    describe_prediction,
    describe_probabilities,
    describe_uncertainty,
    georeferencing,
    layer_bytes_per_pixel,
    layer_format,
    qgis_style,
    render_preview,
    scratch_profile,
    to_cog,
)
from batch_image.predict.postprocess import PostProcess
from batch_image.publish.protocol import clear, publish, record_failure
from batch_image.publish.sinks import LocalDir
from batch_image.raster import vrt
from batch_image.raster.checks import DEFAULT_MAX_PIXELS, RasterInfo, check_raster
from batch_image.raster.validity import ValidityRule
from batch_image.raster.windows import DEFAULT_TARGET_PIXELS, plan_windows

log = logging.getLogger(__name__)

SCRATCH_MARGIN = 256 * 1024**2


@dataclass(frozen=True)
class PredictOptions:
    workers: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    target_pixels: int = DEFAULT_TARGET_PIXELS
    progress: bool = False
    parallel: str = "windows"
    postprocess: PostProcess = field(default_factory=PostProcess)  # the card's entry wins
    probabilities: bool = False  # classification: also probabilities.tif
    review_points: int = review.DEFAULT_REVIEW_POINTS  # review.gpkg (0: none)
    review_min_distance: int = review.DEFAULT_MIN_DISTANCE  # pixels between review points


@dataclass(frozen=True)
class Resume:
    """Hooks for a resumable caller (the S3 job): see :func:`engine.run`.

    ``plan(windows)`` is called once with the window plan before any window is read.
    """

    plan: Callable[[list[Window]], None] | None = None
    restore: Callable[[int, Window], engine.ChunkResult | None] | None = None
    checkpoint: Callable[[int, engine.ChunkResult], None] | None = None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_input(path: Path, card: ModelCard, max_pixels: int, name: str) -> RasterInfo:
    """The file is a readable GeoTIFF (or VRT) within the caps that ``card``'s model can
    read (its bands bind to the model's: :mod:`batch_image.model.compatibility`)."""
    info = check_raster(path, max_pixels=max_pixels, name=name)
    check_compatible(info, card, name)
    return info


def output_layers(card: ModelCard, probabilities: bool = False) -> tuple[str, ...]:
    """The layers a run of ``card``'s model writes at most (a regression's uncertainty
    is counted whether or not the model is a forest)."""
    if card.is_regression:
        return ("prediction", "uncertainty")
    return ("classes", "confidence", *(("probabilities",) if probabilities else ()))


def output_bytes(card: ModelCard, pixels: int, probabilities: bool = False) -> int:
    """Scratch bytes of the outputs: every layer's uncompressed scratch raster and its COG
    (at most as large), the real bytes of each layer (float32 values, one uint8 band per
    class of probabilities)."""
    per_pixel = layer_bytes_per_pixel(output_layers(card, probabilities), len(card.classes))
    return 2 * per_pixel * pixels


def check_scratch_space(
    where: Path,
    pixels: int,
    margin: int = SCRATCH_MARGIN,
    *,
    card: ModelCard | None = None,
    probabilities: bool = False,
) -> None:
    """Refuse before writing when ``where``'s disk cannot hold this raster's outputs
    (:func:`output_bytes`; without a card two uint8 layers, 4 bytes a pixel), plus a margin."""
    free = shutil.disk_usage(where).free
    need = (output_bytes(card, pixels, probabilities) if card else 4 * pixels) + margin
    if free < need:
        raise InternalError(
            f"not enough scratch space in {where}: {free:,} bytes free, {need:,} needed for "
            f"{pixels:,} pixels; free some space or write the outputs to a larger disk",
            code="scratch_full",
            free_bytes=free,
            needed_bytes=need,
        )


def predict_to_dir(
    input_path: Path,
    estimator: Any,
    card: ModelCard,
    out_dir: Path,
    options: PredictOptions = PredictOptions(),
    *,
    input_ref: InputRef | None = None,
    resume: Resume | None = None,
    checked: RasterInfo | None = None,
) -> Summary:
    """Write classes/confidence COGs, QGIS style and preview; return the summary.

    ``input_ref`` names the input in the summary (default: its local path);
    ``checked`` is the header of ``input_path`` when the caller already ran
    :func:`check_raster` and :func:`check_compatible` on this very file.
    """
    t_start = time.perf_counter()
    input_path, out_dir = Path(input_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = input_ref.key if input_ref and input_ref.key else input_path.name
    info = checked or check_input(input_path, card, options.max_pixels, name)
    binding = check_compatible(info, card, name)
    probabilities = options.probabilities and not card.is_regression
    check_scratch_space(out_dir, info.width * info.height, card=card, probabilities=probabilities)
    # post-processing (sieve, polygons, accuracy sample) is for class maps only
    post = PostProcess() if card.is_regression else options.postprocess.for_card(card).checked()
    if post.needed:
        postprocess.check_budget(info.width, info.height, post, name)
    t_validated = time.perf_counter()
    selector = None if card.is_regression else _review_selector(options)  # classes only
    with _scratch_in(out_dir) as scratch:
        stats, facts, layers = _predict_windows(
            input_path, estimator, card, scratch, options, resume, name, binding, selector
        )
        t_predicted = time.perf_counter()
        done = postprocess.apply(
            scratch / CLASSES_TIF, scratch / CONFIDENCE_TIF, out_dir, card, post, stats, name
        )
        stats = done.stats
        values = _value_summary(card, stats, scratch)
        _convert_to_cogs(scratch, out_dir, layers)
    _style_and_preview(out_dir, card, stats, values)
    sample = postprocess.draw_accuracy_sample(out_dir, out_dir / CLASSES_TIF, post)
    reviewed = _draw_review(out_dir, selector, card)
    timings = Timings.measured(
        t_start, t_validated, t_predicted, time.perf_counter(), stats.model_seconds
    )
    ref = input_ref or InputRef(path=str(input_path), size_bytes=info.size_bytes)
    summary = summarize(
        ref, info, card, stats, facts, timings, peak_rss_mb(),
        layers=layers, values=values.to_dict() if values else None,
    )  # fmt: skip
    summary = postprocess.recorded(summary, done, sample, post)
    summary = _with_review(summary, reviewed)
    log.info(
        "predicted %s: %d valid pixels in %.1fs",
        name,
        stats.valid_pixels,
        timings.total,
        extra=log_fields(input=name, valid_pixels=stats.valid_pixels, timings=timings.to_dict()),
    )
    return summary


def _review_selector(options: PredictOptions) -> review.ReviewSelector | None:
    """Scored by the top-two margin: the engine has every pixel's class probabilities."""
    if options.review_points <= 0:
        return None
    return review.ReviewSelector(
        options.review_points, min_distance=options.review_min_distance, margins=True
    )


def _draw_review(
    out_dir: Path, selector: review.ReviewSelector | None, card: ModelCard
) -> dict[str, Any] | None:
    if selector is None:
        return None
    classes = [review.ReviewClass(c.id, c.name, c.colour) for c in card.classes]
    return review.draw_review(out_dir, out_dir / CLASSES_TIF, selector, classes)


def _with_review(summary: Summary, record: dict[str, Any] | None) -> Summary:
    """The summary naming ``review.gpkg`` among its outputs, with the selection's record."""
    if record is None:
        return summary
    outputs = replace(summary.outputs, review=record.get("file"))
    return replace(summary, outputs=outputs, review=record)


@contextmanager
def _scratch_in(out_dir: Path) -> Iterator[Path]:
    """A scratch directory beside the outputs (same disk: the COGs are written next to it)."""
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=out_dir))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scratch_block(windows: list[Window]) -> int:
    """A GeoTIFF block size (multiple of 16) that tiles the first window's height."""
    height = int(windows[0].height) if windows else 256
    return max(16, min(1024, height // 16 * 16))


def _predict_windows(
    input_path: Path,
    estimator: Any,
    card: ModelCard,
    scratch: Path,
    options: PredictOptions,
    resume: Resume | None,
    name: str,
    binding: BandBinding,
    selector: review.ReviewSelector | None = None,
) -> tuple[engine.EngineStats, RunFacts, tuple[str, ...]]:
    """Plan the windows, then predict each into one uncompressed scratch raster per layer
    (and offer each finished window to the review selection, on the writer thread)."""
    workers = options.workers or cpu_count()
    concurrency, inner_threads = engine.configure_threads(estimator, workers, options.parallel)
    predictor = engine.predictor_for(
        estimator, card, probabilities=options.probabilities, margin=selector is not None
    )
    layers = predictor.layer_names()
    resume = resume or Resume()
    with rasterio.Env(**vrt.OPEN_OPTIONS), rasterio.open(input_path) as src:
        windows = plan_windows(src.width, src.height, src.block_shapes[0], options.target_pixels)
        if resume.plan:
            resume.plan(windows)
        # scratch blocks as tall as the windows: each block is written whole, once
        block, georef = _scratch_block(windows), georeferencing(src)
        with ExitStack() as files:
            dst = {
                layer: files.enter_context(
                    _open_layer(scratch, layer, src.profile, block, georef, card, predictor)
                )
                for layer in layers
            }
            bar = files.enter_context(
                _progress_bar(src.width * src.height, input_path.name, options.progress)
            )
            files.enter_context(threadpool_limits(limits=inner_threads))

            def write(result: engine.ChunkResult) -> None:
                for layer, data in result.layers.items():
                    if data.ndim == 2:
                        dst[layer].write(data, 1, window=result.window)
                    else:
                        dst[layer].write(data, window=result.window)
                if selector is not None:
                    selector.offer(
                        result.window, result.classes, result.confidence, margin=result.margin
                    )

            stats = engine.run(
                windows,
                _window_reader(src, name, binding),
                write,
                predictor,
                concurrency=concurrency,
                on_progress=bar.update,
                restore=resume.restore,
                checkpoint=resume.checkpoint,
            )
        facts = RunFacts(workers, options.parallel, len(windows), *_area_grid(src))
    return stats, facts, layers


def _open_layer(
    scratch: Path,
    layer: str,
    src_profile: dict,
    block: int,
    georef: dict,
    card: ModelCard,
    predictor: engine.Predictor,
) -> Any:
    """The scratch raster of one layer, described (names, units, colour table)."""
    dtype, nodata = layer_format(layer)
    count = len(predictor.classes) if layer == "probabilities" else 1  # type: ignore[union-attr]
    prof = scratch_profile(src_profile, block, georef, dtype=dtype, nodata=nodata, count=count)
    dst = rasterio.open(scratch / LAYER_FILES[layer], "w", **prof)
    describe = {
        "classes": lambda: describe_classes(dst, card),
        "confidence": lambda: describe_confidence(dst, card),
        "probabilities": lambda: describe_probabilities(
            dst,
            card,
            [int(c) for c in predictor.classes],  # type: ignore[union-attr]
        ),
        "prediction": lambda: describe_prediction(dst, card),
        "uncertainty": lambda: describe_uncertainty(dst, card),
    }
    describe[layer]()
    return dst


def share(windows: int, index: int, count: int) -> range:
    """Window indices of share ``index`` of ``count``: contiguous, sizes differing by at
    most one, every window in exactly one share (a sharded run's children)."""
    return range(windows * index // count, windows * (index + 1) // count)


@dataclass(frozen=True)
class ShareStats:
    """What one child of a sharded run did: its windows, how many it computed or found."""

    windows: int
    computed: int
    restored: int
    model_seconds: float


def predict_share(
    input_path: Path,
    estimator: Any,
    card: ModelCard,
    options: PredictOptions,
    *,
    index: int,
    count: int,
    resume: Resume,
    name: str,
) -> ShareStats:
    """Predict share ``index`` of ``count`` of the window plan into ``resume.checkpoint``
    only (no raster is written): the windows, reads and model calls of
    :func:`predict_to_dir`, so the assemble job's restored chunks are the very arrays an
    unsharded run computes. Chunks an earlier attempt left are restored, not recomputed."""
    info = check_input(input_path, card, options.max_pixels, name)
    binding = check_compatible(info, card, name)
    workers = options.workers or cpu_count()
    concurrency, inner_threads = engine.configure_threads(estimator, workers, options.parallel)
    # the margins the assemble job's review selection reads come with the chunks
    predictor = engine.predictor_for(
        estimator,
        card,
        probabilities=options.probabilities,
        margin=options.review_points > 0 and not card.is_regression,
    )
    with rasterio.Env(**vrt.OPEN_OPTIONS), rasterio.open(input_path) as src:
        windows = plan_windows(src.width, src.height, src.block_shapes[0], options.target_pixels)
        if resume.plan:
            resume.plan(windows)
        mine = share(len(windows), index, count)
        restore, checkpoint = resume.restore, resume.checkpoint

        def restore_at(i: int, w: Window) -> engine.ChunkResult | None:
            return restore(mine[i], w) if restore else None

        def checkpoint_at(i: int, result: engine.ChunkResult) -> None:
            if checkpoint:
                checkpoint(mine[i], result)

        with threadpool_limits(limits=inner_threads):
            stats = engine.run(
                [windows[i] for i in mine],
                _window_reader(src, name, binding),
                lambda result: None,  # the chunk is the result: the assemble job writes it
                predictor,
                concurrency=concurrency,
                restore=restore_at,
                checkpoint=checkpoint_at,
            )
    log.info(
        "share %d of %d: windows %d..%d, %d restored",
        index + 1,
        count,
        mine.start,
        mine.stop - 1,
        stats.restored_windows,
    )
    return ShareStats(
        len(mine), len(mine) - stats.restored_windows, stats.restored_windows, stats.model_seconds
    )


def _area_grid(src: rasterio.io.DatasetReader) -> tuple[Any, Any]:
    """CRS and transform that give the summary's pixel areas: the input's own, or for a
    raster located by GCPs the affine transform fitted to them (areas then approximate)."""
    gcps, gcp_crs = src.gcps
    if src.transform.is_identity and gcps:
        return gcp_crs, from_gcps(gcps)
    return src.crs, src.transform


def _progress_bar(total: int, name: str, enabled: bool) -> tqdm:
    return tqdm(
        total=total,
        unit="px",
        unit_scale=True,
        desc=f"predict {name}",
        disable=not enabled,
        leave=False,
    )


def _window_reader(
    src: rasterio.io.DatasetReader, name: str, binding: BandBinding
) -> Callable[[Window], engine.Block]:
    """Read one window and its valid pixels (every band of the file takes part in the
    rule), then its bands in the model's order; a read error means the file is damaged."""
    rule = ValidityRule.of(src)

    def read(window: Window) -> engine.Block:
        try:
            data = src.read(window=window)
            return engine.Block(binding.arrange(data), rule.mask(src, data, window))
        except rasterio.errors.RasterioIOError as exc:
            raise InvalidInputError(
                f"{name} is corrupt or truncated: reading {window} failed: "
                f"{str(exc).splitlines()[0][:200]}",
                code="unreadable",
            ) from exc

    return read


def _convert_to_cogs(scratch: Path, out_dir: Path, layers: tuple[str, ...]) -> None:
    """Every scratch raster to a COG; independent conversions that spend their time in GDAL
    (the class map's scratch file carries the colour table; the COG copies it)."""
    with ThreadPoolExecutor(2, thread_name_prefix="cog") as pool:
        jobs = [
            pool.submit(
                to_cog,
                scratch / LAYER_FILES[layer],
                out_dir / LAYER_FILES[layer],
                resampling=LAYER_RESAMPLING[layer],
            )
            for layer in layers
        ]
        for job in jobs:
            job.result()


def _value_summary(
    card: ModelCard, stats: engine.EngineStats, scratch: Path
) -> regression.ValueSummary | None:
    if not card.is_regression or stats.values is None:
        return None
    return regression.value_summary(card, stats.values, scratch / PREDICTION_TIF)


def _style_and_preview(
    out_dir: Path,
    card: ModelCard,
    stats: engine.EngineStats,
    values: regression.ValueSummary | None = None,
) -> None:
    """The QGIS style and the preview: a class map's with each class's share, a
    regression's on the value ramp with its colour bar."""
    if values is not None:
        (out_dir / PREDICTION_QML).write_text(regression.qgis_style(values))
        regression.render_preview(out_dir / PREDICTION_TIF, card, values, out_dir / PREVIEW_PNG)
        return
    (out_dir / CLASSES_QML).write_text(qgis_style(card))
    valid = stats.valid_pixels
    shares = {cid: (cnt / valid if valid else 0.0) for cid, cnt in stats.counts.items()}
    render_preview(out_dir / CLASSES_TIF, card, shares, out_dir / PREVIEW_PNG)


def predict_file(
    input_path: Path,
    model: Path,
    out_dir: Path,
    options: PredictOptions = PredictOptions(),
) -> dict[str, Any]:
    """Local mode: predict ``input_path`` into ``out_dir``; returns ``summary.json``'s content.

    ``model`` is what ``RASTERDROP_MODEL_URI`` is in S3 mode: a model directory, or
    a models root whose ``current.json`` names the version (one model source,
    :mod:`batch_image.model.source`). Results are published through the result
    protocol: both old markers go first, ``summary.json`` last; on a
    :class:`RasterdropError` ``error.json`` is recorded (no summary) and the error
    re-raised.
    """
    sink = LocalDir(Path(out_dir))
    sink.root.mkdir(parents=True, exist_ok=True)
    clear(sink)
    try:
        summary = _predict_local(Path(input_path), model, sink.root, options)
    except RasterdropError as exc:
        record_failure(sink, ErrorDocument.of(exc, LocalInput(str(input_path))).to_dict())
        raise
    files = {name: sink.root / name for name in summary.outputs.names()}
    document = summary.to_dict()
    publish(sink, files, document)
    return document


def _predict_local(
    input_path: Path, model: Path, out_dir: Path, options: PredictOptions
) -> Summary:
    """Model card, input checks, estimator, engine: the cheap checks before the big load."""
    source = model_source.resolve(str(model))
    with tempfile.TemporaryDirectory(prefix="rasterdrop-model-") as fetched:
        card = load_card(model_source.fetch_card_file(source, Path(fetched)))
        info = check_input(input_path, card, options.max_pixels, input_path.name)
        estimator = load_estimator(model_source.fetch_estimator_file(source, Path(fetched)), card)
    return predict_to_dir(input_path, estimator, card, out_dir, options, checked=info)
