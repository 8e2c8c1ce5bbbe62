"""The PyTorch reference of the released code (benchmarks/torch_rcn.py) against mer-jax's `xia2020_code` models."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `benchmarks`

from benchmarks.torch_rcn import TorchRCN, load_mer_jax_weights, train_folds_torch  # noqa: E402
from mer_jax.models import count_params, create_model, layers  # noqa: E402

NAMES = ["rcn", "rcn_a", "rcn_s", "rcn_w", "rcn_c", "rcn_f", "rcn_p"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: one thread is fastest, and OpenMP's spinning threads crawl on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def steps_of(name):
    """The released RclBlock calls its 3x3 conv twice; DenseBlock and EmbeddingBlock (S, C, F, P) three times."""
    return 3 if name in ("rcn_s", "rcn_c", "rcn_f", "rcn_p") else 2


def make_jax(name, m, k, classes=3):
    config = dict(name=name, variant="xia2020_code", features=m, pool_size=k, recurrent_steps=steps_of(name))
    return create_model(config, num_classes=classes, input_shape=(60, 60, 3), rngs=nnx.Rngs(0))


def torch_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("m, k", [(16, 5), (32, 7)])
def test_parameter_counts_match_mer_jax(name, m, k):
    abstract = nnx.eval_shape(lambda: make_jax(name, m, k))  # shapes only: no initialisation to wait for
    assert torch_params(TorchRCN(name, m, k, 3, recurrent_steps=steps_of(name))) == count_params(abstract)


def randomized(model, seed=0):
    """`model` with random BatchNorm statistics, scales and all biases, so that a wrong copy shows in the logits."""
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    rng = np.random.default_rng(seed)

    def perturb(path, a):
        key = path[-1].key
        if key == "scale":
            return rng.uniform(0.5, 1.5, a.shape).astype(np.float32)
        if key == "bias":
            return (0.1 * rng.standard_normal(a.shape)).astype(np.float32)
        if key == "mean":
            return (0.3 * rng.standard_normal(a.shape)).astype(np.float32)
        if key == "var":
            return rng.uniform(0.5, 2.0, a.shape).astype(np.float32)
        return a

    for state in (params, stats):
        nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(perturb, nnx.to_pure_dict(state)))
    return nnx.merge(graphdef, params, stats)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("m, k, pure", [(16, 5, False), (32, 7, True)])
def test_eval_logits_match_mer_jax(name, m, k, pure):
    model = randomized(make_jax(name, m, k))
    _, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    if pure:
        params, stats = nnx.to_pure_dict(params), nnx.to_pure_dict(stats)
    reference = TorchRCN(name, m, k, 3, recurrent_steps=steps_of(name))
    load_mer_jax_weights(reference, params, stats)
    reference.eval()

    x = np.random.default_rng(1).standard_normal((4, 60, 60, 3)).astype(np.float32)
    expected = np.asarray(model(x, train=False))
    with torch.no_grad():
        got = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(expected).max() > 1e-3  # logits that say something
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("size_in, size_out", [(5, 20), (7, 20), (7, 10), (5, 12), (6, 20)])
def test_nearest_attention_resize_is_pytorchs_interpolate(size_in, size_out):
    """The released code brings its attention maps to the features' size with `F.interpolate`'s default."""
    attention = np.random.default_rng(2).standard_normal((2, size_in, size_in)).astype(np.float32)
    features = np.ones((2, size_out, size_out, 1), np.float32)
    got = np.asarray(layers.apply_attention(features, attention, resize="nearest"))[..., 0]
    expected = torch.nn.functional.interpolate(torch.from_numpy(attention)[:, None], (size_out, size_out))[:, 0]
    np.testing.assert_array_equal(got, expected.numpy())


def test_loading_rejects_a_mismatched_model():
    _, params, stats = nnx.split(make_jax("rcn", 16, 5), nnx.Param, nnx.BatchStat)
    with pytest.raises((ValueError, KeyError)):
        load_mer_jax_weights(TorchRCN("rcn", 32, 5), params, stats)
    with pytest.raises((ValueError, KeyError)):
        load_mer_jax_weights(TorchRCN("rcn_w", 16, 5), params, stats)


@pytest.mark.parametrize("use_dataloader", [True, False])
def test_train_folds_torch_predicts_every_clip(use_dataloader, monkeypatch):
    optimisers = []

    def sgd(*args, **kwargs):  # the released training's `optim.SGD(params, lr=lr, momentum=0.9)`
        optimisers.append(kwargs)
        return sgd_class(*args, **kwargs)

    sgd_class = torch.optim.SGD
    monkeypatch.setattr(torch.optim, "SGD", sgd)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 60, 60, 3)).astype(np.float32)
    labels = rng.integers(0, 3, 24)
    subjects = np.repeat(["s1", "s2", "s3"], 8)
    result = train_folds_torch(
        x, labels, subjects, name="rcn_a", features=8, pool_size=5, epochs=1, batch_size=4,
        num_classes=3, use_dataloader=use_dataloader,
    )
    predictions = result["predictions"]
    assert predictions.shape == (24,)
    assert ((predictions >= 0) & (predictions < 3)).all()  # -1 marks a clip no fold predicted
    assert result["seconds"] > 0
    assert set(result["phase_seconds"]) == {"init", "train", "predict"}
    assert sum(result["phase_seconds"].values()) <= result["seconds"]
    assert len(optimisers) == 3  # a fresh one per fold
    assert all((o["lr"], o["momentum"], o["weight_decay"]) == (5e-4, 0.9, 0.0) for o in optimisers)


@pytest.mark.parametrize("name", NAMES)
def test_fold_parallel_unrolls_each_released_model_as_its_block(name):
    from benchmarks import fold_parallel

    assert fold_parallel.parse_args(["--model", name, "--variant", "xia2020_code"]).recurrent_steps == steps_of(name)
    assert fold_parallel.parse_args(["--model", name]).recurrent_steps == 3  # paper: Table I's 3


def test_fold_parallel_compare_runs_every_implementation_and_prints_its_ratios():
    """benchmarks/fold_parallel.py --compare at toy size: every run reported, the ratios parse (no timing asserted)."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    command = [
        sys.executable, str(repo / "benchmarks" / "fold_parallel.py"), "--compare", "--repeats", "2",
        "--model", "rcn_a", "--variant", "xia2020_code", "--features", "4", "--pool-size", "2",
        "--folds", "3", "--examples", "24", "--epochs", "1", "--batch-size", "4", "--size", "16",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    runs = [line.split(":")[0].strip() for line in lines if ": total " in line]
    assert runs == ["torch", "loop", "vmap", "auto (loop)"] * 3  # two rounds, then the best of each
    assert any(line.startswith("peak memory over all the runs: ") and "GiB" in line for line in lines)
    ratios = {line.split(":")[0]: float(line.split(":")[1]) for line in lines[-3:]}
    assert set(ratios) == {
        "loop wall time / vmap wall time",
        "torch wall time / mer_jax auto wall time",
        "auto (loop) wall time / faster strategy's",
    }
    assert all(ratio > 0 for ratio in ratios.values())
