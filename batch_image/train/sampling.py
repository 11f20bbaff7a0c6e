"""Training pixels from images and labels, read window by window.

Memory stays bounded however many and however large the images are: each
class keeps a reservoir of at most ``max_per_class`` pixels, chosen uniformly
at random among all its labelled valid pixels (each candidate draws a random
key; the smallest keys are kept). Windows without labels are never read from
the image. Nodata pixels (:mod:`batch_image.raster.validity`) are skipped.

A regression's labels are continuous: they are stratified by value instead of by
class. A first, cheap pass over the labels alone (never the image) keeps a uniform
random sample of :data:`EDGE_SAMPLE` values whose quantiles cut :data:`STRATA`
strata; each stratum then keeps its own reservoir, so rare high (or low) values are
not drowned by the common ones.
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
STRATA = 10  # value-quantile strata of a regression's sample
EDGE_SAMPLE = 100_000  # labelled values the strata's edges are computed from


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
    targets: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    _stack: np.ndarray | None = None

    def offer(
        self,
        keys: np.ndarray,
        pixels: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        image: int,
        targets: np.ndarray,
    ) -> None:
        if self.keys.size >= self.cap:
            # Only candidates that beat the current worst kept key can enter.
            worst = self.keys.max()
            keep = keys < worst
            keys, pixels, rows, cols = keys[keep], pixels[keep], rows[keep], cols[keep]
            targets = targets[keep]
            if keys.size == 0:
                return
        allp = pixels if self._stack is None else np.concatenate([self._stack, pixels])
        allk = np.concatenate([self.keys, keys])
        allr = np.concatenate([self.rows, rows])
        allc = np.concatenate([self.cols, cols])
        alli = np.concatenate([self.images, np.full(keys.size, image, np.int32)])
        allt = np.concatenate([self.targets, targets])
        if allk.size > self.cap:
            sel = np.argpartition(allk, self.cap - 1)[: self.cap]
            allp, allk, allr, allc = allp[sel], allk[sel], allr[sel], allc[sel]
            alli, allt = alli[sel], allt[sel]
        self._stack, self.keys, self.rows, self.cols = allp, allk, allr, allc
        self.images, self.targets = alli, allt

    def arrays(self) -> tuple[np.ndarray, ...]:
        order = np.lexsort((self.cols, self.rows, self.images))
        stack = self._stack if self._stack is not None else np.empty((0, 0), np.float32)
        return (
            stack[order],
            self.rows[order],
            self.cols[order],
            self.images[order],
            self.targets[order],
        )


@dataclass(frozen=True)
class PixelSample:
    """Sampled raw pixels ``(n, bands)`` with class ids and where they came from."""

    pixels: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    images: np.ndarray
    found: dict[int, int]  # labelled valid pixels per class value (stratum), before capping
    sampled: dict[int, int]
    targets: np.ndarray | None = None  # regression: the values (labels: their strata)
    edges: tuple[float, ...] = ()  # regression: the strata's inner edges

    @property
    def y(self) -> np.ndarray:
        """What the model learns: class ids, or a regression's values."""
        return self.labels if self.targets is None else self.targets

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
    edges: np.ndarray | None = None  # regression: inner edges of the value strata

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
        labelled = ~np.isnan(lab) if self.edges is not None else lab != 0
        if not labelled.any():
            return
        data = ds.read(window=window)
        valid = rule.mask(ds, data, window) & labelled
        if not valid.any():
            return
        r, c = np.nonzero(valid)
        targets = lab[r, c].astype(np.float64)
        if self.edges is not None:
            values = np.searchsorted(self.edges, targets, side="right").astype(np.int64)
        else:
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
            res.offer(self.rng.random(n), pix[sel], r[sel], c[sel], index, targets[sel])

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
                targets=None if self.edges is None else np.empty(0, np.float64),
                edges=self._edges(),
            )
        return PixelSample(
            pixels=np.concatenate([p[0] for p in parts.values()]),
            labels=np.concatenate([np.full(p[0].shape[0], v, np.int64) for v, p in parts.items()]),
            rows=np.concatenate([p[1] for p in parts.values()]),
            cols=np.concatenate([p[2] for p in parts.values()]),
            images=np.concatenate([p[3] for p in parts.values()]),
            found=dict(sorted(self.found.items())),
            sampled={v: int(p[0].shape[0]) for v, p in parts.items()},
            targets=None if self.edges is None else np.concatenate([p[4] for p in parts.values()]),
            edges=self._edges(),
        )

    def _edges(self) -> tuple[float, ...]:
        return () if self.edges is None else tuple(float(e) for e in self.edges)


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
    return _run_scan(scan, images, labels, bindings)


def _run_scan(
    scan: _Scan,
    images: list[Path],
    labels: list[LabelSource],
    bindings: list[BandBinding | None] | None,
) -> PixelSample:
    bindings = bindings or [None] * len(images)
    for index, (path, source, binding) in enumerate(zip(images, labels, bindings, strict=True)):
        scan.image(path, source, index, binding)
    scan.refuse_unknown()
    return scan.sample()


def value_edges(
    images: list[Path], labels: list[LabelSource], seed: int, strata: int = STRATA
) -> np.ndarray:
    """Inner edges of ``strata`` value-quantile strata of the labelled values (the labels
    alone are read), from a uniform random sample of at most :data:`EDGE_SAMPLE`."""
    import rasterio

    rng = np.random.default_rng(seed)
    keys = np.empty(0, np.float64)
    kept = np.empty(0, np.float64)
    for path, source in zip(images, labels, strict=True):
        with rasterio.open(path) as ds:
            width, height = ds.width, ds.height
        for window in _windows(width, height):
            v = source.read(window)
            v = v[~np.isnan(v)].astype(np.float64)
            if not v.size:
                continue
            keys = np.concatenate([keys, rng.random(v.size)])
            kept = np.concatenate([kept, v])
            if keys.size > EDGE_SAMPLE:
                sel = np.argpartition(keys, EDGE_SAMPLE - 1)[:EDGE_SAMPLE]
                keys, kept = keys[sel], kept[sel]
    if not kept.size:
        return np.empty(0, np.float64)
    inner = np.quantile(kept, np.linspace(0, 1, strata + 1)[1:-1])
    return np.unique(inner)


def sample_values(
    images: list[Path],
    labels: list[LabelSource],
    max_per_stratum: int,
    seed: int,
    bindings: list[BandBinding | None] | None = None,
    strata: int = STRATA,
) -> PixelSample:
    """A regression's sample: labelled valid pixels with their values, stratified by
    value quantiles (``labels`` of the result are the strata, ``targets`` the values)."""
    edges = value_edges(images, labels, seed, strata)
    scan = _Scan(None, max_per_stratum, np.random.default_rng(seed), edges=edges)
    return _run_scan(scan, images, labels, bindings)
