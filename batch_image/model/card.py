"""The model card (``model.json``) and the model directory (``model.skops``).

A model directory holds exactly two things predict needs:

* ``model.skops``: the fitted scikit-learn classifier or regressor (or pipeline),
  saved with skops. It is loaded with skops' trusted-type check: only types on
  :data:`TRUSTED_PREFIXES` are accepted; anything else is refused as a
  :class:`~batch_image.errors.ModelError`. Plain pickle is never used.
* ``model.json``: the card: name, version, task (``classification``: classes with
  id, name, colour; ``regression``: the target's name and unit), the input bands and
  dtype, the feature recipe, and provenance (estimator,
  metrics, data hashes, library versions). Unknown keys are kept as ``extra``
  so the train action can add to it without breaking predict.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from batch_image.errors import ModelError

CARD_NAME = "model.json"
ESTIMATOR_NAME = "model.skops"
SCHEMA = "rasterdrop.model/1"
NODATA_CLASS = 255
CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
MAX_MODEL_BYTES = 2 * 1024**3

# skops reports every type in a file; we accept scikit-learn's own estimators and
# the numpy/scipy/builtin plumbing they are made of, nothing else.
TRUSTED_PREFIXES = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "builtins.",
    "collections.",
    "_collections.",
    "functools.partial",
    "joblib.",
)
# LightGBM's and XGBoost's scikit-learn estimators, exactly, and the Booster each wraps
# (the fitted trees): nothing else from those packages.
TRUSTED_TYPES = frozenset(
    {
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.basic.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.core.Booster",
    }
)

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class ModelClass:
    id: int
    name: str
    colour: str

    def rgb(self) -> tuple[int, int, int]:
        c = self.colour.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


@dataclass(frozen=True)
class Target:
    """What a regression model predicts: a name (``biomass``) and its unit (``t/ha``)."""

    name: str
    unit: str = ""


@dataclass(frozen=True)
class NormalizedDifference:
    """``(a - b) / (a + b)`` of two named input bands, 0 where the sum is 0."""

    name: str
    a: str
    b: str


@dataclass(frozen=True)
class FeatureRecipe:
    """Which input bands (1-based) feed the model, plus derived features."""

    bands: tuple[int, ...]
    normalized_differences: tuple[NormalizedDifference, ...] = ()

    def names(self, band_names: tuple[str, ...]) -> list[str]:
        return [band_names[i - 1] for i in self.bands] + [
            nd.name for nd in self.normalized_differences
        ]


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    classes: tuple[ModelClass, ...]
    band_count: int
    band_names: tuple[str, ...]
    dtype: str
    features: FeatureRecipe
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    alpha: tuple[int, ...] = ()  # the training file's alpha bands (1-based): never features
    task: str = CLASSIFICATION
    target: Target | None = None  # regression only
    # an estimator whose classes_ are 0..k-1 (XGBoost): the class id of each of them
    class_index: tuple[int, ...] = ()

    @property
    def is_regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def data_bands(self) -> tuple[int, ...]:
        """The card's bands that hold measurements (all but alpha), 1-based."""
        return tuple(i for i in range(1, self.band_count + 1) if i not in self.alpha)

    @property
    def needed_bands(self) -> tuple[int, ...]:
        """The card's bands the features read (selected bands and derived features' bands)."""
        index = {n: i for i, n in enumerate(self.band_names, start=1)}
        derived = {index[n] for nd in self.features.normalized_differences for n in (nd.a, nd.b)}
        return tuple(sorted(set(self.features.bands) | derived))

    @property
    def names_given(self) -> bool:
        """Whether the bands have real names (not the ``b<i>`` stand-ins for absent ones)."""
        return any(n != f"b{i}" for i, n in enumerate(self.band_names, start=1))

    @property
    def class_ids(self) -> list[int]:
        return [c.id for c in self.classes]

    def class_by_id(self) -> dict[int, ModelClass]:
        return {c.id: c for c in self.classes}

    def estimator_class_ids(self, classes: Any) -> list[int]:
        """The class ids of an estimator's ``classes_`` (through ``class_index`` if set)."""
        if self.class_index:
            return [self.class_index[int(c)] for c in classes]
        return [int(c) for c in classes]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "name": self.name,
            "version": self.version,
            "classes": [asdict(c) for c in self.classes],
            "bands": {
                "count": self.band_count,
                "names": list(self.band_names),
                "dtype": self.dtype,
                "alpha": list(self.alpha),
            },
            "features": {
                "bands": list(self.features.bands),
                "normalized_differences": [
                    asdict(nd) for nd in self.features.normalized_differences
                ],
                "names": self.features.names(self.band_names),
            },
            "versions": dict(self.versions),
            "task": self.task,
        }
        if self.target is not None:
            out["target"] = asdict(self.target)
        if self.class_index:
            out["class_index"] = list(self.class_index)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        try:
            classes = tuple(
                ModelClass(int(c["id"]), str(c["name"]), str(c["colour"]))
                for c in data.get("classes") or ()
            )
            bands = data["bands"]
            band_count = int(bands["count"])
            band_names = tuple(bands.get("names") or [f"b{i}" for i in range(1, band_count + 1)])
            feats = data.get("features") or {}
            recipe = FeatureRecipe(
                bands=tuple(int(b) for b in feats.get("bands") or range(1, band_count + 1)),
                normalized_differences=tuple(
                    NormalizedDifference(str(nd["name"]), str(nd["a"]), str(nd["b"]))
                    for nd in feats.get("normalized_differences") or ()
                ),
            )
            known = {"schema", "name", "version", "classes", "bands", "features", "versions"}
            known |= {"task", "target", "class_index"}
            target = data.get("target")
            card = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                classes=classes,
                band_count=band_count,
                band_names=band_names,
                dtype=str(bands["dtype"]),
                features=recipe,
                versions=dict(data.get("versions") or {}),
                extra={k: v for k, v in data.items() if k not in known},
                alpha=tuple(int(b) for b in bands.get("alpha") or ()),
                task=str(data.get("task") or CLASSIFICATION),
                class_index=tuple(int(c) for c in data.get("class_index") or ()),
                target=Target(str(target["name"]), str(target.get("unit") or ""))
                if target
                else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model.json is malformed: {exc!r}", code="model_card_malformed"
            ) from exc
        card.validate()
        return card

    def validate(self) -> None:
        self._validate_task()
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ModelError("model.json repeats a class id", code="model_card_malformed")
        for c in self.classes:
            if not 1 <= c.id <= 254:
                raise ModelError(
                    f"class id {c.id} is outside 1..254 (0 is unlabelled, 255 is nodata)",
                    code="model_card_malformed",
                )
            if not _COLOUR.match(c.colour):
                raise ModelError(
                    f"class {c.name!r} colour {c.colour!r} is not #rrggbb",
                    code="model_card_malformed",
                )
        if len(self.band_names) != self.band_count:
            raise ModelError("band names do not match band count", code="model_card_malformed")
        for b in self.features.bands:
            if not 1 <= b <= self.band_count:
                raise ModelError(f"feature band {b} is out of range", code="model_card_malformed")
            if b in self.alpha:
                raise ModelError(
                    f"feature band {b} is an alpha band: transparency is never a feature",
                    code="model_card_malformed",
                )
        for b in self.alpha:
            if not 1 <= b <= self.band_count:
                raise ModelError(f"alpha band {b} is out of range", code="model_card_malformed")
        for nd in self.features.normalized_differences:
            for n in (nd.a, nd.b):
                if n not in self.band_names:
                    raise ModelError(
                        f"derived feature {nd.name!r} names unknown band {n!r}",
                        code="model_card_malformed",
                    )
        if self.class_index and not set(self.class_index) <= set(self.class_ids):
            raise ModelError(
                "model.json class_index names ids that are not among its classes",
                code="model_card_malformed",
            )

    def _validate_task(self) -> None:
        """A classifier lists its classes; a regressor names its target and lists none."""
        if self.task not in TASKS:
            raise ModelError(
                f"model.json task {self.task!r} is not one of {', '.join(TASKS)}",
                code="model_card_malformed",
            )
        if self.is_regression:
            if self.target is None or not self.target.name:
                raise ModelError(
                    "model.json of a regression model names no target (target.name)",
                    code="model_card_malformed",
                )
            if self.classes:
                raise ModelError(
                    "model.json of a regression model lists classes", code="model_card_malformed"
                )
            return
        if not self.classes:
            raise ModelError("model.json lists no classes", code="model_card_malformed")


def library_versions() -> dict[str, str]:
    """Versions of what shapes a model's output, recorded in cards and summaries."""
    import platform

    import numpy
    import rasterio
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "skops": skops.__version__,
    }


def save_model(directory: Path, estimator: Any, card: ModelCard) -> Path:
    """Write ``model.skops`` and ``model.json`` into ``directory`` (created)."""
    import skops.io as sio

    card.validate()
    classes = card.estimator_class_ids(getattr(estimator, "classes_", []))
    if classes and not set(classes) <= set(card.class_ids):
        raise ModelError(
            f"estimator classes {classes} are not all in the card's {card.class_ids}",
            code="model_card_mismatch",
        )
    directory.mkdir(parents=True, exist_ok=True)
    sio.dump(estimator, directory / ESTIMATOR_NAME)
    (directory / CARD_NAME).write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return directory


def load_card(directory: Path) -> ModelCard:
    path = Path(directory) / CARD_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"no model card at {path}", code="model_missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}", code="model_card_malformed") from exc
    return ModelCard.from_dict(data)


def _is_trusted(type_name: str) -> bool:
    return type_name.startswith(TRUSTED_PREFIXES) or type_name in TRUSTED_TYPES


def release_freed_memory() -> None:
    """Hand memory freed after a big load back to the OS (glibc keeps it otherwise).

    Loading a forest makes a transient ~100 MB that the allocator would keep for
    the whole run; trimming lowers the job's peak memory (measured in bench/).
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def check_trusted_types(path: Path) -> list[str]:
    """The types a skops file holds, all of them trusted, or a ``ModelError`` naming the
    others (``model_untrusted``)."""
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(
            f"{path} is not a readable skops file: {exc}", code="model_corrupt"
        ) from exc
    untrusted = sorted(t for t in found if not _is_trusted(t))
    if untrusted:
        raise ModelError(
            f"refusing {path.name}: it holds types outside the trusted set: {', '.join(untrusted)}",
            code="model_untrusted",
            untrusted_types=untrusted,
        )
    return found


def load_estimator(directory: Path, card: ModelCard | None = None) -> Any:
    """Load ``model.skops`` after checking every type it holds is trusted."""
    import skops.io as sio

    path = Path(directory) / ESTIMATOR_NAME
    if not path.is_file():
        raise ModelError(f"no model file at {path}", code="model_missing")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{path} is larger than {MAX_MODEL_BYTES} bytes", code="model_too_large")
    found = check_trusted_types(path)
    try:
        estimator = sio.load(path, trusted=found)
    except Exception as exc:
        raise ModelError(f"{path} could not be loaded: {exc}", code="model_corrupt") from exc
    release_freed_memory()
    check_estimator(estimator, card, path.name)
    return estimator


def check_estimator(estimator: Any, card: ModelCard | None, name: str) -> None:
    """What predict relies on: a classifier has ``predict_proba`` and ``classes_`` (all in
    the card), a regressor ``predict`` and no classes; ``n_features_in_`` (when the
    estimator records it) equals the card's feature count. Refused as ``ModelError``."""
    regression = card is not None and card.is_regression
    kind = type(estimator).__name__
    if regression:
        if not hasattr(estimator, "predict") or hasattr(estimator, "classes_"):
            raise ModelError(
                f"{name} holds {kind}, not a fitted regressor with predict (the card says "
                "task: regression)",
                code="model_unsupported",
            )
    elif not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise ModelError(
            f"{name} holds {kind}, not a fitted classifier with predict_proba",
            code="model_unsupported",
        )
    if card is None:
        return
    expected = len(card.features.names(card.band_names))
    got = getattr(estimator, "n_features_in_", None)
    if got is not None and int(got) != expected:
        raise ModelError(
            f"{name} expects {int(got)} features, the card's recipe gives {expected} "
            f"({', '.join(card.features.names(card.band_names))})",
            code="model_card_mismatch",
        )
    if not regression:
        if card.class_index and (
            max((int(c) for c in estimator.classes_), default=-1) >= len(card.class_index)
        ):
            raise ModelError(
                f"model classes {list(estimator.classes_)} are not indexes into the card's "
                f"class_index {list(card.class_index)}",
                code="model_card_mismatch",
            )
        classes = card.estimator_class_ids(estimator.classes_)
        if not set(classes) <= set(card.class_ids):
            raise ModelError(
                f"model classes {classes} are not all listed in model.json {card.class_ids}",
                code="model_card_mismatch",
            )


def load_model(directory: Path) -> tuple[Any, ModelCard]:
    """Card and estimator of a model directory, both checked."""
    card = load_card(directory)
    return load_estimator(directory, card), card
