"""Evaluation metrics pooled over folds: accuracy, Xia et al.'s (TMM 2019) F1, macro F1, UAR, UF1.

Everything is computed from one confusion matrix of all held-out predictions
(MEGC2019 practice: per-class TP/FP/FN summed over folds, then averaged over
classes), overall, per source dataset and per fold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

METRIC_NAMES = ("accuracy", "f1", "macro_f1", "uar", "uf1")


def _as_class_indices(values: ArrayLike, num_classes: int, what: str) -> np.ndarray:
    """1-D int64 array of class indices; ValueError naming the first bad value."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or np.any(array != np.round(array)):
            raise ValueError(f"{what} must be integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= num_classes)
    if np.any(bad):
        index = int(np.argmax(bad))
        raise ValueError(
            f"{what}[{index}] = {array[index]} is outside the valid class range [0, {num_classes})"
        )
    return array


def confusion_matrix(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; entry [t, p] counts samples of true class t predicted as p."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    true = _as_class_indices(labels, num_classes, "labels")
    pred = _as_class_indices(predictions, num_classes, "predictions")
    if true.shape != pred.shape:
        raise ValueError(
            f"labels and predictions differ in length: {true.size} labels, {pred.size} predictions"
        )
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def metrics_from_confusion(matrix: np.ndarray) -> dict[str, float]:
    """The five metrics of ``compute_metrics`` from a confusion matrix (counts, or weighted counts)."""
    total = int(matrix.sum())
    if total == 0:
        return {name: float("nan") for name in METRIC_NAMES}
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp

    # Xia et al., TMM 2019, sec. IV-B: P and R sum TP, FP, FN over classes before dividing.
    precision = tp.sum() / (tp.sum() + fp.sum())
    recall = tp.sum() / (tp.sum() + fn.sum())
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)

    # Xia et al., TIP 2020, sec. V-B: per-class F1 = 2TP / (2TP + FP + FN), averaged over the
    # classes that occur (as a label or a prediction).
    occurs = (tp + fp + fn) > 0
    per_class_f1 = 2 * tp[occurs] / (2 * tp[occurs] + fp[occurs] + fn[occurs])
    support = matrix.sum(axis=1)
    recall_per_class = tp[support > 0] / support[support > 0]
    macro_f1 = float(per_class_f1.mean())
    return {
        "accuracy": float(tp.sum() / total),
        "f1": float(f1),
        "macro_f1": macro_f1,
        "uar": float(recall_per_class.mean()),
        "uf1": macro_f1,
    }


def compute_metrics(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> dict[str, Any]:
    """Pooled metrics of single-label predictions.

    Keys:
      accuracy: correct / N.
      f1: Xia et al., TMM 2019, sec. IV-B as written: P = sum_c TP_c / sum_c (TP_c + FP_c),
        R = sum_c TP_c / sum_c (TP_c + FN_c), F = 2PR / (P + R). For single-label
        predictions both sums in the denominators equal N, so this F equals
        accuracy (Xia et al.'s (TMM 2019) tables report values that differ; see docs/design.md).
      macro_f1: mean per-class F1 over classes with TP + FP + FN > 0.
      uar: Xia et al., TIP 2020, sec. V-B, mean over classes with N_c > 0 of TP_c / N_c.
      uf1: Xia et al., TIP 2020, sec. V-B / MEGC2019, per-class F1_c = 2TP_c / (2TP_c + FP_c + FN_c)
        from TP/FP/FN summed over all given samples (pooled over folds), averaged
        over classes with TP + FP + FN > 0. Because the counts are always pooled
        here, uf1 and macro_f1 are the same number under the two names the
        literature uses.
      confusion_matrix: nested lists of int, rows = true class.
      num_samples: N.

    Empty input gives NaN for every metric and num_samples 0.
    """
    matrix = confusion_matrix(labels, predictions, num_classes)
    return {
        **metrics_from_confusion(matrix),
        "confusion_matrix": matrix.tolist(),
        "num_samples": int(matrix.sum()),
    }


def summarize(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    datasets: ArrayLike,
    folds: ArrayLike,
) -> dict[str, Any]:
    """Pooled ``compute_metrics`` at top level, plus ``per_dataset`` and ``per_fold``.

    datasets: source dataset name of each sample; folds: index of the fold that
    held each sample out. ``per_dataset`` maps each distinct dataset name (sorted)
    to its ``compute_metrics``; ``per_fold`` lists, in fold-index order, the
    metrics of each fold that holds out at least one sample.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    datasets, folds = np.asarray(datasets).astype(str), np.asarray(folds)
    lengths = {
        "labels": len(labels),
        "predictions": len(predictions),
        "datasets": len(datasets),
        "folds": len(folds),
    }
    if len(set(lengths.values())) > 1:
        raise ValueError(f"summarize inputs differ in length: {lengths}")
    if folds.size and not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"folds must be integer fold indices, got dtype {folds.dtype}")

    summary = compute_metrics(labels, predictions, num_classes)
    summary["per_dataset"] = {
        str(name): compute_metrics(labels[datasets == name], predictions[datasets == name], num_classes)
        for name in np.unique(datasets)
    }
    per_fold = []
    for fold in np.unique(folds):
        held_out = folds == fold
        metrics = compute_metrics(labels[held_out], predictions[held_out], num_classes)
        per_fold.append(
            {
                "fold": int(fold),
                "num_samples": metrics["num_samples"],
                **{name: metrics[name] for name in METRIC_NAMES},
            }
        )
    summary["per_fold"] = per_fold
    return summary
