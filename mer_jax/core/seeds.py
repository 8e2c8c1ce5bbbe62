"""Scores over training seeds: each seed's pooled metrics, their mean and spread, and a bootstrap interval.

On a few hundred clips one run's UF1 moves by several points with the seed, and
the field is known to report the best of many seeds. ``train.num_seeds = N``
trains N seeds of every fold in one run; :func:`summarize_seeds` reports all of
them: no seed is picked.

The interval resamples subjects, the unit that LOSO holds out: each of
``num_resamples`` draws takes as many subjects as there are, with replacement,
weights every clip by how often its subject was drawn, computes each seed's
pooled metric on those weights and averages over the seeds. ``*_ci95`` are the
2.5th and 97.5th percentiles of that mean: how much the score would move on
another draw of subjects, with the seed's own variation averaged out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mer_jax.core.metrics import metrics_from_confusion

SUMMARIZED = ("uf1", "uar", "accuracy")  # reported per seed, with mean and standard deviation
INTERVALS = ("uf1", "uar")  # also with a 95% bootstrap interval over subjects


def weighted_metrics(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray, num_classes: int) -> dict:
    """The pooled metrics with clip n counted weights[n] times."""
    cells = np.bincount(labels * num_classes + predictions, weights=weights, minlength=num_classes * num_classes)
    return metrics_from_confusion(cells.reshape(num_classes, num_classes))


def summarize_seeds(
    labels: ArrayLike,
    predictions: ArrayLike,
    subjects: ArrayLike,
    num_classes: int,
    seeds: ArrayLike,
    *,
    num_resamples: int = 1000,
    resample_seed: int = 0,
) -> dict[str, Any]:
    """Per-seed metrics, their mean and standard deviation, and subject-bootstrap intervals of the mean.

    Args:
      labels: (N,) true class of every held-out clip.
      predictions: (S, N) each seed's predicted class of the same clips.
      subjects: (N,) each clip's subject.
      num_classes: C.
      seeds: (S,) the seeds, for the report.
      num_resamples: bootstrap draws.
      resample_seed: seeds the draws (the interval is reproducible).

    Returns:
      {"seeds", "per_seed": [{"seed", "uf1", "uar", "accuracy"}, ...], "<m>_mean",
      "<m>_std" (sample standard deviation over seeds, None for one seed) for m in
      SUMMARIZED, "<m>_ci95": [low, high] for m in INTERVALS, "bootstrap":
      {"resamples", "unit": "subject"}}.
    """
    labels = np.asarray(labels, np.int64)
    predictions = np.atleast_2d(np.asarray(predictions, np.int64))
    seeds = [int(s) for s in np.asarray(seeds).ravel()]
    if predictions.shape != (len(seeds), len(labels)):
        raise ValueError(
            f"predictions have shape {predictions.shape}; expected ({len(seeds)} seeds, {len(labels)} clips)"
        )
    subject_names, subject_of = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    ones = np.ones(len(labels))
    per_seed = [weighted_metrics(labels, p, ones, num_classes) for p in predictions]
    summary: dict[str, Any] = {
        "seeds": seeds,
        "per_seed": [{"seed": s, **{m: scores[m] for m in SUMMARIZED}} for s, scores in zip(seeds, per_seed)],
    }
    for name in SUMMARIZED:
        values = np.array([scores[name] for scores in per_seed])
        summary[f"{name}_mean"] = float(values.mean())
        summary[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
    rng = np.random.default_rng(resample_seed)
    draws = rng.multinomial(len(subject_names), np.full(len(subject_names), 1 / len(subject_names)), num_resamples)
    means = {name: np.empty(num_resamples) for name in INTERVALS}
    for index, counts in enumerate(draws):
        weights = counts[subject_of].astype(np.float64)
        scores = [weighted_metrics(labels, p, weights, num_classes) for p in predictions]
        for name in INTERVALS:
            means[name][index] = np.mean([s[name] for s in scores])
    for name in INTERVALS:
        summary[f"{name}_ci95"] = [float(v) for v in np.percentile(means[name], [2.5, 97.5])]
    summary["bootstrap"] = {"resamples": int(num_resamples), "unit": "subject"}
    return summary
