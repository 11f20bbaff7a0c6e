"""The manifest's estimator: checked once, then built as often as cross-validation needs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from batch_image.errors import InvalidInputError
from batch_image.train.manifest import DEFAULT_TREES, Manifest


def make_estimator_factory(
    manifest: Manifest, workers: int | None = None
) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A zero-argument constructor for the manifest's estimator, and its parameters.

    The parameters are validated here, before any pixel is read, so a typo in the
    manifest costs seconds, not a sampling pass. ``n_jobs`` defaults to ``workers``
    (all cores when None) unless the manifest sets it.
    """
    spec = manifest.estimator
    module, _, cls_name = manifest.estimator_class().rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name)
    params = dict(spec.params)
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"manifest: estimator {spec.type} has no parameter(s) {unknown}",
            code="manifest_invalid",
        )
    params.setdefault("random_state", manifest.seed)
    if "n_jobs" in valid:
        params.setdefault("n_jobs", workers or -1)
    if spec.type == "random_forest":
        params.setdefault("n_estimators", DEFAULT_TREES)
    if spec.type == "lightgbm":
        params.setdefault("verbose", -1)  # LightGBM's own warnings go to stdout otherwise
    try:
        probe = cls(**params)
        if hasattr(probe, "_parameter_constraints"):  # scikit-learn's own estimators
            probe._validate_params()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"manifest: estimator parameters are invalid: {str(exc).splitlines()[0]}",
            code="manifest_invalid",
        ) from exc
    return (lambda: cls(**params)), params
