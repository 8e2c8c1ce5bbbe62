"""Shapes, parameter counts and the building blocks of the recurrent convolutional models."""

import re
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax import platform
from mer_jax.models import count_params, create_model, fast_ops, layers, model_names

RCN_NAMES = [name for name in model_names() if name.startswith("rcn")]


def make(name, variant="paper", features=16, steps=3, shape=(60, 60, 3), classes=3, **extra):
    config = dict(name=name, variant=variant, features=features, recurrent_steps=steps, **extra)
    return create_model(config, num_classes=classes, input_shape=shape, rngs=nnx.Rngs(0))


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout  # weights + bias (PyTorch's Conv2d default)


def bn_params(c):
    return 2 * c  # scale and bias; running statistics are not parameters


def xia2020_code_params(name, m, k, c=3, cin=3):
    """Parameters of the released code's models, layer by layer (docs/design.md "Models")."""
    if name == "rcn_w":
        # three stride-3 stems 3x3 with M/2, M/4, M/4 channels, each conv -> ReLU -> BN
        stem = sum(conv_params(3, cin, s) + bn_params(s) for s in (m // 2, m // 4, m // 4))
    else:
        stem = conv_params(5, cin, m) + bn_params(m)  # 5x5 conv + BN
    feedforward = conv_params(1, m, m) + bn_params(m)  # 1x1 conv + BN
    recurrent = conv_params(3, m, m) + bn_params(m)  # ONE shared 3x3 conv + BN, called repeatedly
    classifier = k * k * m * c + c
    return stem + feedforward + recurrent + classifier


@pytest.mark.parametrize("name", ["rcn", "rcn_a", "rcn_s", "rcn_w"])
@pytest.mark.parametrize("m", [16, 32, 64])
@pytest.mark.parametrize("k", [5, 7])
def test_xia2020_code_parameter_counts(name, m, k):
    model = make(name, variant="xia2020_code", features=m, pool_size=k, steps=2)
    assert count_params(model) == xia2020_code_params(name, m, k)


def test_xia2020_code_closed_forms():
    # 10 M^2 + 84 M + K^2 M C + C, and 10 M^2 + 36 M + K^2 M C + C for the wide stem.
    assert xia2020_code_params("rcn", 16, 5) == 5107
    assert xia2020_code_params("rcn_w", 16, 5) == 4339


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


def test_strcn_rejects_bad_settings():
    with pytest.raises(ValueError, match="0 to 4 recurrent layers"):
        make("strcn_g", shape=(245, 300, 2), num_rcls=5)
    with pytest.raises(ValueError, match="only the 'paper' variant"):
        make("strcn_a", variant="xia2020_code", shape=(921, 30, 3))
    with pytest.raises(ValueError, match="unknown model.name 'resnet'"):
        make("resnet")


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


def test_max_pool_matches_reduce_window():
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 13, 10, 3))
    for window in ((2, 2), (4, 1), (4, 4)):
        expected = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *window, 1), (1, *window, 1), "VALID")
        np.testing.assert_array_equal(layers.max_pool(x, window), expected)


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


# Where each searched or attention model applies the attention unit (Xia et al., TIP 2020, sec. IV-C-3,
# V-C-4), written here independently of mer_jax.models.rcn.MODULES.
ATTENTION = {"rcn_a": "output", "rcn_c": "stem", "rcn_f": "initial_state", "rcn_p": "parallel"}
WIDE = {"rcn_w", "rcn_c", "rcn_f", "rcn_p"}
SHORTCUT = {"rcn_s", "rcn_c", "rcn_f", "rcn_p"}


def forward_by_hand(model, name, x):
    """The eval-mode forward pass of an RCN composed from its layers, module by module."""
    code = model.variant == "xia2020_code"
    stem = model.stem(x, train=False, rngs=None)
    place = ATTENTION.get(name)
    attention = layers.attention_map(stem, model.classifier.kernel[...], per_class_minmax=code) if place else None
    if place == "stem":
        stem = layers.apply_attention(stem, attention)
    if place == "initial_state":
        h = model.rconv(stem, train=False, initial_state_transform=lambda h0: layers.apply_attention(h0, attention))
    else:
        h = model.rconv(stem, train=False)
    if place == "parallel":
        h = h + layers.apply_attention(stem, attention)
    h = layers.max_pool(h, (2, 2))
    if place == "output" and not code:
        h = layers.apply_attention(h, attention)  # paper: on the pooled recurrent features
    h = layers.adaptive_avg_pool(h, model.pool_size)
    if place == "output" and code:
        h = layers.apply_attention(h, attention)  # released code: after the adaptive pooling
    return model.classifier(h.reshape(h.shape[0], -1))


@pytest.mark.parametrize("variant", ["paper", "xia2020_code"])
@pytest.mark.parametrize("name", RCN_NAMES)
def test_every_rcn_is_its_modules_composed_by_hand(name, variant):
    model = make(name, variant=variant, steps=2 if variant == "xia2020_code" else 3)
    assert model.stem.wide == (name in WIDE)
    assert (model.rconv.connection == "shortcut") == (name in SHORTCUT)
    randomize_batch_norms(model, seed=len(name))
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 60, 60, 3))
    np.testing.assert_allclose(model(x, train=False), forward_by_hand(model, name, x), rtol=1e-5, atol=1e-6)


# Pool1 .. Pool4 of Xia et al., TMM 2019, Table I, written here independently of mer_jax.models.strcn.POOLS.
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
