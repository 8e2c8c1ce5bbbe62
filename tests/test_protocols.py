import numpy as np
import pytest

from mer_jax.core.protocols import Folds, lovo, loso, make_folds, stratified_kfold


def _assert_partition(folds: Folds, num_samples: int):
    assert folds.test_masks.shape == (folds.num_folds, num_samples)
    assert folds.test_masks.dtype == np.bool_
    np.testing.assert_array_equal(folds.test_masks.sum(axis=0), np.ones(num_samples))
    assert np.all(folds.test_masks.any(axis=1)), "a fold holds nothing out"
    assert len(folds.names) == folds.num_folds


def test_loso_one_fold_per_subject_in_sorted_order():
    subjects = np.array(["s3", "s1", "s2", "s1", "s3", "s3", "s10"])
    folds = loso(subjects)
    _assert_partition(folds, len(subjects))
    assert folds.names == ("s1", "s10", "s2", "s3")
    for name, test, train in zip(folds.names, folds.test_masks, folds.train_masks):
        assert set(subjects[test]) == {name}
        assert name not in set(subjects[train])


def test_loso_accepts_integer_subjects():
    folds = loso([7, 7, 3])
    assert folds.names == ("3", "7")
    np.testing.assert_array_equal(folds.test_masks, [[False, False, True], [True, True, False]])


def test_loso_single_subject_raises():
    with pytest.raises(ValueError, match=r"at least 2 folds.*1 distinct subject.*'sub01'"):
        loso(["sub01", "sub01"])


def test_lovo_holds_out_five_percent_per_fold():
    folds = lovo(256, test_fraction=0.05, seed=0)
    _assert_partition(folds, 256)
    assert folds.num_folds == 20
    sizes = folds.test_masks.sum(axis=1)
    assert sizes.min() == 12 and sizes.max() == 13
    assert folds.names[0] == "lovo-00" and folds.names[-1] == "lovo-19"


def test_lovo_is_shuffled_and_deterministic_by_seed():
    first = lovo(100, seed=3)
    np.testing.assert_array_equal(first.test_masks, lovo(100, seed=3).test_masks)
    assert not np.array_equal(first.test_masks, lovo(100, seed=4).test_masks)
    assert not np.array_equal(np.flatnonzero(first.test_masks[0]), np.arange(5))


def test_lovo_with_few_videos_leaves_one_out():
    folds = lovo(6, test_fraction=0.05)
    _assert_partition(folds, 6)
    assert folds.num_folds == 6


def test_lovo_bad_fraction_raises():
    with pytest.raises(ValueError, match="test_fraction=0.8 gives 1 fold"):
        lovo(100, test_fraction=0.8)
    with pytest.raises(ValueError, match="got 0"):
        lovo(100, test_fraction=0)


def test_stratified_kfold_balances_classes():
    rng = np.random.default_rng(0)
    labels = rng.choice(4, size=103, p=[0.5, 0.3, 0.15, 0.05])
    folds = stratified_kfold(labels, k=5, seed=1)
    _assert_partition(folds, len(labels))
    assert folds.num_folds == 5 and folds.names[0] == "kfold-00"
    sizes = folds.test_masks.sum(axis=1)
    assert sizes.max() - sizes.min() <= 1
    for c in range(4):
        per_fold = (folds.test_masks & (labels == c)).sum(axis=1)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)
    np.testing.assert_array_equal(folds.test_masks, stratified_kfold(labels, k=5, seed=1).test_masks)
    assert not np.array_equal(folds.test_masks, stratified_kfold(labels, k=5, seed=2).test_masks)


def test_stratified_kfold_too_few_samples_raises():
    with pytest.raises(ValueError, match="k=5 folds need at least 5 samples, got 3"):
        stratified_kfold([0, 1, 0], k=5)


def test_make_folds_dispatches():
    subjects = np.repeat(["a", "b", "c"], 10)
    labels = np.tile([0, 1], 15)
    assert make_folds("loso", subjects=subjects, labels=labels).names == ("a", "b", "c")
    assert make_folds("lovo", subjects=subjects, labels=labels, test_fraction=0.1).num_folds == 10
    assert make_folds("kfold", subjects=subjects, labels=labels, k=3).num_folds == 3
    with pytest.raises(ValueError, match=r"'loocv'.*\['loso', 'lovo', 'kfold', 'subject_kfold'\]"):
        make_folds("loocv", subjects=subjects, labels=labels)
    with pytest.raises(ValueError, match="30 subjects, 29 labels"):
        make_folds("loso", subjects=subjects, labels=labels[:-1])


def test_folds_validates_and_is_read_only():
    with pytest.raises(ValueError, match="2 fold names given for 1 folds"):
        Folds(test_masks=np.ones((1, 3), bool), names=("a", "b"))
    with pytest.raises(ValueError, match="dtype int64"):
        Folds(test_masks=np.ones((1, 3), np.int64), names=("a",))
    folds = loso(["a", "b"])
    with pytest.raises(ValueError):
        folds.test_masks[0, 0] = False


def test_subject_kfold_holds_out_whole_subjects_once():
    subjects = np.repeat([f"s{i}" for i in range(11)], 3)
    folds = make_folds("subject_kfold", subjects=subjects, labels=np.zeros(33), k=4, seed=1)
    assert folds.num_folds == 4
    np.testing.assert_array_equal(folds.test_masks.sum(axis=0), 1)  # every clip tested once
    for mask in folds.test_masks:
        held_out = set(subjects[mask])
        assert 2 <= len(held_out) <= 3 and not held_out & set(subjects[~mask])  # whole subjects, near-equal groups
    other = make_folds("subject_kfold", subjects=subjects, labels=np.zeros(33), k=4, seed=2)
    assert not np.array_equal(other.test_masks, folds.test_masks)
    with pytest.raises(ValueError, match="at least 12 subjects"):
        make_folds("subject_kfold", subjects=subjects, labels=np.zeros(33), k=12)
