"""Evaluation that does not lie about spatial data.

Neighbouring pixels are nearly copies of one another, so a random split puts
near-duplicates on both sides and flatters the model. Spatially blocked
k-fold cross-validation groups pixels into square blocks (``block_size``
pixels) and keeps each block wholly in one fold (``GroupKFold`` on block ids).
Both are computed from out-of-fold predictions and reported side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def metrics(y_true: np.ndarray, y_pred: np.ndarray, class_ids: list[int]) -> dict[str, Any]:
    """Overall accuracy, Cohen's kappa, per-class P/R/F1 and the confusion matrix."""
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=class_ids, zero_division=0
    )
    kappa = cohen_kappa_score(y_true, y_pred, labels=class_ids)
    return {
        "n": int(y_true.size),
        "overall_accuracy": round(float(accuracy_score(y_true, y_pred)), 6),
        "kappa": round(float(0.0 if np.isnan(kappa) else kappa), 6),
        "macro_f1": round(float(np.mean(f)), 6),
        "per_class": {
            str(c): {
                "precision": round(float(p[i]), 6),
                "recall": round(float(r[i]), 6),
                "f1": round(float(f[i]), 6),
                "support": int(support[i]),
            }
            for i, c in enumerate(class_ids)
        },
        "confusion_matrix": {
            "labels": list(class_ids),
            "rows": "true",
            "columns": "predicted",
            "matrix": confusion_matrix(y_true, y_pred, labels=class_ids).tolist(),
        },
    }


def _out_of_fold(
    make_estimator: Callable[[], Any],
    X: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    progress: Any,
    index: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold predictions; with ``index`` (sorted class ids) each model is fitted on
    class indexes 0..k-1 (XGBoost) and its predictions mapped back to the ids."""
    pred = np.zeros_like(y)
    for train, test in splits:
        est = make_estimator()
        if index is None:
            est.fit(X[train], y[train])
            pred[test] = est.predict(X[test])
        else:
            est.fit(X[train], np.searchsorted(index, y[train]))
            pred[test] = index[np.asarray(est.predict(X[test])).astype(np.int64)]
        progress.update(1)
    return pred


def cross_validate(
    make_estimator: Callable[[], Any],
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    class_ids: list[int],
    folds: int,
    seed: int,
    indexed: bool = False,
    predictions: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Blocked (GroupKFold on spatial blocks) and random (stratified) k-fold metrics;
    ``indexed``: the estimator learns class indexes 0..k-1 (see :func:`_out_of_fold`);
    ``predictions["blocked"]`` receives the blocked out-of-fold predictions when given
    (the comparison with the current version scores them on the same folds)."""
    import sys

    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from tqdm import tqdm

    n_groups = int(np.unique(groups).size)
    blocked_folds = min(folds, n_groups)
    smallest = int(np.bincount(np.searchsorted(np.unique(y), y)).min())
    random_folds = max(2, min(folds, smallest))
    index = np.unique(y) if indexed else None
    out: dict[str, Any] = {"folds": folds, "blocks": n_groups}
    with tqdm(
        total=(blocked_folds if blocked_folds >= 2 else 0) + random_folds,
        desc="cross-validation",
        unit="fit",
        disable=not sys.stderr.isatty(),
        leave=False,
    ) as bar:
        if blocked_folds >= 2:
            gkf = GroupKFold(n_splits=blocked_folds, shuffle=True, random_state=seed)
            splits = list(gkf.split(X, y, groups))
            pred = _out_of_fold(make_estimator, X, y, splits, bar, index)
            out["blocked"] = {"folds": blocked_folds, **metrics(y, pred, class_ids)}
            if predictions is not None:
                predictions["blocked"] = pred
        else:
            out["blocked"] = {
                "skipped": f"only {n_groups} spatial block(s); use a smaller cv block size"
            }
        skf = StratifiedKFold(n_splits=random_folds, shuffle=True, random_state=seed)
        pred = _out_of_fold(make_estimator, X, y, list(skf.split(X, y)), bar, index)
        out["random"] = {"folds": random_folds, **metrics(y, pred, class_ids)}
    return out


REGRESSION_METRICS = ("r2", "rmse", "mae", "bias")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """R², RMSE, MAE and bias (mean of predicted − observed) of out-of-fold predictions."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    err = y_pred - y_true
    return {
        "n": int(y_true.size),
        "r2": round(float(r2_score(y_true, y_pred)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(y_true, y_pred))), 6),
        "mae": round(float(mean_absolute_error(y_true, y_pred)), 6),
        "bias": round(float(err.mean()), 6),
    }


def cross_validate_regression(
    make_estimator: Callable[[], Any],
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    folds: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Blocked (GroupKFold on spatial blocks) and random k-fold R²/RMSE/MAE/bias, and the
    out-of-fold predictions per scheme (for the observed-vs-predicted plot)."""
    import sys

    from sklearn.model_selection import GroupKFold, KFold
    from tqdm import tqdm

    y = np.asarray(y, dtype=np.float64)  # out-of-fold values as float64 (zeros_like(y))
    n_groups = int(np.unique(groups).size)
    blocked_folds = min(folds, n_groups)
    random_folds = max(2, min(folds, int(y.size)))
    out: dict[str, Any] = {"folds": folds, "blocks": n_groups}
    predictions: dict[str, np.ndarray] = {}
    with tqdm(
        total=(blocked_folds if blocked_folds >= 2 else 0) + random_folds,
        desc="cross-validation",
        unit="fit",
        disable=not sys.stderr.isatty(),
        leave=False,
    ) as bar:
        if blocked_folds >= 2:
            gkf = GroupKFold(n_splits=blocked_folds, shuffle=True, random_state=seed)
            pred = _out_of_fold(make_estimator, X, y, list(gkf.split(X, y, groups)), bar)
            out["blocked"] = {"folds": blocked_folds, **regression_metrics(y, pred)}
            predictions["blocked"] = pred
        else:
            out["blocked"] = {
                "skipped": f"only {n_groups} spatial block(s); use a smaller cv block size"
            }
        kf = KFold(n_splits=random_folds, shuffle=True, random_state=seed)
        pred = _out_of_fold(make_estimator, X, y, list(kf.split(X)), bar)
        out["random"] = {"folds": random_folds, **regression_metrics(y, pred)}
        predictions["random"] = pred
    predictions["observed"] = y
    return out, predictions
