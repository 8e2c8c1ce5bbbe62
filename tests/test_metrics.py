import json
import math
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from mer_jax.core.metrics import compute_metrics, confusion_matrix, summarize

NUM_CLASSES = 5


def _random_predictions(seed=0, n=200):
    """Labels never contain class 4; predictions never contain class 3."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 2, 3], size=n, p=[0.5, 0.25, 0.15, 0.1])
    predictions = np.where(rng.random(n) < 0.6, labels, rng.choice([0, 1, 2, 4], size=n))
    predictions[predictions == 3] = 0
    return labels, predictions


def test_random_data_has_the_intended_missing_classes():
    labels, predictions = _random_predictions()
    assert 4 not in labels and 4 in predictions
    assert 3 in labels and 3 not in predictions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compute_metrics_matches_sklearn(seed):
    labels, predictions = _random_predictions(seed)
    result = compute_metrics(labels, predictions, NUM_CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that class 4 is never a label
        balanced = skm.balanced_accuracy_score(labels, predictions)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(labels, predictions))
    assert result["uar"] == pytest.approx(balanced)
    assert result["uf1"] == pytest.approx(skm.f1_score(labels, predictions, average="macro"))
    assert result["macro_f1"] == pytest.approx(skm.f1_score(labels, predictions, average="macro"))
    assert result["f1"] == pytest.approx(skm.f1_score(labels, predictions, average="micro"))
    assert result["f1"] == pytest.approx(result["accuracy"])
    np.testing.assert_array_equal(
        result["confusion_matrix"], skm.confusion_matrix(labels, predictions, labels=range(NUM_CLASSES))
    )
    assert result["num_samples"] == len(labels)


def test_hand_computed_small_case():
    labels = [0, 0, 0, 1, 1, 2]
    predictions = [0, 0, 1, 1, 2, 2]
    result = compute_metrics(labels, predictions, 4)  # class 3 never occurs
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # per-class F1 = 2TP / (2TP + FP + FN): class 0: 4/5, class 1: 2/4, class 2: 2/3
    assert result["uf1"] == pytest.approx((4 / 5 + 2 / 4 + 2 / 3) / 3)
    assert result["confusion_matrix"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_values_are_plain_python_and_json_serialisable():
    labels, predictions = _random_predictions()
    result = compute_metrics(labels, predictions, NUM_CLASSES)
    for key in ["accuracy", "f1", "macro_f1", "uar", "uf1"]:
        assert type(result[key]) is float
    assert type(result["num_samples"]) is int
    assert all(type(v) is int for row in result["confusion_matrix"] for v in row)
    assert json.loads(json.dumps(result)) == result


def test_empty_input_gives_nan_without_error():
    result = compute_metrics(np.array([], int), np.array([], int), 3)
    assert result["num_samples"] == 0
    for key in ["accuracy", "f1", "macro_f1", "uar", "uf1"]:
        assert math.isnan(result[key])
    assert result["confusion_matrix"] == [[0] * 3] * 3


def test_all_wrong_gives_zero_f1():
    result = compute_metrics([0, 1], [1, 0], 2)
    assert result["f1"] == 0.0 and result["uf1"] == 0.0 and result["uar"] == 0.0


def test_confusion_matrix_rows_are_true_class():
    matrix = confusion_matrix([2, 2, 0], [1, 1, 0], 3)
    assert matrix.dtype == np.int64 and matrix.shape == (3, 3)
    assert matrix[2, 1] == 2 and matrix[1, 2] == 0 and matrix[0, 0] == 1


def test_out_of_range_values_are_named():
    with pytest.raises(ValueError, match=r"labels\[1\] = 3 .*\[0, 3\)"):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError, match=r"predictions\[0\] = -1"):
        compute_metrics([0, 1], [-1, 0], 3)
    with pytest.raises(ValueError, match="3 labels, 2 predictions"):
        confusion_matrix([0, 1, 2], [0, 1], 3)


def test_summarize_splits_by_dataset_and_fold():
    labels, predictions = _random_predictions(seed=4, n=120)
    rng = np.random.default_rng(4)
    datasets = rng.choice(["casme2", "samm", "smic"], size=120)
    folds = rng.integers(0, 7, size=120)
    folds[folds == 5] = 6  # fold 5 holds out nothing
    summary = summarize(labels, predictions, NUM_CLASSES, datasets, folds)

    pooled = compute_metrics(labels, predictions, NUM_CLASSES)
    for key, value in pooled.items():
        assert summary[key] == value
    assert sorted(summary["per_dataset"]) == ["casme2", "samm", "smic"]
    for name, metrics in summary["per_dataset"].items():
        keep = datasets == name
        assert metrics["num_samples"] == keep.sum()
        assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(labels[keep], predictions[keep]))
        assert metrics["uf1"] == pytest.approx(skm.f1_score(labels[keep], predictions[keep], average="macro"))

    assert [entry["fold"] for entry in summary["per_fold"]] == [0, 1, 2, 3, 4, 6]
    assert sum(entry["num_samples"] for entry in summary["per_fold"]) == 120
    for entry in summary["per_fold"]:
        keep = folds == entry["fold"]
        assert set(entry) == {"fold", "num_samples", "accuracy", "f1", "macro_f1", "uar", "uf1"}
        assert entry["accuracy"] == pytest.approx(skm.accuracy_score(labels[keep], predictions[keep]))
    json.dumps(summary)


def test_uf1_is_pooled_not_mean_of_folds():
    # Per-fold UF1 is 1 and 1/3 (mean 2/3); pooled per-class F1 is 4/5 and 2/3.
    labels = np.array([0, 0, 1, 1])
    predictions = np.array([0, 0, 0, 1])
    folds = np.array([0, 0, 1, 1])
    summary = summarize(labels, predictions, 2, ["d"] * 4, folds)
    assert summary["uf1"] == pytest.approx(skm.f1_score(labels, predictions, average="macro"))
    per_fold_mean = np.mean([entry["uf1"] for entry in summary["per_fold"]])
    assert not np.isclose(summary["uf1"], per_fold_mean)


def test_summarize_length_mismatch_names_lengths():
    with pytest.raises(ValueError, match=r"'datasets': 2.*'folds': 3"):
        summarize([0, 1, 0], [0, 1, 0], 2, ["a", "b"], [0, 1, 1])
