"""The built-in toy flow maps (mer_jax.data.toy_flow)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from mer_jax.data.preprocess import optical_strain
from mer_jax.data.toy_flow import make_toy_flow

SOURCES = ("smic", "casme2", "samm")
# Regions of a 60x60 map (rows, cols); the face centre is within 3 px of (30, 30).
BROWS = (slice(14, 23), slice(15, 46))
BETWEEN_BROWS = (slice(17, 26), slice(26, 35))
LEFT_MOUTH = (slice(40, 49), slice(16, 26))
RIGHT_MOUTH = (slice(40, 49), slice(35, 45))


@pytest.fixture(scope="module")
def data():
    return make_toy_flow(seed=0)


@pytest.fixture(scope="module")
def still():
    """Same draws as `data`, class motion removed."""
    return make_toy_flow(seed=0, motion_scale=0.0)


def loso_balanced_accuracy(ds):
    """Logistic regression on flattened maps, 5 subject-grouped folds."""
    x = ds.x.reshape(ds.num_samples, -1)
    pred = np.empty_like(ds.label)
    with threadpool_limits(1):  # BLAS threads oversubscribe small CPUs
        for train, test in GroupKFold(5).split(x, ds.label, ds.subject):
            model = LogisticRegression(C=0.01, max_iter=200).fit(x[train], ds.label[train])
            pred[test] = model.predict(x[test])
    return balanced_accuracy_score(ds.label, pred)


def region_mean(ds, region, channel, class_name):
    at = ds.label == ds.class_names.index(class_name)
    return ds.x[at][:, region[0], region[1], channel].mean()


def test_shapes_and_dtypes(data):
    assert data.x.shape == (216, 60, 60, 3) and data.x.dtype == np.float32
    assert data.label.shape == (216,) and data.label.dtype == np.int32
    assert data.class_names == ("negative", "positive", "surprise")
    assert set(np.unique(data.dataset)) == set(SOURCES)
    assert np.isfinite(data.x).all()


def test_third_channel_is_strain_of_the_flow(data):
    np.testing.assert_allclose(data.x[:5, ..., 2], np.asarray(optical_strain(data.x[:5, ..., :2])), rtol=1e-5, atol=1e-6)


def test_deterministic_per_seed_and_seeds_differ(data):
    again = make_toy_flow(seed=0)
    np.testing.assert_array_equal(again.x, data.x)
    np.testing.assert_array_equal(again.label, data.label)
    other = make_toy_flow(seed=1)
    assert not np.allclose(other.x, data.x)
    assert not np.array_equal(other.label, data.label)


def test_subjects_and_sample_ids(data):
    assert len(np.unique(data.sample_id)) == data.num_samples
    assert len(np.unique(data.subject)) == 18
    for subject in np.unique(data.subject):
        at = data.subject == subject
        (source,) = np.unique(data.dataset[at])
        assert subject.startswith(f"{source}/"), subject
        assert at.sum() == 12
        assert all(s.startswith(f"{subject}/clip") for s in data.sample_id[at])
        assert len(np.unique(data.label[at])) >= 2, f"{subject} shows a single class"


def test_class_frequencies_are_megc_like(data):
    counts = np.bincount(data.label, minlength=3)
    assert counts[0] > counts[1] and counts[0] > counts[2], counts
    per_subject = [np.bincount(data.label[data.subject == s], minlength=3) for s in np.unique(data.subject)]
    assert len({tuple(c) for c in per_subject}) > 1, "subjects share identical class counts"


@pytest.mark.parametrize("seed", range(8))
def test_every_class_in_every_source_even_when_tiny(seed):
    ds = make_toy_flow(subjects_per_dataset=(1, 1, 2), clips_per_subject=3, seed=seed)
    for source in SOURCES:
        assert set(ds.label[ds.dataset == source]) == {0, 1, 2}, source
    for subject in np.unique(ds.subject):
        assert len(np.unique(ds.label[ds.subject == subject])) >= 2, subject


def test_default_every_class_in_every_source(data):
    for source in SOURCES:
        assert set(data.label[data.dataset == source]) == {0, 1, 2}, source


def test_class_motion_is_where_the_action_unit_is(data):
    u, v = 0, 1
    # Surprise (AU1+2): brows move up (negative v, image y points down).
    assert region_mean(data, BROWS, v, "surprise") < -0.15
    assert region_mean(data, BROWS, v, "surprise") < region_mean(data, BROWS, v, "positive") - 0.1
    # Positive (AU12): mouth corners move outward.
    assert region_mean(data, LEFT_MOUTH, u, "positive") < -0.1
    assert region_mean(data, RIGHT_MOUTH, u, "positive") > 0.1
    assert region_mean(data, LEFT_MOUTH, v, "positive") < -0.05
    # Negative (AU4/AU9): downward between the brows.
    assert region_mean(data, BETWEEN_BROWS, v, "negative") > 0.1


def test_motion_scale_zero_removes_only_the_class_motion(data, still):
    motion = data.x[..., :2] - still.x[..., :2]
    assert np.abs(still.x).max() > 0.5  # drift and noise remain
    assert np.abs(motion[:, :6, :6]).max() < 0.01  # motion is local: ~none in the corner
    assert np.abs(motion[:, 10:50, 10:50]).max() > 0.5


def test_sources_differ_in_noise_and_motion_scale(data, still):
    corner_std = [still.x[still.dataset == s][:, :10, :10, :2].std(axis=(1, 2)).mean() for s in SOURCES]
    assert corner_std[0] > corner_std[1] > corner_std[2], corner_std
    peak = np.abs(data.x[..., :2] - still.x[..., :2]).max(axis=(1, 2, 3))
    peaks = [peak[data.dataset == s].mean() for s in SOURCES]
    assert peaks[0] < peaks[1] < peaks[2], peaks


def test_learnable_but_not_trivial(data):
    score = loso_balanced_accuracy(data)
    assert 0.6 < score < 0.98, score


def test_not_learnable_without_motion(still):
    assert loso_balanced_accuracy(still) < 0.5


def test_class_names_subset_changes_labels_and_motion():
    ds = make_toy_flow(class_names=("positive", "surprise"), seed=2)
    assert ds.num_classes == 2 and set(ds.label) == {0, 1}
    assert region_mean(ds, BROWS, 1, "surprise") < -0.15
    assert region_mean(ds, RIGHT_MOUTH, 0, "positive") > 0.1


def test_size_is_respected():
    ds = make_toy_flow(subjects_per_dataset=(1, 1, 1), clips_per_subject=4, size=32)
    assert ds.input_shape == (32, 32, 3) and ds.num_samples == 12


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(class_names=("negative", "happy")), "happy"),
        (dict(class_names=("surprise",)), "surprise"),
        (dict(subjects_per_dataset=(3, 3)), r"\(3, 3\)"),
        (dict(subjects_per_dataset=(3, 0, 3)), r"\(3, 0, 3\)"),
        (dict(clips_per_subject=1), "clips_per_subject=1"),
        (dict(size=4), "size"),
    ],
)
def test_bad_arguments_raise_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_toy_flow(**kwargs)
