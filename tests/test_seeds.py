"""Scores over seeds (mer_jax.core.seeds): per-seed metrics, their spread, and the subject-bootstrap interval."""

import numpy as np
import pytest

from mer_jax.core.metrics import compute_metrics
from mer_jax.core.seeds import weighted_metrics, summarize_seeds


def clips(seed=0, num_subjects=8, per_subject=6, num_seeds=3, accuracy=0.7):
    rng = np.random.default_rng(seed)
    n = num_subjects * per_subject
    labels = rng.integers(0, 3, n)
    right = rng.random((num_seeds, n)) < accuracy
    predictions = np.where(right, labels, (labels + rng.integers(1, 3, (num_seeds, n))) % 3)
    subjects = np.repeat([f"s{i}" for i in range(num_subjects)], per_subject)
    return labels, predictions, subjects


def test_per_seed_scores_are_the_pooled_metrics_and_the_mean_and_std_are_theirs():
    labels, predictions, subjects = clips()
    summary = summarize_seeds(labels, predictions, subjects, 3, seeds=[4, 5, 6])
    assert summary["seeds"] == [4, 5, 6] and [e["seed"] for e in summary["per_seed"]] == [4, 5, 6]
    for entry, p in zip(summary["per_seed"], predictions):
        expected = compute_metrics(labels, p, 3)
        for name in ("uf1", "uar", "accuracy"):
            assert entry[name] == pytest.approx(expected[name])
    for name in ("uf1", "uar", "accuracy"):
        values = [e[name] for e in summary["per_seed"]]
        assert summary[f"{name}_mean"] == pytest.approx(np.mean(values))
        assert summary[f"{name}_std"] == pytest.approx(np.std(values, ddof=1))
    assert len({e["uf1"] for e in summary["per_seed"]}) == 3


def test_a_weighted_clip_counts_as_that_many_copies():
    labels, predictions, _ = clips(num_seeds=1)
    weights = np.random.default_rng(1).integers(0, 4, len(labels))
    copied = compute_metrics(np.repeat(labels, weights), np.repeat(predictions[0], weights), 3)
    weighted = weighted_metrics(labels, predictions[0], weights.astype(float), 3)
    for name in ("uf1", "uar", "accuracy"):
        assert weighted[name] == pytest.approx(copied[name])


def test_the_interval_holds_the_mean_narrows_with_more_subjects_and_is_reproducible():
    small = summarize_seeds(*clips(num_subjects=6), 3, seeds=[0, 1, 2])
    large = summarize_seeds(*clips(num_subjects=60), 3, seeds=[0, 1, 2])
    for summary in (small, large):
        low, high = summary["uf1_ci95"]
        assert low < summary["uf1_mean"] < high
        assert summary["uar_ci95"][0] < summary["uar_mean"] < summary["uar_ci95"][1]
    assert np.diff(large["uf1_ci95"])[0] < np.diff(small["uf1_ci95"])[0] / 2
    assert summarize_seeds(*clips(num_subjects=6), 3, seeds=[0, 1, 2]) == small
    assert summarize_seeds(*clips(num_subjects=6), 3, seeds=[0, 1, 2], resample_seed=1) != small


def test_subjects_alike_give_a_narrow_interval_and_one_seed_no_std():
    """Every subject with the same clips and predictions: any draw of subjects scores the same."""
    labels, predictions, _ = clips(num_subjects=1, num_seeds=1)
    summary = summarize_seeds(np.tile(labels, 5), np.tile(predictions, 5), np.repeat(list("abcde"), len(labels)), 3, [0])
    assert summary["uf1_ci95"] == pytest.approx([summary["uf1_mean"]] * 2)
    assert summary["uf1_std"] is None and summary["bootstrap"] == {"resamples": 1000, "unit": "subject"}


def test_predictions_of_the_wrong_shape_are_refused():
    labels, predictions, subjects = clips()
    with pytest.raises(ValueError, match=r"expected \(2 seeds, 48 clips\)"):
        summarize_seeds(labels, predictions, subjects, 3, seeds=[0, 1])
