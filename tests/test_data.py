"""Dataset container and load() (mer_jax.data)."""

import dataclasses

import ml_collections
import numpy as np
import pytest

from mer_jax.core.dataset import Dataset
from mer_jax.data.builds import load
from mer_jax.data.toy_flow import make_toy_flow


def fields(n=6, **overrides):
    values = dict(
        x=np.zeros((n, 4, 5, 3), np.float32),
        label=(np.arange(n) % 3).astype(np.int32),
        subject=np.array([f"casme2/sub{i // 2:02d}" for i in range(n)]),
        dataset=np.array(["casme2"] * n),
        sample_id=np.array([f"casme2/sub{i // 2:02d}/clip{i:02d}" for i in range(n)]),
        class_names=("negative", "positive", "surprise"),
    )
    values.update(overrides)
    return values


def test_properties():
    ds = Dataset(**fields(n=6))
    assert ds.num_classes == 3
    assert ds.num_samples == 6
    assert ds.input_shape == (4, 5, 3)


def test_is_frozen():
    ds = Dataset(**fields())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.label = ds.label


@pytest.mark.parametrize("field", ["label", "subject", "dataset", "sample_id"])
def test_length_mismatch_names_field_and_sizes(field):
    values = fields(n=6)
    values[field] = values[field][:4]
    with pytest.raises(ValueError, match=rf"Dataset\.{field} has 4 entries but x has 6"):
        Dataset(**values)


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(x=np.zeros((6, 4, 5, 3))), r"x must be float32 or uint8; got float64"),
        (dict(x=np.zeros(6, np.float32)), r"x must be a numpy array \(N, \.\.\.\)"),
        (dict(label=np.arange(6)), r"label must be int32; got int64"),
        (dict(label=np.zeros(6, np.float32)), r"label must have dtype kind 'i'"),
        (dict(label=np.array([0, 1, 2, 3, 0, 1], np.int32)), r"\[0, 3\).*max 3"),
        (dict(label=np.array([0, -1, 2, 0, 0, 1], np.int32)), r"min -1"),
        (dict(subject=np.arange(6)), r"subject must have dtype kind 'U'"),
        (dict(sample_id=np.array(["a", "b", "a", "c", "d", "e"])), r"unique; repeated: \['a'\]"),
        (dict(class_names=["negative", "positive", "surprise"]), r"class_names must be a tuple"),
    ],
)
def test_validation_errors_name_the_problem(overrides, match):
    with pytest.raises(ValueError, match=match):
        Dataset(**fields(n=6, **overrides))


def test_shuffled_labels_is_a_seeded_permutation():
    ds = Dataset(**fields(n=60))
    original = ds.label.copy()
    a, b, c = ds.shuffled_labels(0), ds.shuffled_labels(0), ds.shuffled_labels(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, original)
    np.testing.assert_array_equal(np.sort(a), np.sort(original))
    assert a.dtype == np.int32
    np.testing.assert_array_equal(ds.label, original)  # the dataset is untouched


def test_load_toy_flow_passes_options_and_seed():
    config = ml_collections.ConfigDict(
        dict(name="toy_flow", seed=3, toy_flow=dict(subjects_per_dataset=(2, 1, 1), clips_per_subject=4))
    )
    ds = load(config)
    expected = make_toy_flow(subjects_per_dataset=(2, 1, 1), clips_per_subject=4, seed=3)
    assert ds.num_samples == 16
    np.testing.assert_array_equal(ds.x, expected.x)
    np.testing.assert_array_equal(ds.sample_id, expected.sample_id)


def test_load_toy_flow_defaults():
    ds = load(ml_collections.ConfigDict(dict(name="toy_flow")))
    np.testing.assert_array_equal(ds.label, make_toy_flow(seed=0).label)
    assert ds.num_samples == 216


def test_load_unknown_dataset():
    with pytest.raises(ValueError, match=r"unknown dataset 'casme2'; available: toy_flow, or a built data set"):
        load(ml_collections.ConfigDict(dict(name="casme2")))
    with pytest.raises(FileNotFoundError, match=r"no built data set 'casme2/flow60' under /nonexistent"):
        load(ml_collections.ConfigDict(dict(name="casme2/flow60", data_dir="/nonexistent")))


def test_load_unknown_toy_flow_option():
    config = ml_collections.ConfigDict(dict(name="toy_flow", toy_flow=dict(noise=2.0)))
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['noise'\]"):
        load(config)
