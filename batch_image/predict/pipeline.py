"""Predict a local GeoTIFF into an output directory (the engine's file ends).

``predict_to_dir`` writes the result rasters and the preview and returns the
summary; ``predict_file`` adds the done-marker: ``summary.json`` written last and
atomically, so a reader never sees a half result as done.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from batch_image import __version__, clock
from batch_image.errors import InvalidInputError, RasterdropError
from batch_image.logs import log_fields
from batch_image.model.card import ModelCard, library_versions, load_card, load_estimator
from batch_image.model.compatibility import check_compatible
from batch_image.predict import engine
from batch_image.predict.outputs import (
    CLASSES_QML,
    CLASSES_TIF,
    CONFIDENCE_TIF,
    ERROR_JSON,
    PREVIEW_PNG,
    SUMMARY_JSON,
    describe_classes,
    describe_confidence,
    qgis_style,
    render_preview,
    scratch_profile,
    to_cog,
)
from batch_image.raster.checks import (
    DEFAULT_MAX_PIXELS,
    RasterInfo,
    check_raster,
)
from batch_image.raster.validity import ValidityRule
from batch_image.raster.windows import DEFAULT_TARGET_PIXELS, plan_windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictOptions:
    workers: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    target_pixels: int = DEFAULT_TARGET_PIXELS
    progress: bool = False
    parallel: str = "windows"


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


def _area_unit(crs: Any) -> tuple[str, bool]:
    if crs is None:
        return "pixel", False
    if crs.is_geographic:
        return "degree^2", True
    unit = (crs.linear_units or "unit").lower()
    return f"{unit}^2", True


def _scratch_block(windows: list[Window]) -> int:
    """A GeoTIFF block size (multiple of 16) that tiles the first window's height."""
    height = int(windows[0].height) if windows else 256
    return max(16, min(1024, height // 16 * 16))


def check_input(path: Path, card: ModelCard, max_pixels: int, name: str) -> RasterInfo:
    """The file is a readable GeoTIFF within the caps that ``card``'s model can read."""
    info = check_raster(path, max_pixels=max_pixels, name=name)
    check_compatible(info, card, name)
    return info


def predict_to_dir(
    input_path: Path,
    estimator: Any,
    card: ModelCard,
    out_dir: Path,
    options: PredictOptions = PredictOptions(),
    *,
    input_meta: dict[str, Any] | None = None,
    resume: Resume | None = None,
    checked: RasterInfo | None = None,
) -> dict[str, Any]:
    """Write classes/confidence COGs, QGIS style and preview; return the summary.

    ``checked`` is the header of ``input_path`` when the caller already ran
    :func:`check_raster` and :func:`check_compatible` on this very file.
    """
    t_start = time.perf_counter()
    input_path = Path(input_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = (input_meta or {}).get("key") or input_path.name
    info = checked or check_input(input_path, card, options.max_pixels, name)
    t_validated = time.perf_counter()

    workers = options.workers or cpu_count()
    concurrency, inner_threads = engine.configure_threads(estimator, workers, options.parallel)
    classify = engine.Classifier(estimator, card)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=out_dir))
    try:
        with rasterio.open(input_path) as src:
            windows = plan_windows(
                src.width, src.height, src.block_shapes[0], options.target_pixels
            )
            if resume and resume.plan:
                resume.plan(windows)
            # scratch blocks as tall as the windows: each block is written whole, once
            prof = scratch_profile(src.profile, block=_scratch_block(windows))
            with (
                rasterio.open(scratch / CLASSES_TIF, "w", **prof) as cls_dst,
                rasterio.open(scratch / CONFIDENCE_TIF, "w", **prof) as conf_dst,
                tqdm(
                    total=src.width * src.height,
                    unit="px",
                    unit_scale=True,
                    desc=f"predict {input_path.name}",
                    disable=not options.progress,
                    leave=False,
                ) as bar,
                threadpool_limits(limits=inner_threads),
            ):
                describe_classes(cls_dst, card)
                describe_confidence(conf_dst, card)

                rule = ValidityRule.of(src)

                def read(window: Window) -> engine.Block:
                    try:
                        data = src.read(window=window)
                        return engine.Block(data, rule.mask(src, data, window))
                    except rasterio.errors.RasterioIOError as exc:
                        raise InvalidInputError(
                            f"{name} is corrupt or truncated: reading {window} failed: "
                            f"{str(exc).splitlines()[0][:200]}",
                            code="unreadable",
                        ) from exc

                def write(result: engine.ChunkResult) -> None:
                    cls_dst.write(result.classes, 1, window=result.window)
                    conf_dst.write(result.confidence, 1, window=result.window)

                stats = engine.run(
                    windows,
                    read,
                    write,
                    classify,
                    concurrency=concurrency,
                    on_progress=bar.update,
                    restore=resume.restore if resume else None,
                    checkpoint=resume.checkpoint if resume else None,
                )
            crs = src.crs
            transform = src.transform
        t_predicted = time.perf_counter()
        # the two COG conversions are independent and spend their time in GDAL
        with ThreadPoolExecutor(2, thread_name_prefix="cog") as pool:
            jobs = [
                # the scratch file carries the colour table; the COG copies it
                pool.submit(
                    to_cog, scratch / CLASSES_TIF, out_dir / CLASSES_TIF, resampling="mode"
                ),
                pool.submit(
                    to_cog, scratch / CONFIDENCE_TIF, out_dir / CONFIDENCE_TIF, resampling="average"
                ),
            ]
            for job in jobs:
                job.result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (out_dir / CLASSES_QML).write_text(qgis_style(card))
    valid = stats.valid_pixels
    shares = {cid: (cnt / valid if valid else 0.0) for cid, cnt in stats.counts.items()}
    render_preview(out_dir / CLASSES_TIF, card, shares, out_dir / PREVIEW_PNG)
    t_done = time.perf_counter()

    area_unit, has_area = _area_unit(crs)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d) if has_area else 1.0
    by_id = card.class_by_id()
    summary = {
        "schema": "rasterdrop.summary/1",
        "status": "succeeded",
        "input": {
            "path": str(input_path) if not input_meta else None,
            "bucket": None,
            "key": None,
            "version_id": None,
            "etag": None,
            "size_bytes": info.size_bytes,
            **(input_meta or {}),
        },
        "raster": {
            "width": info.width,
            "height": info.height,
            "count": info.count,
            "dtype": info.dtype,
            "crs": info.crs,
            "transform": list(info.transform),
            "pixel_area": pixel_area,
            "area_unit": area_unit,
            "valid_pixels": valid,
            "nodata_pixels": stats.nodata_pixels,
        },
        "model": {"name": card.name, "version": card.version},
        "classes": [
            {
                "id": cid,
                "name": by_id[cid].name,
                "colour": by_id[cid].colour,
                "pixels": cnt,
                "share": round(shares[cid], 6),
                "area": cnt * pixel_area,
                "mean_confidence": round(stats.conf_sums[cid] / cnt, 2) if cnt else None,
            }
            for cid, cnt in stats.counts.items()
        ],
        "outputs": {
            "classes": CLASSES_TIF,
            "confidence": CONFIDENCE_TIF,
            "preview": PREVIEW_PNG,
            "qgis_style": CLASSES_QML,
        },
        "timings_s": {
            "validate": round(t_validated - t_start, 3),
            "predict": round(t_predicted - t_validated, 3),
            "model": round(stats.model_seconds, 3),
            "finalize": round(t_done - t_predicted, 3),
            "total": round(t_done - t_start, 3),
        },
        "workers": workers,
        "parallel": options.parallel,
        "windows": len(windows),
        "resumed_windows": stats.restored_windows,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "versions": {"rasterdrop": __version__, **library_versions()},
        "created_at": clock.iso_stamp(),
    }
    log.info(
        "predicted %s: %d valid pixels in %.1fs",
        name,
        valid,
        summary["timings_s"]["total"],
        extra=log_fields(input=name, valid_pixels=valid, timings=summary["timings_s"]),
    )
    return summary


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def error_document(exc: RasterdropError, input_meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "rasterdrop.error/1",
        "status": "failed",
        **exc.to_dict(),
        "input": input_meta,
        "created_at": clock.iso_stamp(),
    }


def predict_file(
    input_path: Path,
    model_dir: Path,
    out_dir: Path,
    options: PredictOptions = PredictOptions(),
) -> dict[str, Any]:
    """Local mode: predict ``input_path`` into ``out_dir``; ``summary.json`` last.

    On a :class:`RasterdropError` writes ``error.json`` (and no summary) and re-raises.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (SUMMARY_JSON, ERROR_JSON):
        (out_dir / stale).unlink(missing_ok=True)
    meta = {"path": str(input_path)}
    try:
        card = load_card(Path(model_dir))
        # the cheap checks on the input come before the (possibly large) model load
        info = check_input(Path(input_path), card, options.max_pixels, Path(input_path).name)
        estimator = load_estimator(Path(model_dir), card)
        summary = predict_to_dir(input_path, estimator, card, out_dir, options, checked=info)
    except RasterdropError as exc:
        write_json_atomic(out_dir / ERROR_JSON, error_document(exc, meta))
        raise
    write_json_atomic(out_dir / SUMMARY_JSON, summary)
    return summary
