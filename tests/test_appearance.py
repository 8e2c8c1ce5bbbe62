"""STRCN-A heat map, mask and matrix (docs/design.md Preprocessing; Xia et al., TMM 2019, sec. III-C-1, IV-A)."""

import numpy as np
import pytest

from mer_jax.data.preprocess.appearance import appearance_matrix, difference_heat_map, top_p_mask
from mer_jax.data.preprocess.temporal import interpolate

H, W = 16, 12  # small, H != W


def region_clip(rng, rows, cols, num_frames=8, channels=3):
    """Random static face whose pixels in rows x cols change over time, nothing else does."""
    face = rng.uniform(size=(1, H, W, channels))
    clip = np.repeat(face, num_frames, axis=0)
    clip[1:, rows, cols] += rng.normal(scale=0.3, size=clip[1:, rows, cols].shape)
    return clip.astype(np.float32)


def test_heat_map_is_eq4_differences_from_the_first_frame():
    # One pixel goes 0 -> 1 -> 3: eq. 4 sums |1 - 0| + |3 - 0| = 4 (consecutive differences would give 3).
    clip = np.zeros((3, 2, 2), np.float32)
    clip[:, 1, 0] = [0.0, 1.0, 3.0]
    clip[:, 0, 1] = [2.0, 1.0, 2.0]
    np.testing.assert_allclose(difference_heat_map([clip]), [[0.0, 1.0], [4.0, 0.0]])


def test_heat_map_averages_channels_and_sums_clips_of_any_length():
    a = np.zeros((4, 2, 2, 3), np.float32)
    a[1:, 0, 0, 2] = 3.0  # one channel of one pixel moves by 3 in frames 1..3
    b = np.zeros((2, 2, 2, 3), np.float32)
    b[1, 1, 1] = -6.0
    np.testing.assert_allclose(difference_heat_map([a, b]), [[3.0, 0.0], [0.0, 6.0]])
    np.testing.assert_allclose(difference_heat_map(np.stack([a[:2], b])), [[1.0, 0.0], [0.0, 6.0]])


def test_mask_selects_the_region_where_clips_move():
    rng = np.random.default_rng(0)
    rows, cols = slice(2, 9), slice(1, 11)  # 70 of 192 pixels (36%) move
    heat = difference_heat_map([region_clip(rng, rows, cols, n) for n in (5, 8, 13)])
    region = np.zeros((H, W), bool)
    region[rows, cols] = True
    assert np.all(heat[~region] == 0) and np.all(heat[region] > 0)
    mask = top_p_mask(heat)
    assert mask.sum() == int(0.3 * H * W) and np.all(region[mask])


def test_mask_keeps_thirty_percent_as_the_seeds_70th_percentile_threshold():
    heat = np.random.default_rng(1).uniform(size=(64, 48))
    mask = top_p_mask(heat)
    assert mask.sum() == 921  # floor(0.3 * 64 * 48): the d2 of configs/strcn_a.py
    np.testing.assert_array_equal(mask, heat > np.quantile(heat, 0.7, method="higher"))
    assert heat[mask].min() > heat[~mask].max()
    assert top_p_mask(heat, p=0.1).sum() == int(0.1 * 64 * 48)


def test_mask_size_does_not_depend_on_ties():
    heat = np.zeros((4, 5))
    heat[3, 4] = 1.0
    mask = top_p_mask(heat, p=0.3)  # 6 of 20: the hot pixel, then the first 5 zeros in row-major order
    assert mask.sum() == 6 and mask[3, 4]
    np.testing.assert_array_equal(np.flatnonzero(mask), [0, 1, 2, 3, 4, 19])


def test_heat_map_adds_over_clip_sets_and_each_sets_mask_stays_in_its_moving_region():
    rng = np.random.default_rng(2)
    fold_a = [region_clip(rng, slice(0, 5), slice(0, 12)) for _ in range(3)]  # brows move
    fold_b = [region_clip(rng, slice(11, 16), slice(0, 12)) for _ in range(3)]  # mouth moves
    heat_a, heat_b = difference_heat_map(fold_a), difference_heat_map(fold_b)
    np.testing.assert_allclose(difference_heat_map(fold_a + fold_b), heat_a + heat_b, rtol=1e-12)
    mask_a, mask_b = top_p_mask(heat_a), top_p_mask(heat_b)  # 57 pixels each, inside 60-pixel regions
    assert not mask_a[5:].any() and not mask_b[:11].any()
    assert mask_a.sum() == mask_b.sum() == 57


def test_matrix_columns_are_masked_pixels_of_each_normalised_frame():
    rng = np.random.default_rng(3)
    clip = rng.uniform(size=(30, H, W, 3)).astype(np.float32)
    mask = top_p_mask(rng.uniform(size=(H, W)))
    matrix = np.asarray(appearance_matrix(clip, mask))
    assert matrix.shape == (mask.sum(), 30, 3)
    for t in (0, 13, 29):
        np.testing.assert_allclose(matrix[:, t], clip[t][mask], atol=1e-6)  # row-major pixel order


def test_matrix_normalises_length_and_handles_grey_clips():
    rng = np.random.default_rng(4)
    clip = rng.uniform(size=(47, H, W)).astype(np.float32)
    mask = np.zeros((H, W), bool)
    mask[3, 2] = mask[0, 7] = True  # row-major: (0, 7) comes first
    matrix = np.asarray(appearance_matrix(clip, mask, num_frames=30))
    assert matrix.shape == (2, 30, 1)
    frames = np.asarray(interpolate(clip, 30))
    np.testing.assert_allclose(matrix[:, :, 0], np.stack([frames[:, 0, 7], frames[:, 3, 2]]), atol=1e-6)
    np.testing.assert_allclose(matrix[1, -1, 0], clip[-1, 3, 2], atol=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: difference_heat_map([]), "at least one"),
        (lambda: difference_heat_map([np.zeros((3, 4, 4)), np.zeros((3, 4, 5))]), "size"),
        (lambda: difference_heat_map([np.zeros((4, 4))]), "shape"),
        (lambda: top_p_mask(np.zeros((2, 3, 4))), "heat_map"),
        (lambda: top_p_mask(np.zeros((4, 4)), p=0.0), "p must"),
        (lambda: appearance_matrix(np.zeros((5, 4, 4)), np.ones((4, 3), bool)), "mask shape"),
        (lambda: appearance_matrix(np.zeros((5, 4, 4)), np.zeros((4, 4), bool)), "no pixel"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
