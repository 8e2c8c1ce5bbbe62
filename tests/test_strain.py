"""Optical strain (docs/design.md Preprocessing; Xia et al., TIP 2020, sec. IV-A)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.data.preprocess import flow_map, optical_strain


def linear_flow(a, b, c, d, height=5, width=7):
    """u = a x + b y, v = c x + d y on an H != W grid (catches swapped axes)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([a * x + b * y, c * x + d * y], axis=-1)


def numpy_strain(flow):
    u_y, u_x = np.gradient(flow[..., 0], axis=(-2, -1))
    v_y, v_x = np.gradient(flow[..., 1], axis=(-2, -1))
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2)


@pytest.mark.parametrize("a,b,c,d", [(0.3, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, -0.4), (0.2, 0.5, 0.1, -0.3)])
def test_linear_flow_has_analytic_strain_everywhere(a, b, c, d):
    strain = np.asarray(optical_strain(linear_flow(a, b, c, d)))
    expected = np.sqrt(a**2 + d**2 + 0.5 * (b + c) ** 2)
    np.testing.assert_allclose(strain, np.full((5, 7), expected), rtol=1e-5, atol=1e-6)


def test_x_derivative_is_along_width_axis():
    # u = 0.5 x only: u_x = 0.5 but u_y = 0, so shear stays out.
    strain = np.asarray(optical_strain(linear_flow(0.5, 0.0, 0.0, 0.0)))
    np.testing.assert_allclose(strain, 0.5, rtol=1e-6)
    # v = 0.5 x: v_x = 0.5 enters only through the shear term.
    strain = np.asarray(optical_strain(linear_flow(0.0, 0.0, 0.5, 0.0)))
    np.testing.assert_allclose(strain, np.sqrt(0.5) * 0.5, rtol=1e-6)


def test_pure_rotation_has_no_strain():
    np.testing.assert_allclose(np.asarray(optical_strain(linear_flow(0.0, -0.3, 0.3, 0.0))), 0.0, atol=1e-6)


def test_shear_uses_tensor_form_not_printed_eq2():
    # u_y = v_x = s: tensor form gives sqrt(0.5 (2s)^2) = sqrt(2) s;
    # Xia et al., TIP 2020, eq. 2 as printed, 0.5 (u_y^2 + v_x^2), would give s.
    s = 0.2
    np.testing.assert_allclose(np.asarray(optical_strain(linear_flow(0.0, s, s, 0.0))), np.sqrt(2) * s, rtol=1e-5)


def test_matches_numpy_gradient_reference_on_random_data():
    flow = np.random.default_rng(0).normal(size=(3, 9, 11, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(optical_strain(flow)), numpy_strain(flow), rtol=1e-5, atol=1e-6)


def test_accepts_jax_arrays_and_jit():
    flow = np.random.default_rng(1).normal(size=(6, 8, 2)).astype(np.float32)
    out = jax.jit(optical_strain)(jnp.asarray(flow))
    np.testing.assert_allclose(np.asarray(out), numpy_strain(flow), rtol=1e-5, atol=1e-6)


def test_batched_shapes_and_flow_map_channels():
    flow = np.random.default_rng(2).normal(size=(2, 3, 10, 12, 2)).astype(np.float32)
    assert optical_strain(flow).shape == (2, 3, 10, 12)
    stacked = np.asarray(flow_map(flow))
    assert stacked.shape == (2, 3, 10, 12, 3)
    np.testing.assert_array_equal(stacked[..., :2], flow)
    np.testing.assert_allclose(stacked[..., 2], numpy_strain(flow), rtol=1e-5, atol=1e-6)


def test_batch_elements_are_independent():
    flow = np.random.default_rng(3).normal(size=(4, 8, 8, 2)).astype(np.float32)
    batched = np.asarray(optical_strain(flow))
    for i in range(4):
        np.testing.assert_allclose(batched[i], np.asarray(optical_strain(flow[i])), rtol=1e-6)


@pytest.mark.parametrize("shape", [(8, 8, 3), (8, 8), (1, 8, 2), (8, 1, 2)])
def test_bad_shapes_raise_with_the_shape(shape):
    with pytest.raises(ValueError, match=r"flow"):
        optical_strain(np.zeros(shape, np.float32))
