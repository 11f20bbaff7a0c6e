"""The training manifest: what to train on and how (YAML or JSON).

Example (JSON keys are the same)::

    name: landcover
    classes:
      - {id: 1, name: water, colour: "#1f78b4"}
      - {id: 2, name: forest, colour: "#1b7837"}
    samples:
      - image: scenes/a.tif
        labels: scenes/a_labels.tif          # a uint8 class raster (0 = unlabelled)
      - image: scenes/b.tif
        vector: scenes/b_polygons.geojson    # .gpkg, .fgb, .shp (+ .shx .dbf .prj [.cpg])
        class_field: class                   # class id or class name; default "class"
      - image: scenes/c.vrt                  # a VRT stacking one GeoTIFF per band
        vector: scenes/c_points.gpkg         # points label the pixel they fall on
        buffer: 1                            # ... and every pixel within 1 pixel of it
    bands: [blue, green, red, nir]           # names or 1-based indexes; default all
    derived:
      - {name: ndvi, a: nir, b: red}         # (a - b) / (a + b)
    estimator: {type: random_forest, params: {n_estimators: 100}}
    max_samples_per_class: 5000
    min_samples_per_class: 50
    seed: 0
    cv: {block_size: 64, folds: 5}
    promote: if_better                       # true, false or if_better; default: the stack's
    promote_tolerance: 0.01                  # if_better: kappa may be this much lower

A regression manifest has ``task: regression`` and a ``target`` instead of
``classes``; its labels are a raster of continuous values (any numeric type, its
nodata honoured) or vector features with a numeric attribute::

    name: biomass
    task: regression
    target: {name: biomass, unit: t/ha}
    samples:
      - image: scenes/a.tif
        labels: scenes/a_biomass.tif         # float or integer values; nodata = unlabelled
      - image: scenes/b.tif
        vector: scenes/b_plots.gpkg          # points or polygons
        value_field: agb                     # the numeric attribute (no buffer)
    estimator: {type: random_forest}
    max_samples_per_class: 5000              # per value stratum (10 quantile strata)

Relative paths resolve against the manifest's own location (a directory or an
``s3://`` prefix), so the same manifest works locally and in the S3 job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from batch_image.errors import InvalidInputError
from batch_image.model.card import (
    CLASSIFICATION,
    REGRESSION,
    TASKS,
    ModelClass,
    NormalizedDifference,
    Target,
)

DEFAULT_PALETTE = (
    "#1f78b4",
    "#33a02c",
    "#b2df8a",
    "#fdbf6f",
    "#e31a1c",
    "#b15928",
    "#6a3d9a",
    "#ff7f00",
    "#a6cee3",
    "#fb9a99",
    "#cab2d6",
    "#ffff99",
)

ESTIMATORS = {
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
    "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
    "lightgbm": "lightgbm.LGBMClassifier",
    "xgboost": "xgboost.XGBClassifier",
}
REGRESSORS = {
    "random_forest": "sklearn.ensemble.RandomForestRegressor",
    "extra_trees": "sklearn.ensemble.ExtraTreesRegressor",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingRegressor",
    "lightgbm": "lightgbm.LGBMRegressor",
    "xgboost": "xgboost.XGBRegressor",
}
#: estimators whose classifier learns the classes as 0..k-1 (the card's ``class_index``)
INDEXED_CLASSES = frozenset({"xgboost"})
ESTIMATOR_ALIASES = {
    "rf": "random_forest",
    "randomforest": "random_forest",
    "randomforestclassifier": "random_forest",
    "et": "extra_trees",
    "extratrees": "extra_trees",
    "extratreesclassifier": "extra_trees",
    "hgb": "hist_gradient_boosting",
    "histgradientboosting": "hist_gradient_boosting",
    "histgradientboostingclassifier": "hist_gradient_boosting",
    "randomforestregressor": "random_forest",
    "extratreesregressor": "extra_trees",
    "histgradientboostingregressor": "hist_gradient_boosting",
    "lgbm": "lightgbm",
    "lgbmclassifier": "lightgbm",
    "lgbmregressor": "lightgbm",
    "xgb": "xgboost",
    "xgbclassifier": "xgboost",
    "xgbregressor": "xgboost",
}
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SAMPLES = 1000
# The defaults of a manifest, of the quick form and of its CLI options: one place.
DEFAULT_MAX_SAMPLES_PER_CLASS = 5000
DEFAULT_MIN_SAMPLES_PER_CLASS = 20
DEFAULT_SEED = 0
DEFAULT_CV_BLOCK_SIZE = 64
DEFAULT_CV_FOLDS = 5
CV_FOLDS_RANGE = (2, 20)
DEFAULT_TREES = 100  # random forest n_estimators


def default_colour(class_id: int) -> str:
    return DEFAULT_PALETTE[(class_id - 1) % len(DEFAULT_PALETTE)]


@dataclass(frozen=True)
class SampleSpec:
    """One training image and its labels: a class raster or a polygon file."""

    image: str
    labels: str | None = None
    vector: str | None = None
    class_field: str = "class"
    buffer: int = 0  # vector points: also label the pixels within this many pixels
    value_field: str | None = None  # regression: the vector's numeric attribute


@dataclass(frozen=True)
class EstimatorSpec:
    type: str = "random_forest"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    name: str
    classes: tuple[ModelClass, ...]
    samples: tuple[SampleSpec, ...]
    bands: tuple[str | int, ...] | None = None
    derived: tuple[NormalizedDifference, ...] = ()
    estimator: EstimatorSpec = field(default_factory=EstimatorSpec)
    max_samples_per_class: int = DEFAULT_MAX_SAMPLES_PER_CLASS
    min_samples_per_class: int = DEFAULT_MIN_SAMPLES_PER_CLASS
    seed: int = DEFAULT_SEED
    cv_block_size: int = DEFAULT_CV_BLOCK_SIZE
    cv_folds: int = DEFAULT_CV_FOLDS
    promote: bool | str | None = None  # true, false, "if_better"; None: the caller's default
    promote_tolerance: float | None = None  # None: the caller's default
    classes_from_labels: bool = False  # quick form: names and colours from the label tags
    task: str = CLASSIFICATION
    target: Target | None = None  # regression

    @property
    def is_regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def indexes_classes(self) -> bool:
        """Whether the classifier is fitted on class indexes 0..k-1, not on the ids."""
        return not self.is_regression and self.estimator.type in INDEXED_CLASSES

    def estimator_class(self) -> str:
        """Dotted name of the estimator class for this task."""
        table = REGRESSORS if self.is_regression else ESTIMATORS
        return table[self.estimator.type]

    def to_dict(self) -> dict[str, Any]:
        task: dict[str, Any] = {}
        if self.is_regression:
            assert self.target is not None
            task = {
                "task": self.task,
                "target": {"name": self.target.name, "unit": self.target.unit},
            }
        return {
            "name": self.name,
            **task,
            "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in self.classes],
            "samples": [{k: v for k, v in vars(s).items() if v is not None} for s in self.samples],
            "bands": list(self.bands) if self.bands is not None else None,
            "derived": [{"name": d.name, "a": d.a, "b": d.b} for d in self.derived],
            "estimator": {"type": self.estimator.type, "params": dict(self.estimator.params)},
            "max_samples_per_class": self.max_samples_per_class,
            "min_samples_per_class": self.min_samples_per_class,
            "seed": self.seed,
            "cv": {"block_size": self.cv_block_size, "folds": self.cv_folds},
            "promote": self.promote,
            "promote_tolerance": self.promote_tolerance,
        }

    def with_classes(self, classes: tuple[ModelClass, ...]) -> Manifest:
        return replace(self, classes=classes, classes_from_labels=False)


def _fail(message: str) -> InvalidInputError:
    return InvalidInputError(f"manifest: {message}", code="manifest_invalid")


def parse_manifest_text(text: str | bytes, source: str = "manifest") -> Manifest:
    """Parse YAML or JSON (JSON is YAML, but try it first for exact error messages)."""
    import yaml

    if len(text) > MAX_MANIFEST_BYTES:
        raise _fail(f"{source} is larger than {MAX_MANIFEST_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"manifest: {source} is not UTF-8 text", code="manifest_unparsable"
            ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidInputError(
                f"manifest: {source} is neither JSON nor YAML ({first})",
                code="manifest_unparsable",
            ) from exc
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"manifest: {source} must be a mapping with name, classes and samples",
            code="manifest_unparsable",
        )
    return manifest_from_dict(data)


def _int(data: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{key} must be an integer in {low}..{high}, got {value!r}")
    return value


def _classes(raw: Any) -> tuple[ModelClass, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail("classes must be a non-empty list of {id, name, colour}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or "id" not in item or "name" not in item:
            raise _fail(f"each class needs id and name, got {item!r}")
        cid = item["id"]
        if isinstance(cid, bool) or not isinstance(cid, int) or not 1 <= cid <= 254:
            raise _fail(f"class id {cid!r} must be an integer in 1..254")
        colour = str(item.get("colour") or item.get("color") or default_colour(cid))
        out.append(ModelClass(cid, str(item["name"]), colour))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise _fail("class ids must be unique")
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise _fail("class names must be unique")
    import re

    for c in out:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", c.colour):
            raise _fail(f"class {c.name!r} colour {c.colour!r} is not #rrggbb")
    return tuple(out)


def parse_classes(raw: Any) -> tuple[ModelClass, ...]:
    """Classes as a manifest lists them (``[{id, name, colour}]``), checked."""
    return _classes(raw)


def _samples(raw: Any, regression: bool = False) -> tuple[SampleSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail("samples must be a non-empty list of {image, labels | vector}")
    if len(raw) > MAX_SAMPLES:
        raise _fail(f"at most {MAX_SAMPLES} samples")
    out = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not item.get("image"):
            raise _fail(f"sample {i} needs an image")
        labels, vector = item.get("labels"), item.get("vector")
        if (labels is None) == (vector is None):
            raise _fail(f"sample {i} needs exactly one of labels (raster) or vector (polygons)")
        buffer = item.get("buffer", 0)
        if isinstance(buffer, bool) or not isinstance(buffer, int) or not 0 <= buffer <= 50:
            raise _fail(f"sample {i} buffer must be a whole number of pixels in 0..50")
        if buffer and vector is None:
            raise _fail(f"sample {i} buffer applies to vector points, not to a label raster")
        value_field = item.get("value_field")
        if regression and buffer:
            raise _fail(
                f"sample {i} buffer is for class labels: a measured value belongs to its own "
                "pixel (label a polygon to cover more)"
            )
        if regression and vector is not None and not value_field:
            raise _fail(f"sample {i} needs value_field: the vector's numeric attribute")
        if not regression and value_field is not None:
            raise _fail(f"sample {i} value_field is for task: regression (use class_field)")
        out.append(
            SampleSpec(
                image=str(item["image"]),
                labels=str(labels) if labels is not None else None,
                vector=str(vector) if vector is not None else None,
                class_field=str(item.get("class_field", "class")),
                buffer=buffer,
                value_field=str(value_field) if value_field is not None else None,
            )
        )
    return tuple(out)


def _estimator(raw: Any) -> EstimatorSpec:
    if raw is None:
        return EstimatorSpec()
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise _fail("estimator must be {type, params}")
    kind = str(raw.get("type", "random_forest")).lower().replace("-", "_")
    kind = ESTIMATOR_ALIASES.get(kind.replace("_", ""), kind)
    if kind not in ESTIMATORS:
        raise _fail(f"estimator type {kind!r} is not one of {', '.join(ESTIMATORS)}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise _fail("estimator params must be a mapping")
    return EstimatorSpec(kind, dict(params))


def _derived(raw: Any) -> tuple[NormalizedDifference, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("derived must be a list of {name, a, b}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not {"name", "a", "b"} <= set(item):
            raise _fail(f"each derived feature needs name, a and b, got {item!r}")
        kind = item.get("type", "normalized_difference")
        if kind != "normalized_difference":
            raise _fail(f"derived feature type {kind!r} is not normalized_difference")
        out.append(NormalizedDifference(str(item["name"]), str(item["a"]), str(item["b"])))
    return tuple(out)


def validate_name(name: Any) -> str:
    """A model name: it becomes a path segment and an S3 key segment."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise _fail(f"name must be 1-64 letters, digits, '.', '_' or '-', got {name!r}")
    return name


def _task(data: dict[str, Any]) -> tuple[str, Target | None]:
    task = data.get("task", CLASSIFICATION)
    if task not in TASKS:
        raise _fail(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == CLASSIFICATION:
        if "target" in data:
            raise _fail("target is for task: regression (a classifier has classes)")
        return task, None
    if data.get("classes"):
        raise _fail("a regression has a target, not classes: remove classes")
    return task, target_from(data.get("target"))


def target_from(raw: Any) -> Target:
    """``{name, unit}`` (or a bare name) of what a regression predicts."""
    if raw is None:
        return Target("value", "")
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or not str(raw.get("name") or "").strip():
        raise _fail("target must be {name, unit}, e.g. {name: biomass, unit: t/ha}")
    unit = raw.get("unit") or ""
    if not isinstance(unit, str) or len(unit) > 32 or len(str(raw["name"])) > 64:
        raise _fail("target name (≤ 64 characters) and unit (≤ 32 characters) must be text")
    return Target(str(raw["name"]).strip(), unit.strip())


def manifest_from_dict(data: dict[str, Any]) -> Manifest:
    name = validate_name(data.get("name"))
    task, target = _task(data)
    required = ("samples",) if task == REGRESSION else ("classes", "samples")
    missing = [k for k in required if k not in data]
    if missing:
        raise _fail(f"missing field(s): {', '.join(missing)}")
    bands = data.get("bands")
    if bands is not None:
        if not isinstance(bands, list) or not bands:
            raise _fail("bands must be a non-empty list of band names or 1-based indexes")
        bands = tuple(
            b if isinstance(b, int) and not isinstance(b, bool) else str(b) for b in bands
        )
    cv = data.get("cv") or {}
    if not isinstance(cv, dict):
        raise _fail("cv must be {block_size, folds}")
    promote = data.get("promote")
    if promote is not None and not isinstance(promote, bool) and promote != "if_better":
        raise _fail(f"promote must be true, false or if_better, got {promote!r}")
    tolerance = data.get("promote_tolerance")
    if tolerance is not None and (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not 0 <= tolerance <= 1
    ):
        raise _fail(f"promote_tolerance must be a number in 0..1, got {tolerance!r}")
    seed = data.get("seed", DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _fail("seed must be a non-negative integer")
    return Manifest(
        name=name,
        classes=_classes(data["classes"]) if task == CLASSIFICATION else (),
        samples=_samples(data["samples"], regression=task == REGRESSION),
        bands=bands,
        derived=_derived(data.get("derived")),
        estimator=_estimator(data.get("estimator")),
        max_samples_per_class=_int(
            data, "max_samples_per_class", DEFAULT_MAX_SAMPLES_PER_CLASS, 1, 10_000_000
        ),
        min_samples_per_class=_int(
            data, "min_samples_per_class", DEFAULT_MIN_SAMPLES_PER_CLASS, 1, 10_000_000
        ),
        seed=seed,
        cv_block_size=_int(cv, "block_size", DEFAULT_CV_BLOCK_SIZE, 1, 100_000),
        cv_folds=_int(cv, "folds", DEFAULT_CV_FOLDS, *CV_FOLDS_RANGE),
        promote=promote,
        task=task,
        target=target,
        promote_tolerance=None if tolerance is None else float(tolerance),
    )


def quick_manifest(
    image: str,
    labels: str,
    name: str = "model",
    trees: int = DEFAULT_TREES,
    seed: int = DEFAULT_SEED,
    max_samples_per_class: int = DEFAULT_MAX_SAMPLES_PER_CLASS,
    cv_block_size: int = DEFAULT_CV_BLOCK_SIZE,
    cv_folds: int = DEFAULT_CV_FOLDS,
    task: str = CLASSIFICATION,
    target: Target | None = None,
) -> Manifest:
    """The one-sample manifest behind ``train --image --labels --out``.

    Classes come from the label raster's tags (or ``class <id>``), filled in by
    the trainer once it has opened the labels; a regression (``task``) learns the
    label raster's values as ``target``.
    """
    by_task: dict[str, Any] = (
        {"task": REGRESSION, "target": target or Target("value", "")}
        if task == REGRESSION
        else {"classes_from_labels": True}
    )
    return Manifest(
        name=validate_name(name),
        classes=(),
        samples=(SampleSpec(image=image, labels=labels),),
        estimator=EstimatorSpec("random_forest", {"n_estimators": trees}),
        max_samples_per_class=max_samples_per_class,
        seed=seed,
        cv_block_size=cv_block_size,
        cv_folds=cv_folds,
        **by_task,
    )
