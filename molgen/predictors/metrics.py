"""Metrics of learned property predictors: errors, ranking and calibration.

Every function skips non-finite (target, prediction) pairs, so sparse
multi-task targets (NaN = missing label) can be scored as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from molgen.core.errors import DataError

__all__ = ["calibration_report", "mae", "rmse", "roc_auc"]


def _as_2d(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(-1, 1) if array.ndim <= 1 else array


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error over all finite (target, prediction) pairs.

    Args:
        y_true: Targets, ``[n]`` or ``[n, t]``; NaN entries are skipped.
        y_pred: Predictions of the same shape.

    Returns:
        The RMSE (NaN when no pair is finite).
    """
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(p)
    return float(np.sqrt(np.mean((t[keep] - p[keep]) ** 2))) if keep.any() else float("nan")


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error over all finite (target, prediction) pairs.

    Args:
        y_true: Targets, ``[n]`` or ``[n, t]``; NaN entries are skipped.
        y_pred: Predictions of the same shape.

    Returns:
        The MAE (NaN when no pair is finite).
    """
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(p)
    return float(np.mean(np.abs(t[keep] - p[keep]))) if keep.any() else float("nan")


def roc_auc(y_true: Any, scores: Any) -> float:
    """Macro-averaged area under the ROC curve (Mann-Whitney U, ties averaged).

    Args:
        y_true: Binary labels, ``[n]`` or ``[n, t]``; NaN labels (and rows
            whose score is NaN) are skipped per task.
        scores: Scores or probabilities of the same shape.

    Returns:
        The mean AUC over tasks that have both classes; tasks with a single
        class are skipped, and NaN is returned when no task qualifies.
    """
    # scipy.stats takes ~1 s to import (measured); only metric calls need it.
    from scipy.stats import rankdata

    labels, values = _as_2d(y_true), _as_2d(scores)
    if labels.shape != values.shape:
        raise DataError(f"roc_auc: labels {labels.shape} and scores {values.shape} differ in shape")
    aucs = []
    for task in range(labels.shape[1]):
        keep = np.isfinite(labels[:, task]) & np.isfinite(values[:, task])
        positive = labels[keep, task] > 0.5
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(values[keep, task])
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def calibration_report(y_true: Any, mean: Any, std: Any) -> dict[str, float]:
    """How well a regression predictor's std tracks its errors.

    Args:
        y_true: Targets, ``[n]`` or ``[n, t]``.
        mean: Predicted means, same shape.
        std: Predicted standard deviations, same shape.

    Returns:
        ``{"spearman": rank correlation of |error| with std (NaN when std or
        the errors are constant), "within_1std": fraction of |error| <= std,
        "within_2std": fraction of |error| <= 2 std, "mean_std": mean std,
        "n": number of finite entries used}``. For a calibrated Gaussian the
        fractions are about 0.68 and 0.95; a deep ensemble's std is usually
        over-confident (smaller fractions) but should still rank errors.
    """
    from scipy.stats import spearmanr  # lazy: see roc_auc

    t, m, s = (np.asarray(a, dtype=np.float64).ravel() for a in (y_true, mean, std))
    if not (t.shape == m.shape == s.shape):
        raise DataError(f"calibration_report: shapes differ ({t.shape}, {m.shape}, {s.shape})")
    keep = np.isfinite(t) & np.isfinite(m) & np.isfinite(s)
    error, s = np.abs(t[keep] - m[keep]), s[keep]
    if not keep.any():
        nan = float("nan")
        return {"spearman": nan, "within_1std": nan, "within_2std": nan, "mean_std": nan, "n": 0}
    # spearmanr warns and returns NaN on constant input; skip the call instead.
    constant = np.ptp(error) == 0 or np.ptp(s) == 0
    rho = float("nan") if constant or len(s) < 2 else float(spearmanr(error, s).statistic)
    return {
        "spearman": rho,
        "within_1std": float(np.mean(error <= s)),
        "within_2std": float(np.mean(error <= 2 * s)),
        "mean_std": float(np.mean(s)),
        "n": int(keep.sum()),
    }
