"""Training pixels from images and labels, read window by window.

Memory stays bounded however many and however large the images are: each
class keeps a reservoir of at most ``max_per_class`` pixels, chosen uniformly
at random among all its labelled valid pixels (each candidate draws a random
key; the smallest keys are kept). Windows without labels are never read from
the image. Nodata pixels (:mod:`batch_image.raster.validity`) are skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from batch_image.errors import InvalidInputError
from batch_image.model.compatibility import BandBinding
from batch_image.raster.validity import ValidityRule

WINDOW = 1024


class LabelSource(Protocol):
    """Class ids on the image grid, window by window (0 = unlabelled)."""

    description: str

    def read(self, window: Any) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass
class _Reservoir:
    cap: int
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    pixels: list[np.ndarray] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    images: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    _stack: np.ndarray | None = None

    def offer(
        self, keys: np.ndarray, pixels: np.ndarray, rows: np.ndarray, cols: np.ndarray, image: int
    ) -> None:
        if self.keys.size >= self.cap:
            # Only candidates that beat the current worst kept key can enter.
            worst = self.keys.max()
            keep = keys < worst
            keys, pixels, rows, cols = keys[keep], pixels[keep], rows[keep], cols[keep]
            if keys.size == 0:
                return
        allp = pixels if self._stack is None else np.concatenate([self._stack, pixels])
        allk = np.concatenate([self.keys, keys])
        allr = np.concatenate([self.rows, rows])
        allc = np.concatenate([self.cols, cols])
        alli = np.concatenate([self.images, np.full(keys.size, image, np.int32)])
        if allk.size > self.cap:
            sel = np.argpartition(allk, self.cap - 1)[: self.cap]
            allp, allk, allr, allc, alli = allp[sel], allk[sel], allr[sel], allc[sel], alli[sel]
        self._stack, self.keys, self.rows, self.cols, self.images = allp, allk, allr, allc, alli

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        order = np.lexsort((self.cols, self.rows, self.images))
        stack = self._stack if self._stack is not None else np.empty((0, 0), np.float32)
        return stack[order], self.rows[order], self.cols[order], self.images[order]


@dataclass(frozen=True)
class PixelSample:
    """Sampled raw pixels ``(n, bands)`` with class ids and where they came from."""

    pixels: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    images: np.ndarray
    found: dict[int, int]  # labelled valid pixels per class value, before capping
    sampled: dict[int, int]

    def groups(self, block_size: int) -> np.ndarray:
        """Spatial block id of every pixel: (image, row // block, col // block)."""
        br = self.rows // block_size
        bc = self.cols // block_size
        return (self.images.astype(np.int64) << 42) | (br << 21) | bc


def _windows(width: int, height: int, size: int = WINDOW) -> Iterator[Any]:
    from rasterio.windows import Window

    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="win", disable=not sys.stderr.isatty(), leave=False)


@dataclass
class _Scan:
    """What the scan keeps: a reservoir per accepted class, every class's found count."""

    class_ids: set[int] | None
    max_per_class: int
    rng: np.random.Generator
    reservoirs: dict[int, _Reservoir] = field(default_factory=dict)
    found: dict[int, int] = field(default_factory=dict)
    bands: int = 0

    def window(
        self,
        ds: Any,
        rule: ValidityRule,
        source: LabelSource,
        window: Any,
        index: int,
        binding: BandBinding | None = None,
    ) -> None:
        """Offer one window's labelled valid pixels, class by class (each its own draws)."""
        lab = source.read(window)
        if not lab.any():
            return
        data = ds.read(window=window)
        valid = rule.mask(ds, data, window) & (lab != 0)
        if not valid.any():
            return
        r, c = np.nonzero(valid)
        values = lab[r, c].astype(np.int64)
        if binding is not None:  # this image's bands in the first image's order
            data = binding.arrange(data)
        pix = data[:, r, c].T.astype(np.float32)
        r = r + int(window.row_off)
        c = c + int(window.col_off)
        uniq, counts = np.unique(values, return_counts=True)
        for v, n in zip(uniq.tolist(), counts.tolist(), strict=True):
            self.found[v] = self.found.get(v, 0) + n
            if self.class_ids is not None and v not in self.class_ids:
                continue
            sel = values == v
            res = self.reservoirs.setdefault(v, _Reservoir(self.max_per_class))
            res.offer(self.rng.random(n), pix[sel], r[sel], c[sel], index)

    def image(
        self, path: Path, source: LabelSource, index: int, binding: BandBinding | None = None
    ) -> None:
        import rasterio

        with rasterio.open(path) as ds:
            self.bands = len(binding.sources) if binding is not None else ds.count
            rule = ValidityRule.of(ds)
            windows = list(_windows(ds.width, ds.height))
            with _progress(len(windows), f"sampling {path.name}") as bar:
                for window in windows:
                    bar.update(1)
                    self.window(ds, rule, source, window, index, binding)

    def refuse_unknown(self) -> None:
        """Label values outside the manifest's classes, all listed (after the whole scan,
        so the user fixes them in one go)."""
        if self.class_ids is None:
            return
        unknown = sorted(set(self.found) - self.class_ids)
        if unknown:
            raise InvalidInputError(
                f"label values {unknown} are not among the manifest's classes "
                f"{sorted(self.class_ids)}: add them to classes or fix the labels",
                code="labels_unknown_class",
                values=unknown,
            )

    def sample(self) -> PixelSample:
        parts = {v: self.reservoirs[v].arrays() for v in sorted(self.reservoirs)}
        if not parts:
            return PixelSample(
                pixels=np.empty((0, self.bands), np.float32),
                labels=np.empty(0, np.int64),
                rows=np.empty(0, np.int64),
                cols=np.empty(0, np.int64),
                images=np.empty(0, np.int32),
                found=self.found,
                sampled={},
            )
        return PixelSample(
            pixels=np.concatenate([p[0] for p in parts.values()]),
            labels=np.concatenate([np.full(p[0].shape[0], v, np.int64) for v, p in parts.items()]),
            rows=np.concatenate([p[1] for p in parts.values()]),
            cols=np.concatenate([p[2] for p in parts.values()]),
            images=np.concatenate([p[3] for p in parts.values()]),
            found=dict(sorted(self.found.items())),
            sampled={v: int(p[0].shape[0]) for v, p in parts.items()},
        )


def sample_pixels(
    images: list[Path],
    labels: list[LabelSource],
    class_ids: set[int] | None,
    max_per_class: int,
    seed: int,
    bindings: list[BandBinding | None] | None = None,
) -> PixelSample:
    """Stratified, capped sample of labelled valid pixels over all images.

    ``class_ids`` None accepts every non-zero label value (the quick form);
    otherwise a label value outside it is refused after the scan, listing all
    such values. Each class keeps the ``max_per_class`` pixels with the smallest
    random keys (a reservoir), so memory stays bounded however much is labelled;
    the same seed and inputs give the same sample. ``bindings`` (one per image, or
    None) put each image's bands in the first image's order (matched by name).
    """
    scan = _Scan(class_ids, max_per_class, np.random.default_rng(seed))
    bindings = bindings or [None] * len(images)
    for index, (path, source, binding) in enumerate(zip(images, labels, bindings, strict=True)):
        scan.image(path, source, index, binding)
    scan.refuse_unknown()
    return scan.sample()
