"""Shapes, parameter counts and the building blocks of the recurrent convolutional models."""

import re
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.speed import platform
from mer_jax.config import sibling_config
from mer_jax.methods.rcn import rcn
from mer_jax.models import count_params, create_model, fast_ops, layers

RCN_NAMES = list(rcn.NAMES)  # the shallow RCN family of mer_jax/methods/rcn/rcn.py


def make(name, variant="paper", features=16, steps=3, shape=(60, 60, 3), classes=3, **extra):
    config = dict(name=name, variant=variant, features=features, recurrent_steps=steps, **extra)
    return create_model(config, num_classes=classes, input_shape=shape, rngs=nnx.Rngs(0))


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout  # weights + bias (PyTorch's Conv2d default)


def bn_params(c):
    return 2 * c  # scale and bias; running statistics are not parameters


def xia2020_code_params(name, m, k, c=3, cin=3):
    """Parameters of the released code's models, layer by layer (docs/models.md, "The released code")."""
    if name == "rcn_p":
        # two stride-1 3x3 streams (dilation 1, 3) with M/2 channels each, each conv -> ReLU -> BN
        stem = sum(conv_params(3, cin, s) + bn_params(s) for s in (m // 2, m // 2))
    elif name in ("rcn_w", "rcn_c", "rcn_f"):
        # three stride-3 stems 3x3 with M/2, M/4, M/4 channels, each conv -> ReLU -> BN
        stem = sum(conv_params(3, cin, s) + bn_params(s) for s in (m // 2, m // 4, m // 4))
    else:
        stem = conv_params(5, cin, m) + bn_params(m)  # 5x5 conv + BN
    feedforward = conv_params(1, m, m) + bn_params(m)  # 1x1 conv + BN
    recurrent = conv_params(3, m, m) + bn_params(m)  # ONE shared 3x3 conv + BN, called repeatedly
    classifier = k * k * m * c + c
    return stem + feedforward + recurrent + classifier


@pytest.mark.parametrize("name", RCN_NAMES)
@pytest.mark.parametrize("m", [16, 32, 64])
@pytest.mark.parametrize("k", [5, 7])
def test_xia2020_code_parameter_counts(name, m, k):
    model = make(name, variant="xia2020_code", features=m, pool_size=k, steps=2)
    assert count_params(model) == xia2020_code_params(name, m, k)


def test_xia2020_code_closed_forms():
    # 10 M^2 + 84 M + K^2 M C + C, and 10 M^2 + 36 M + K^2 M C + C for the wide stems.
    assert xia2020_code_params("rcn", 16, 5) == 5107
    assert {xia2020_code_params(name, 16, 5) for name in ("rcn_w", "rcn_c", "rcn_f", "rcn_p")} == {4339}


def test_xia2020_code_config_trains_as_the_released_script():
    """configs/rcn_xia2020_code.py: ModelTrain_Final.py's `optim.SGD(params, lr=lr, momentum=0.9)`, no weight decay."""
    config = sibling_config(str(Path(__file__).resolve().parents[1] / "configs" / "x.py"), "rcn_xia2020_code")
    assert (config.model.name, config.model.variant) == ("rcn_a", "xia2020_code")
    train = config.train
    assert (train.learning_rate, train.momentum, train.weight_decay, train.schedule) == (5e-4, 0.9, 0.0, "constant")
    assert (train.epochs, train.batch_size, train.stop_loss) == (100, 64, 0.0)  # every epoch, no stopping criterion


def test_paper_parameter_counts_and_parameter_free_modules():
    m, k = 16, 5
    expected = (
        conv_params(3, 3, m) + bn_params(m)  # Conv k3 s3 p1 + BN
        + conv_params(1, m, m) + bn_params(m)  # feed-forward 1x1 + BN_0
        + conv_params(3, m, m) + 3 * bn_params(m)  # one recurrent 3x3, BN_1..BN_3
        + k * k * m * 3 + 3
    )
    counts = {name: count_params(make(name)) for name in RCN_NAMES}
    assert counts == {name: expected for name in counts}  # W, S, A and their combinations add nothing


@pytest.mark.parametrize("variant", ["paper", "xia2020_code"])
@pytest.mark.parametrize("name", RCN_NAMES)
def test_rcn_family_forward_shapes(name, variant):
    model = make(name, variant=variant, steps=2 if variant == "xia2020_code" else 3)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 60, 60, 3))
    train_logits = model(x, train=True, rngs=nnx.Rngs(dropout=1))
    eval_logits = model(x, train=False)
    assert train_logits.shape == eval_logits.shape == (4, 3)
    assert np.isfinite(np.asarray(eval_logits)).all()


@pytest.mark.parametrize(
    "name, shape, num_rcls", [("strcn_a", (921, 30, 3), 4), ("strcn_g", (245, 300, 2), 4), ("strcn_g", (60, 60, 2), 0)]
)
def test_strcn_shapes(name, shape, num_rcls):
    model = make(name, features=8, shape=shape, classes=5, num_rcls=num_rcls)
    assert model(jnp.zeros((2, *shape)), train=False).shape == (2, 5)
    m = 8
    rcl = conv_params(1, m, m) + bn_params(m) + conv_params(3, m, m) + 3 * bn_params(m)
    expected = conv_params(5, shape[-1], m) + bn_params(m) + num_rcls * rcl + m * 5 + 5
    assert count_params(model) == expected


def test_strcn_reads_uint8_pixels_as_their_value_over_255():
    """The strcn_a build's frames stay uint8 in memory (a quarter of float32's; x50 augmentation)."""
    model = make("strcn_a", features=8, shape=(40, 6, 3), num_rcls=1)
    pixels = jax.random.randint(jax.random.PRNGKey(1), (2, 40, 6, 3), 0, 256).astype(jnp.uint8)
    scaled = model(pixels.astype(jnp.float32) / 255.0, train=False)
    np.testing.assert_allclose(np.asarray(model(pixels, train=False)), np.asarray(scaled), rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(model(pixels.astype(jnp.float32), train=False) - scaled)).max() > 1e-3


def test_strcn_rejects_bad_settings():
    with pytest.raises(ValueError, match="0 to 4 recurrent layers"):
        make("strcn_g", shape=(245, 300, 2), num_rcls=5)
    with pytest.raises(ValueError, match="only the 'paper' variant"):
        make("strcn_a", variant="xia2020_code", shape=(921, 30, 3))
    with pytest.raises(ValueError, match="unknown model.name 'resnet'"):
        make("resnet")


def test_rcn_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown RCN variant 'code'"):
        make("rcn", variant="code")
    # The released code's stream widths: M/2, M/4, M/4 (RCN_W, RCN_C, RCN_F) and M/2, M/2 (RCN_P).
    with pytest.raises(ValueError, match="3-stream wide expansion needs features divisible by 4, got 18"):
        make("rcn_f", variant="xia2020_code", features=18)
    with pytest.raises(ValueError, match="2-stream wide expansion needs features divisible by 2, got 15"):
        make("rcn_p", variant="xia2020_code", features=15)
    assert count_params(make("rcn_p", variant="xia2020_code", features=18)) == xia2020_code_params("rcn_p", 18, 5)


def test_recurrent_layer_shares_one_conv_across_steps():
    rngs = nnx.Rngs(0)
    counts = []
    for steps in (1, 3, 6):
        layer = layers.RecurrentConvLayer(8, 8, steps=steps, connection="feedforward", share_norm=True, rngs=rngs)
        counts.append(count_params(layer))
    assert counts[0] == counts[1] == counts[2]
    # And the unrolled steps really use it: perturbing the recurrent kernel changes the output.
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, 8))
    before = layer(x, train=False)
    layer.recurrent.kernel[...] = layer.recurrent.kernel[...] + 0.1
    assert not np.allclose(before, layer(x, train=False))


def test_recurrent_connections_match_their_equations():
    rngs = nnx.Rngs(0)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 5, 4))
    for connection in ("feedforward", "input", "shortcut"):
        layer = layers.RecurrentConvLayer(4, 4, steps=2, connection=connection, share_norm=True, rngs=rngs)
        ff, rec = layer.feedforward, layer.recurrent
        ffn, rn = layer.feedforward_norm, layer.recurrent_norms[0]

        def g(z, norm):
            return jax.nn.relu(norm(z, use_running_average=True))

        u = ff(x)
        h0 = g(u, ffn)
        if connection == "feedforward":  # Xia et al., TMM 2019, eq. 6-7
            h1 = g(u + rec(h0), rn)
            h2 = g(u + rec(h1), rn)
        elif connection == "input":  # Xia et al., TIP 2020, eq. 3
            h1 = g(rec(x + h0), rn)
            h2 = g(rec(x + h1), rn)
        else:  # Xia et al., TIP 2020, eq. 6
            h1 = g(rec(x + h0), rn)
            h2 = g(rec(x + h0 + h1), rn)
        np.testing.assert_allclose(layer(x, train=False), h2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["paper", "xia2020_code"])
def test_rcn_and_rcn_s_differ_only_by_the_shortcut(variant):
    """TIP 2020 eq. 3 (RCN) and eq. 6 (RCN-S): step n's conv input is x + h_{n-1}, or x + h_0 + ... + h_{n-1}.

    With one recurrent step the two sums are the same, so RCN and RCN-S (the same
    initialisation) give the same logits; from the second step on they differ.
    """
    x = jax.random.normal(jax.random.PRNGKey(16), (2, 60, 60, 3))
    for steps, same in ((1, True), (2, False)):
        rcn, rcn_s = (make(name, variant=variant, steps=steps) for name in ("rcn", "rcn_s"))
        assert np.allclose(rcn(x, train=False), rcn_s(x, train=False), rtol=1e-5, atol=1e-6) == same


def test_max_pool_matches_reduce_window():
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 13, 10, 3))
    for window, padding in (((2, 2), 0), ((4, 1), 0), ((4, 4), 0), ((3, 3), 1), ((2, 2), 1)):
        pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
        expected = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *window, 1), (1, *window, 1), pad)
        np.testing.assert_array_equal(layers.max_pool(x, window, padding=padding), expected)


def test_adaptive_avg_pool_matches_pytorch_windows():
    x = np.random.default_rng(0).normal(size=(2, 14, 9, 3)).astype(np.float32)
    out = np.asarray(layers.adaptive_avg_pool(jnp.asarray(x), 5))
    for i in range(5):
        for j in range(5):
            r0, r1 = (i * 14) // 5, -(-(i + 1) * 14 // 5)
            c0, c1 = (j * 9) // 5, -(-(j + 1) * 9 // 5)
            np.testing.assert_allclose(out[:, i, j], x[:, r0:r1, c0:c1].mean(axis=(1, 2)), rtol=1e-5)


def test_attention_map_is_a_soft_weighting_from_the_classifier():
    features = jax.random.normal(jax.random.PRNGKey(4), (3, 10, 10, 4))
    kernel = jax.random.normal(jax.random.PRNGKey(5), (5 * 5 * 4, 3))
    for per_class in (False, True):
        attention = layers.attention_map(features, kernel, per_class_minmax=per_class)
        assert attention.shape == (3, 5, 5)
        assert float(attention.min()) >= 0.0 and float(attention.max()) <= 1.0
    # eq. 7 by hand for the summed (paper) form: sum over classes and channels, then min-max.
    pooled = layers.adaptive_avg_pool(features, 5)
    raw = jnp.einsum("bpqn,pqnc->bpq", pooled, kernel.reshape(5, 5, 4, 3))
    low, high = raw.min(axis=(1, 2), keepdims=True), raw.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(
        layers.attention_map(features, kernel, per_class_minmax=False), (raw - low) / (high - low), atol=1e-5
    )


def test_apply_attention_resizes_bilinearly_or_as_pytorchs_nearest():
    features = jax.random.normal(jax.random.PRNGKey(17), (2, 10, 10, 4))
    attention = jax.random.uniform(jax.random.PRNGKey(18), (2, 5, 5))
    nearest = jnp.repeat(jnp.repeat(attention, 2, axis=1), 2, axis=2)  # a whole factor: each cell repeated
    np.testing.assert_allclose(layers.apply_attention(features, attention, resize="nearest"), features * nearest[..., None])
    bilinear = jax.image.resize(attention, (2, 10, 10), method="bilinear")
    np.testing.assert_allclose(layers.apply_attention(features, attention), features * bilinear[..., None], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown attention resize 'bicubic'"):
        layers.apply_attention(features, attention, resize="bicubic")


def test_sliced_weight_gradient_equals_xla_gradient():
    x = jax.random.normal(jax.random.PRNGKey(6), (2 * fast_ops.WEIGHT_GRAD_CHUNK, 12, 12, 3))
    w = jax.random.normal(jax.random.PRNGKey(7), (5, 5, 3, 4))
    args = ((1, 1), ((1, 1), (1, 1)))
    kwargs = {"dimension_numbers": ("NHWC", "HWIO", "NHWC")}

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w, *args, **kwargs)))

    expected = jax.grad(loss(jax.lax.conv_general_dilated), argnums=(0, 1))(x, w)
    got = jax.grad(loss(fast_ops.conv_sliced_weight_grad), argnums=(0, 1))(x, w)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        fast_ops.conv_sliced_weight_grad(x, w, *args, **kwargs), jax.lax.conv_general_dilated(x, w, *args, **kwargs)
    )


@pytest.mark.parametrize(
    "x_shape, kernel, window, padding",
    [((3, 20, 20, 3), 5, (2, 2), 0), ((2, 21, 19, 4), 3, (2, 2), 1), ((2, 17, 16, 2), 4, (2, 2), 0), ((2, 24, 12, 3), 5, (4, 1), 2)],
)
def test_conv_pooling_windows_is_the_conv_cut_into_windows(x_shape, kernel, window, padding):
    x = jax.random.normal(jax.random.PRNGKey(8), x_shape)
    w = jax.random.normal(jax.random.PRNGKey(9), (kernel, kernel, x_shape[-1], 5))
    bias = jnp.arange(5.0)
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

    def expected(x, w, bias):
        z = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
        (wh, ww), (b, h, wd, o) = window, z.shape
        h2, w2 = h // wh, wd // ww
        z = z[:, : h2 * wh, : w2 * ww].reshape(b, h2, wh, w2, ww, o).transpose(0, 1, 3, 2, 4, 5)
        return z.reshape(b, h2, w2, wh * ww, o)

    def got(x, w, bias):
        return fast_ops.conv_pooling_windows(x, w, bias, window)

    np.testing.assert_allclose(got(x, w, bias), expected(x, w, bias), rtol=1e-5, atol=1e-4)
    grads = [jax.grad(lambda *a: jnp.sum(jnp.sin(f(*a))), argnums=(0, 1, 2))(x, w, bias) for f in (got, expected)]
    for g, e in zip(*grads):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


def _unfused_bn_relu_max(z, scale, bias):
    mean, var = fast_ops.batch_statistics(z)
    y = (z - mean) * (jax.lax.rsqrt(var + layers.BN_EPSILON) * scale) + bias
    return jax.nn.relu(y).max(-2), mean, var


def test_fused_batch_norm_relu_max_matches_the_composition():
    z = jax.random.normal(jax.random.PRNGKey(10), (4, 5, 3, 4, 6))
    scale = jnp.array([1.0, -0.7, 2.0, 0.05, 0.3, -1.5])  # a negative scale pools the window's minimum
    bias = jnp.linspace(-0.2, 0.3, 6)
    weights = [jax.random.normal(jax.random.PRNGKey(11), (4, 5, 3, 6)), jnp.arange(6.0), jnp.arange(6.0) ** 2]

    def loss(fn):
        return lambda *args: sum(jnp.sum(out * w) for out, w in zip(fn(*args), weights))

    for got, expected in zip(fast_ops.batch_norm_relu_max(z, scale, bias, layers.BN_EPSILON), _unfused_bn_relu_max(z, scale, bias)):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    got = jax.grad(loss(partial(fast_ops.batch_norm_relu_max, epsilon=layers.BN_EPSILON)), argnums=(0, 1, 2))(z, scale, bias)
    expected = jax.grad(loss(_unfused_bn_relu_max), argnums=(0, 1, 2))(z, scale, bias)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_fused_max_gives_a_tied_window_gradient_to_its_first_maximum():
    z = jnp.zeros((2, 3, 4, 1)).at[0, 0, 1:].set(1.0)  # window (0, 0): three equal maxima
    grad = jax.grad(lambda z: jnp.sum(fast_ops.batch_norm_relu_max(z, jnp.ones(1), jnp.ones(1), layers.BN_EPSILON)[0]))(z)
    split = jax.grad(lambda z: jnp.sum(_unfused_bn_relu_max(z, jnp.ones(1), jnp.ones(1))[0]))(z)  # autodiff splits ties
    np.testing.assert_allclose(grad[0, 0].sum(), split[0, 0].sum(), rtol=1e-5, atol=1e-6)  # the same window total
    np.testing.assert_allclose(grad[0, 0, 2], grad[0, 0, 3], rtol=1e-6)  # the later maxima get only the BatchNorm part
    # The first maximum gets the whole share that autodiff splits in three.
    share = float(grad[0, 0, 1, 0] - grad[0, 0, 2, 0])
    assert share != 0.0 and share == pytest.approx(3 * float(split[0, 0, 1, 0] - grad[0, 0, 2, 0]), rel=1e-4)


@pytest.mark.parametrize("shape", [(60, 60, 3), (61, 59, 3)])
def test_pooled_conv_block_matches_conv_bn_relu_then_max_pool(shape):
    block = layers.ConvBNReLU(3, 8, 5, rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(block, nnx.Param, nnx.BatchStat)
    x = jax.random.normal(jax.random.PRNGKey(12), (4, *shape))

    def run(fused, train):
        @platform.use(platform.tuning_for("cpu"))  # the fused path, whatever the default backend
        def loss(params):
            m = nnx.merge(graphdef, params, stats, copy=True)
            out = m.pooled(x, (2, 2), train=train) if fused else layers.max_pool(m(x, train=train), (2, 2))
            return jnp.sum(jnp.sin(out)), (out, nnx.state(m, nnx.BatchStat))

        (_, (out, new_stats)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return out, new_stats, grads

    for train in (True, False):
        for got, expected in zip(run(True, train), run(False, train)):  # output, BatchNorm statistics, gradients
            # (the conv bias, followed by BatchNorm, has a zero gradient up to float noise)
            scale = max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(expected))
            for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
                np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5 * scale)


def test_dropout_mask_is_bernoulli_deterministic_and_cheap_where_it_can_be():
    key = jax.random.PRNGKey(13)
    for keep in (0.5, 0.75, 0.7):
        mask = fast_ops.dropout_mask(key, keep, (64, 28, 28, 16))
        assert mask.shape == (64, 28, 28, 16) and mask.dtype == jnp.bool_
        assert abs(float(mask.mean()) - keep) < 0.005
        np.testing.assert_array_equal(mask, fast_ops.dropout_mask(key, keep, (64, 28, 28, 16)))
    a, b = (fast_ops.dropout_mask(k, 0.5, (1000,)) for k in jax.random.split(key))
    assert 0.4 < float(jnp.mean(a == b)) < 0.6  # different keys, independent masks
    dropout = fast_ops.Dropout(0.5)
    x = jnp.ones((8, 5, 5, 4))
    np.testing.assert_array_equal(dropout(x, deterministic=True), x)
    out = dropout(x, deterministic=False, rngs=nnx.Rngs(dropout=key))
    assert set(np.unique(np.asarray(out))) <= {0.0, 2.0}


def _custom_gradients(fn, *args) -> set[str]:
    """The names of the custom_vjp functions `fn(*args)` traces through."""
    return set(re.findall(r"custom_vjp_call\[\s*name=(\w+)", str(jax.make_jaxpr(fn)(*args))))


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_model_off_cpu_uses_the_plain_composition_with_the_cpu_values(backend):
    """The released code's RCN-A traced under each tuning: the CPU formulations only under the CPU one, same values."""
    model = make("rcn_a", variant="xia2020_code", features=8, steps=2, shape=(30, 30, 3))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    x = jax.random.normal(jax.random.PRNGKey(14), (2 * fast_ops.WEIGHT_GRAD_CHUNK, 30, 30, 3))

    runs = {}
    for name in ("cpu", backend):

        def loss(params):  # a new function for each tuning: JAX caches a function's trace
            m = nnx.merge(graphdef, params, stats, copy=True)
            return jnp.sum(jnp.sin(m(x, train=True, rngs=nnx.Rngs(dropout=15))))

        with platform.use(platform.tuning_for(name)):
            runs[name] = _custom_gradients(loss, params), jax.value_and_grad(loss)(params)
    assert runs["cpu"][0] == {"sliced_weight_grad", "_windowed_conv", "batch_norm_relu_max"}
    assert runs[backend][0] == set()
    (cpu_loss, cpu_grads), (loss_value, grads) = runs["cpu"][1], runs[backend][1]
    np.testing.assert_allclose(loss_value, cpu_loss, rtol=1e-5)
    scale = max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(cpu_grads))  # conv biases before BatchNorm: ~0
    for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(cpu_grads)):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5 * scale)


# Each RCN's modules, written here independently of mer_jax.methods.rcn.rcn's tables: Xia et al., TIP 2020,
# sec. IV-C-3, V-C-4 (paper) and the released MeNets.py classes (xia2020_code; docs/models.md).
WIDE = {"rcn_w", "rcn_c", "rcn_f", "rcn_p"}
SHORTCUT = {"rcn_s", "rcn_c", "rcn_f", "rcn_p"}
# name -> (where the attention map multiplies the features, what the map is computed from)
ATTENTION = {
    "paper": {
        "rcn_a": ("output", "stem"),
        "rcn_c": ("stem", "stem"),
        "rcn_f": ("initial_state", "stem"),
        "rcn_p": ("parallel", "stem"),
    },
    "xia2020_code": {
        "rcn_a": ("output", "stem"),  # RCN_A (version 3)
        "rcn_c": ("stem", "input"),  # RCN_C: SpatialAttentionBlock_F of the network input
        "rcn_f": ("initial_state", "stem"),  # RCN_F: EmbeddingBlock
        "rcn_p": ("output", "stem"),  # RCN_P: multiplied into the pooled DenseBlock output
    },
}
# The released RCN_P's stem: two stride-1 streams (dilation 1, 3), each with MaxPool 3 stride 3 pad 1.
POOLED_STREAMS = {("xia2020_code", "rcn_p")}


def g_eval(z, norm):
    return jax.nn.relu(norm(z, use_running_average=True))


def stem_by_hand(stem, name, variant, x):
    """The eval-mode stem: Table I's Conv (3x3 stride 3 or eq. 5's dilated streams) or the released code's."""
    code = variant == "xia2020_code"
    if name not in WIDE:
        h = g_eval(stem.block.conv(x), stem.block.norm)
        return layers.max_pool(h, (2, 2)) if code else h  # released: 5x5 conv, BN, ReLU, MaxPool 2
    pooled = (variant, name) in POOLED_STREAMS
    assert [conv.kernel_dilation for conv in stem.streams] == ([1, 3] if pooled else [1, 2, 3])
    assert {conv.strides for conv in stem.streams} == {1 if pooled else 3}
    streams = [conv(x) for conv in stem.streams]
    if not code:
        return g_eval(jnp.concatenate(streams, axis=-1), stem.norm)  # concatenated, then BN, ReLU
    streams = [norm(jax.nn.relu(z), use_running_average=True) for z, norm in zip(streams, stem.stream_norms)]
    if pooled:  # PyTorch's MaxPool2d(3, 3, padding=1): -inf padding, windows that fit
        window, pad = (1, 3, 3, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
        streams = [jax.lax.reduce_window(z, -jnp.inf, jax.lax.max, window, window, pad) for z in streams]
    return jnp.concatenate(streams, axis=-1)


def attention_by_hand(model, features, source, code):
    """Eq. 7's (B, K, K) map from the classifier's weights W_i reshaped to K x K x M, min-max normalised.

    From the stem output: sum_j W_ij (.) d(X_j) per class (the released SpatialAttentionBlock_P takes
    the channel mean). From the network input (the released SpatialAttentionBlock_F): the class's
    weights averaged over their channels, times the channel mean of d(X). The paper sums the classes,
    then normalises; the released code normalises each class, then averages.
    """
    k = model.pool_size
    weights = model.classifier.kernel[...].reshape(k, k, -1, model.classifier.out_features)
    pooled = layers.adaptive_avg_pool(features, k)
    if source == "input":
        maps = jnp.einsum("pqc,bpq->bcpq", weights.mean(axis=2), pooled.mean(axis=-1))
    else:
        maps = jnp.einsum("pqnc,bpqn->bcpq", weights, pooled) / features.shape[-1]
    if not code:
        maps = maps.sum(axis=1, keepdims=True)
    low, high = maps.min(axis=(2, 3), keepdims=True), maps.max(axis=(2, 3), keepdims=True)
    return ((maps - low) / (high - low + 1e-8)).mean(axis=1)


def weigh_by_hand(features, attention, code):
    """features x the map brought to their size: bilinear (paper); the released code's nearest (F.interpolate's
    default), for the whole factors these tests meet a repeat of each cell."""
    b, h, w, _ = features.shape
    k = attention.shape[1]
    if (h, w) == (k, k):
        return features * attention[..., None]
    if code:
        assert h % k == 0 and w % k == 0
        return features * jnp.repeat(jnp.repeat(attention, h // k, axis=1), w // k, axis=2)[..., None]
    return features * jax.image.resize(attention, (b, h, w), method="bilinear")[..., None]


def forward_by_hand(model, name, x):
    """The eval-mode forward pass of an RCN composed from its layers, module by module."""
    variant = model.variant
    code = variant == "xia2020_code"
    stem = stem_by_hand(model.stem, name, variant, x)
    place, source = ATTENTION[variant].get(name, (None, None))
    attention = attention_by_hand(model, x if source == "input" else stem, source, code) if place else None
    weigh = partial(weigh_by_hand, attention=attention, code=code)
    if place == "stem":
        stem = weigh(stem)
    if place == "initial_state":
        h = model.rconv(stem, train=False, initial_state_transform=weigh)
    else:
        h = model.rconv(stem, train=False)
    if place == "parallel":
        h = h + weigh(stem)  # paper: the attention branch summed with the shortcut Rconv
    h = layers.max_pool(h, (2, 2))
    if place == "output" and not code:
        h = weigh(h)  # paper: on the pooled recurrent features
    h = layers.adaptive_avg_pool(h, model.pool_size)
    if place == "output" and code:
        h = weigh(h)  # released code: after the adaptive pooling
    return model.classifier(h.reshape(h.shape[0], -1))


@pytest.mark.parametrize("variant", ["paper", "xia2020_code"])
@pytest.mark.parametrize("name", RCN_NAMES)
def test_every_rcn_is_its_modules_composed_by_hand(name, variant):
    model = make(name, variant=variant, steps=2 if variant == "xia2020_code" else 3)
    assert model.stem.wide == (name in WIDE)
    # eq. 6 with the shortcut, eq. 3 without (layers' own test checks each recurrence's equations)
    assert model.rconv.connection == ("shortcut" if name in SHORTCUT else "input")
    randomize_batch_norms(model, seed=len(name))
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 60, 60, 3))
    np.testing.assert_allclose(model(x, train=False), forward_by_hand(model, name, x), rtol=1e-5, atol=1e-6)


# Pool1 .. Pool4 of Xia et al., TMM 2019, Table I, written here independently of mer_jax.methods.strcn.strcn.POOLS.
TABLE_I_POOLS = {"strcn_a": ((4, 1), (4, 1), (4, 4), (2, 2)), "strcn_g": ((4, 4), (4, 4), (4, 4), (2, 2))}


def randomize_batch_norms(model, seed):
    """Running statistics, scales and offsets drawn at random, so that a norm used in the wrong place shows."""
    rng = np.random.default_rng(seed)
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm):
            shape = node.mean.shape
            node.mean[...] = jnp.asarray(rng.normal(0, 0.5, shape), jnp.float32)
            node.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, shape), jnp.float32)
            node.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, shape), jnp.float32)
            node.bias[...] = jnp.asarray(rng.normal(0, 0.5, shape), jnp.float32)


def strcn_by_hand(model, name, x):
    """The eval-mode STRCN forward pass from its layers: Table I with eq. 6-7 in every RCL."""

    def g(z, norm):
        return jax.nn.relu(norm(z, use_running_average=True))

    pools = TABLE_I_POOLS[name]
    h = layers.max_pool(g(model.conv1.conv(x), model.conv1.norm), pools[0])  # Conv1 5x5, Pool1
    for index, rcl in enumerate(model.rcls):  # RCL2 .. RCL5
        u = rcl.feedforward(h)  # eq. 6: the 1x1 feed-forward input, the same at every step
        state = g(u, rcl.feedforward_norm)
        for norm in rcl.recurrent_norms:  # eq. 7: one shared 3x3 W_r, a BatchNorm per step
            state = g(u + rcl.recurrent(state), norm)
        h = layers.max_pool(state, pools[index + 1]) if index + 1 < len(pools) else state
    return model.classifier(h.mean(axis=(1, 2)))  # Pool5 (global average) and eq. 8's linear classifier


@pytest.mark.parametrize("num_rcls", [4, 2])
@pytest.mark.parametrize("name, shape", [("strcn_a", (260, 20, 3)), ("strcn_g", (136, 136, 2))])
def test_every_strcn_is_table_one_composed_by_hand(name, shape, num_rcls):
    model = make(name, features=8, shape=shape, classes=4, num_rcls=num_rcls)
    assert len(model.rcls) == num_rcls
    assert all(len(rcl.recurrent_norms) == 3 and rcl.connection == "feedforward" for rcl in model.rcls)
    randomize_batch_norms(model, seed=num_rcls)
    x = jax.random.normal(jax.random.PRNGKey(3), (2, *shape))
    np.testing.assert_allclose(model(x, train=False), strcn_by_hand(model, name, x), rtol=1e-5, atol=1e-5)
