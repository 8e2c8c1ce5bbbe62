"""Temporal normalisation and random frame keeping (Xia et al., TMM 2019, sec. III-C, III-E)."""

import jax
import numpy as np
import pytest

from mer_jax.data.preprocess.temporal import KEEP_FRACTIONS, interpolate, keep_random_frames, kept_frame_indices


def indexed_clip(num_frames, height=3, width=2):
    """Frame t is filled with the value t, so output values name the source time."""
    return np.broadcast_to(np.arange(num_frames, dtype=np.float32)[:, None, None], (num_frames, height, width)).copy()


def test_interpolation_is_linear_in_time_and_keeps_endpoints():
    clip = np.stack([np.zeros((2, 2)), np.full((2, 2), 10.0), np.full((2, 2), 30.0)]).astype(np.float32)
    out = np.asarray(interpolate(clip, 5))
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 5.0, 10.0, 20.0, 30.0], rtol=1e-6)
    assert out.shape == (5, 2, 2)


@pytest.mark.parametrize("source,target", [(11, 30), (47, 30), (30, 30), (2, 7)])
def test_output_frame_j_is_input_time_j_times_t_minus_1_over_n_minus_1(source, target):
    out = np.asarray(interpolate(indexed_clip(source), target))
    np.testing.assert_allclose(out[:, 0, 0], np.linspace(0, source - 1, target), rtol=1e-5, atol=1e-5)
    assert out[0, 0, 0] == 0 and out[-1, 0, 0] == source - 1


def test_downsampling_by_an_integer_step_picks_frames_exactly():
    clip = np.random.default_rng(0).normal(size=(11, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(interpolate(clip, 6)), clip[::2], atol=1e-6)


def test_single_frame_clips_and_single_frame_outputs():
    frame = np.random.default_rng(1).normal(size=(1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(interpolate(frame, 3)), np.repeat(frame, 3, axis=0))
    clip = indexed_clip(5)
    np.testing.assert_allclose(np.asarray(interpolate(clip, 1)), clip[:1])


def test_integer_clips_become_float():
    out = interpolate(np.arange(8, dtype=np.uint8).reshape(2, 2, 2), 3)
    assert np.issubdtype(out.dtype, np.floating)
    np.testing.assert_allclose(np.asarray(out)[1], [[2, 3], [4, 5]])


def test_interpolate_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_frames"):
        interpolate(indexed_clip(4), 0)
    with pytest.raises(ValueError, match="frame"):
        interpolate(np.zeros((0, 2, 2), np.float32), 3)


@pytest.mark.parametrize("fraction", KEEP_FRACTIONS)
def test_kept_frames_are_an_ordered_subset_with_both_ends(fraction):
    clip = indexed_clip(30)
    for rng in (np.random.default_rng(5), jax.random.key(5)):
        kept = np.asarray(keep_random_frames(clip, fraction, rng))[:, 0, 0]
        assert len(kept) == round(fraction * 30)
        assert kept[0] == 0 and kept[-1] == 29
        assert np.all(np.diff(kept) > 0)


def test_fractions_are_the_seeds_five_levels():
    assert KEEP_FRACTIONS == (1.0, 0.9, 0.8, 0.7, 0.6)
    np.testing.assert_array_equal(np.asarray(keep_random_frames(indexed_clip(17), 1.0, np.random.default_rng(0))), indexed_clip(17))


def test_same_rng_state_gives_same_frames_and_other_seeds_differ():
    a = kept_frame_indices(40, 0.6, np.random.default_rng(7))
    np.testing.assert_array_equal(a, kept_frame_indices(40, 0.6, np.random.default_rng(7)))
    assert not np.array_equal(a, kept_frame_indices(40, 0.6, np.random.default_rng(8)))
    k = kept_frame_indices(40, 0.6, jax.random.key(7))
    np.testing.assert_array_equal(np.asarray(k), np.asarray(kept_frame_indices(40, 0.6, jax.random.key(7))))
    assert not np.array_equal(np.asarray(k), np.asarray(kept_frame_indices(40, 0.6, jax.random.key(8))))


def test_every_inner_frame_can_be_dropped_or_kept():
    rng = np.random.default_rng(9)
    counts = np.zeros(20)
    for _ in range(200):
        counts[kept_frame_indices(20, 0.6, rng)] += 1
    assert counts[0] == counts[-1] == 200
    inner = counts[1:-1] / 200  # 10 of 18 inner frames kept: each with probability 10/18
    assert np.all(np.abs(inner - 10 / 18) < 0.15)


def test_short_clips_keep_at_least_their_ends():
    assert kept_frame_indices(2, 0.6, np.random.default_rng(0)).tolist() == [0, 1]
    assert kept_frame_indices(1, 0.6, np.random.default_rng(0)).tolist() == [0]
    assert kept_frame_indices(4, 0.6, np.random.default_rng(0)).tolist() == [0, 3]  # round(2.4) = 2


@pytest.mark.parametrize("fraction", [0.0, 1.5, -0.1])
def test_bad_fractions_raise(fraction):
    with pytest.raises(ValueError, match="fraction"):
        keep_random_frames(indexed_clip(10), fraction, np.random.default_rng(0))
