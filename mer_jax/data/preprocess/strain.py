"""Optical strain and the 3-channel flow map fed to the shallow RCN.

Xia et al., TIP 2020 sec. IV-A completes the onset->apex optical
flow V = [V_x, V_y] with its first-order variation V_z (optical strain) and
feeds the stack V_hat = [V_x V_y V_z] (60x60x3 by default) to the network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = np.ndarray | jax.Array


def optical_strain(flow: ArrayLike) -> jax.Array:
    """Optical strain magnitude of a flow field.

    Implements the formula fixed in docs/design.md (Preprocessing):

        strain = sqrt(u_x^2 + v_y^2 + 0.5 * (u_y + v_x)^2)

    i.e. the magnitude of the infinitesimal strain tensor
    [[u_x, (u_y + v_x)/2], [(u_y + v_x)/2, v_y]] (Frobenius norm, off-diagonal
    shear term (u_y + v_x)/2 counted twice). Xia et al., TIP 2020, eq. 2 *as printed* writes
    the shear part as 0.5 * (u_y^2 + v_x^2) instead, and public MER codes
    disagree on which one they use; this function implements the tensor form
    above only. A pure rotation (u_y = -v_x) therefore has zero shear here.

    Derivatives are central differences with one-sided first-order differences
    at the borders (``np.gradient`` semantics), in pixel units, along x (the
    width axis, -2) and y (the height axis, -3).

    Args:
      flow: (..., H, W, 2) float array, channel 0 the x displacement u,
        channel 1 the y displacement v (image y points down). numpy or jax.

    Returns:
      (..., H, W) strain magnitude as a jax array.
    """
    flow = jnp.asarray(flow)
    if flow.ndim < 3 or flow.shape[-1] != 2:
        raise ValueError(
            f"flow must have shape (..., H, W, 2) (u then v); got shape {flow.shape}"
        )
    if flow.shape[-3] < 2 or flow.shape[-2] < 2:
        raise ValueError(
            f"flow needs H >= 2 and W >= 2 to take derivatives; got H={flow.shape[-3]}, W={flow.shape[-2]}"
        )
    if not jnp.issubdtype(flow.dtype, jnp.floating):
        flow = flow.astype(jnp.float32)
    u, v = flow[..., 0], flow[..., 1]
    u_y, u_x = jnp.gradient(u, axis=(-2, -1))
    v_y, v_x = jnp.gradient(v, axis=(-2, -1))
    return jnp.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2)


def flow_map(flow: ArrayLike) -> jax.Array:
    """Stack u, v and optical strain into the Xia et al., TIP 2020 input map.

    Xia et al., TIP 2020, sec. IV-A: V_hat = [V_x V_y V_z], an RGB-like 3-channel tensor.

    Args:
      flow: (..., H, W, 2) float array (u, v), as for :func:`optical_strain`.

    Returns:
      (..., H, W, 3) jax array with channels u, v, strain.
    """
    flow = jnp.asarray(flow)
    strain = optical_strain(flow)
    return jnp.concatenate([flow.astype(strain.dtype), strain[..., None]], axis=-1)
