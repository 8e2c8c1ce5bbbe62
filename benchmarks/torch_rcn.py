"""A PyTorch reference of the authors' released RCN code (the `xia2020_code` variant), for benchmarks.

Written here from the description in docs/models.md ("The released code") and
docs/design.md ("Models"), in PyTorch's NCHW layout, so that mer-jax can be timed
against "the authors' PyTorch loop" and checked against it (tests/test_torch_reference.py
copies a mer-jax model's weights into `TorchRCN` and compares the logits). Where the
released code has bugs, it does what mer-jax does instead (docs/models.md lists them).

- `TorchRCN`: the released code's RCN_A version 3 ('rcn_a'), RCN_S, RCN_W, RCN_C,
  RCN_F, RCN_P and its plain RCN ('rcn', RCN_A without the attention).
- `load_mer_jax_weights`: copies an NNX state (HWIO kernels, NHWC flatten order)
  into a `TorchRCN` (OIHW kernels, NCHW flatten order).
- `train_folds_torch`: leave-one-subject-out training and prediction, one fold
  after the other, a fresh model and SGD optimiser per fold.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class Released:
    """One model of the released code, as docs/models.md describes it."""

    stem: str  # "plain" (5x5), "wide" (three stride-3 streams) or "pooled" (two stride-1 streams + MaxPool 3)
    shortcut: bool  # DenseBlock / EmbeddingBlock rather than RclBlock
    attention: str | None  # None, "output" (after adaptive pooling), "stem" (from the input), "initial_state"
    steps: int  # how often the released block calls its shared 3x3 conv


RELEASED = {
    "rcn": Released("plain", False, None, 2),
    "rcn_a": Released("plain", False, "output", 2),
    "rcn_s": Released("plain", True, None, 3),
    "rcn_w": Released("wide", False, None, 2),
    "rcn_c": Released("wide", True, "stem", 3),
    "rcn_f": Released("wide", True, "initial_state", 3),
    "rcn_p": Released("pooled", True, "output", 3),
}
NAMES = tuple(RELEASED)


def _conv_bn(conv: nn.Conv2d, norm: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    return F.relu(norm(conv(x)))


def _minmax_mean(per_class: torch.Tensor) -> torch.Tensor:
    """(B, C, P, P) -> (B, P, P): each class's map min-max normalised per sample, then averaged over classes."""
    low = per_class.amin(dim=(-2, -1), keepdim=True)
    high = per_class.amax(dim=(-2, -1), keepdim=True)
    return ((per_class - low) / (high - low + 1e-8)).mean(dim=1)


def _weigh(features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """features * the (B, P, P) map brought to their size by `F.interpolate`'s default (nearest)."""
    return features * F.interpolate(attention[:, None], features.shape[-2:])


class TorchRCN(nn.Module):
    """The released code's shallow RCNs (NCHW).

    - stem: "plain", Conv 5x5 stride 1 no padding -> BN -> ReLU -> MaxPool 2 -> Dropout;
      "wide", three stride-3 3x3 streams (dilation 1, 2, 3, padding = dilation; M/2, M/4,
      M/4 channels), each conv -> ReLU -> BN -> Dropout, concatenated; "pooled" (RCN_P),
      two stride-1 3x3 streams (dilation 1, 3; M/2 each), each conv -> ReLU -> BN ->
      MaxPool 3 stride 3 pad 1 -> Dropout, concatenated.
    - block: y = ff(x) (1x1 conv + BN + ReLU), then y = rr(x + y) `recurrent_steps`
      times with ONE shared rr (3x3 conv pad 1 + BN + ReLU); shortcut: the input of
      each rr call is x plus all earlier states. Then MaxPool 2 -> Dropout.
    - head: AdaptiveAvgPool P x P -> flatten -> Linear(P*P*M -> C).
    - attention, a (B, P, P) map: "output" (RCN_A, RCN_P) multiplies the pooled block
      output by the map of the pooled stem output; "initial_state" (RCN_F) multiplies
      ff's output by it; "stem" (RCN_C) multiplies the stem output by the channel-mean
      map of the pooled network input.
    """

    def __init__(
        self,
        name: str,
        features: int = 16,
        pool_size: int = 5,
        num_classes: int = 3,
        in_channels: int = 3,
        recurrent_steps: int | None = None,
        dropout: float = 0.5,
    ):
        super().__init__()
        if name not in NAMES:
            raise ValueError(f"unknown model name {name!r}; valid: {NAMES}")
        released = RELEASED[name]
        if recurrent_steps is None:
            recurrent_steps = released.steps
        if recurrent_steps < 0:
            raise ValueError(f"recurrent_steps must be >= 0, got {recurrent_steps}")
        self.name = name
        self.features = features
        self.pool_size = pool_size
        self.num_classes = num_classes
        self.recurrent_steps = recurrent_steps
        self.stem_kind = released.stem
        self.wide = released.stem != "plain"
        self.shortcut = released.shortcut
        self.attention_at = released.attention

        if self.wide:
            if released.stem == "pooled":
                dilations, stride, channels = (1, 3), 1, (features // 2, features // 2)
            else:
                dilations, stride, channels = (1, 2, 3), 3, (features // 2, features // 4, features // 4)
            if sum(channels) != features:
                raise ValueError(f"the {released.stem} stem cannot split {features} features as {channels}")
            self.streams = nn.ModuleList(
                nn.Conv2d(in_channels, c, 3, stride=stride, padding=d, dilation=d) for d, c in zip(dilations, channels)
            )
            self.stream_norms = nn.ModuleList(nn.BatchNorm2d(c) for c in channels)
        else:
            self.stem_conv = nn.Conv2d(in_channels, features, 5)
            self.stem_norm = nn.BatchNorm2d(features)
        self.ff = nn.Conv2d(features, features, 1)
        self.ff_norm = nn.BatchNorm2d(features)
        self.rr = nn.Conv2d(features, features, 3, padding=1)
        self.rr_norm = nn.BatchNorm2d(features)  # shared by every recurrent call, like the conv
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(pool_size * pool_size * features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        if not self.wide:
            return self.dropout(F.max_pool2d(_conv_bn(self.stem_conv, self.stem_norm, x), 2))
        outputs = []
        for conv, norm in zip(self.streams, self.stream_norms):
            y = norm(F.relu(conv(x)))
            if self.stem_kind == "pooled":
                y = F.max_pool2d(y, 3, stride=3, padding=1)
            outputs.append(self.dropout(y))
        return torch.cat(outputs, dim=1)

    def block(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        h = _conv_bn(self.ff, self.ff_norm, x)
        if attention is not None:
            h = _weigh(h, attention)
        total = x + h
        for _ in range(self.recurrent_steps):
            if self.shortcut:
                h = _conv_bn(self.rr, self.rr_norm, total)
                total = total + h
            else:
                h = _conv_bn(self.rr, self.rr_norm, x + h)
        return self.dropout(F.max_pool2d(h, 2))

    def attention(self, x: torch.Tensor, stem_output: torch.Tensor) -> torch.Tensor:
        """(B, P, P). From the stem output: per class, the channel mean of classifier weights x pooled
        features. From the network input (RCN_C): per class, the classifier weights' channel mean x
        the pooled input's channel mean. Each class's map min-max normalised per sample; averaged over classes."""
        p, m = self.pool_size, self.features
        weights = self.classifier.weight.view(self.num_classes, m, p, p)
        if self.attention_at == "stem":
            pooled = F.adaptive_avg_pool2d(x, p).mean(dim=1)  # (B, P, P)
            return _minmax_mean(torch.einsum("bpq,cpq->bcpq", pooled, weights.mean(dim=1)))
        pooled = F.adaptive_avg_pool2d(stem_output, p)  # (B, M, P, P)
        return _minmax_mean(torch.einsum("bmpq,cmpq->bcpq", pooled, weights) / m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        attention = self.attention(x, s) if self.attention_at else None
        if self.attention_at == "stem":
            s = _weigh(s, attention)
        h = self.block(s, attention if self.attention_at == "initial_state" else None)
        h = F.adaptive_avg_pool2d(h, self.pool_size)
        if self.attention_at == "output":
            h = h * attention[:, None]
        return self.classifier(h.flatten(1))


# --------------------------------------------------------------------------- weights from mer-jax


def _pure(state: Any) -> Mapping:
    if isinstance(state, dict):
        return state
    from flax import nnx  # an nnx.State

    return nnx.to_pure_dict(state)


def _child(tree: Mapping, key: Any) -> Any:
    if key in tree:
        return tree[key]
    if str(key) in tree:
        return tree[str(key)]
    raise KeyError(f"{key!r} not in NNX state with keys {list(tree)}")


def _array(value: Any) -> np.ndarray:
    value = getattr(value, "value", value)  # an nnx.Variable left in a dict
    return np.asarray(value, np.float32)


def _copy(target: torch.Tensor, value: np.ndarray, what: str) -> int:
    if tuple(target.shape) != value.shape:
        raise ValueError(f"{what}: torch shape {tuple(target.shape)} != converted mer-jax shape {value.shape}")
    with torch.no_grad():
        target.copy_(torch.tensor(value))  # a copy: arrays from JAX are read-only
    return value.size


def _load_conv(conv: nn.Conv2d, params: Mapping, what: str) -> int:
    kernel = _array(_child(params, "kernel")).transpose(3, 2, 0, 1)  # HWIO -> OIHW
    copied = _copy(conv.weight, kernel, what + ".kernel")
    return copied + _copy(conv.bias, _array(_child(params, "bias")), what + ".bias")


def _load_norm(norm: nn.BatchNorm2d, params: Mapping, stats: Mapping, what: str) -> int:
    copied = _copy(norm.weight, _array(_child(params, "scale")), what + ".scale")
    copied += _copy(norm.bias, _array(_child(params, "bias")), what + ".bias")
    _copy(norm.running_mean, _array(_child(stats, "mean")), what + ".mean")
    _copy(norm.running_var, _array(_child(stats, "var")), what + ".var")
    return copied


def load_mer_jax_weights(torch_model: TorchRCN, params: Any, batch_stats: Any) -> None:
    """Copies mer-jax's `nnx.split(model, nnx.Param, nnx.BatchStat)` states (or their pure dicts) into `torch_model`.

    Conv kernels HWIO -> OIHW; the classifier kernel (P*P*M, C), whose rows are in
    NHWC flatten order (P, P, M), becomes torch's (C, M*P*P) in NCHW flatten order;
    BatchNorm scale/bias/mean/var -> weight/bias/running_mean/running_var.
    """
    params, stats = _pure(params), _pure(batch_stats)
    stem_p, stem_s = _child(params, "stem"), _child(stats, "stem")
    copied = 0
    if torch_model.wide:
        for i, (conv, norm) in enumerate(zip(torch_model.streams, torch_model.stream_norms)):
            copied += _load_conv(conv, _child(_child(stem_p, "streams"), i), f"stem.streams.{i}")
            copied += _load_norm(
                norm,
                _child(_child(stem_p, "stream_norms"), i),
                _child(_child(stem_s, "stream_norms"), i),
                f"stem.stream_norms.{i}",
            )
    else:
        block_p, block_s = _child(stem_p, "block"), _child(stem_s, "block")
        copied += _load_conv(torch_model.stem_conv, _child(block_p, "conv"), "stem.block.conv")
        copied += _load_norm(
            torch_model.stem_norm, _child(block_p, "norm"), _child(block_s, "norm"), "stem.block.norm"
        )
    rconv_p, rconv_s = _child(params, "rconv"), _child(stats, "rconv")
    copied += _load_conv(torch_model.ff, _child(rconv_p, "feedforward"), "rconv.feedforward")
    copied += _load_norm(
        torch_model.ff_norm, _child(rconv_p, "feedforward_norm"), _child(rconv_s, "feedforward_norm"),
        "rconv.feedforward_norm",
    )
    copied += _load_conv(torch_model.rr, _child(rconv_p, "recurrent"), "rconv.recurrent")
    norms_p, norms_s = _child(rconv_p, "recurrent_norms"), _child(rconv_s, "recurrent_norms")
    if len(norms_p) != 1:
        raise ValueError(f"the released code shares one recurrent BatchNorm; the mer-jax state has {len(norms_p)}")
    copied += _load_norm(torch_model.rr_norm, _child(norms_p, 0), _child(norms_s, 0), "rconv.recurrent_norms.0")

    classifier = _child(params, "classifier")
    p, m, c = torch_model.pool_size, torch_model.features, torch_model.num_classes
    kernel = _array(_child(classifier, "kernel"))
    if kernel.shape != (p * p * m, c):
        raise ValueError(f"classifier.kernel: mer-jax shape {kernel.shape} != expected {(p * p * m, c)}")
    weight = kernel.reshape(p, p, m, c).transpose(3, 2, 0, 1).reshape(c, m * p * p)  # (P,P,M,C) -> (C,M,P,P)
    copied += _copy(torch_model.classifier.weight, weight, "classifier.kernel")
    copied += _copy(torch_model.classifier.bias, _array(_child(classifier, "bias")), "classifier.bias")

    total = sum(_array(leaf).size for leaf in _leaves(params))
    if copied != total:
        raise ValueError(f"copied {copied} of the mer-jax state's {total} parameters: the structures differ")


def _leaves(tree: Any):
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from _leaves(value)
    else:
        yield tree


# --------------------------------------------------------------------------- the authors' training loop


def train_folds_torch(
    x: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    *,
    name: str,
    features: int,
    pool_size: int,
    epochs: int,
    batch_size: int,
    lr: float = 5e-4,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    num_classes: int | None = None,
    recurrent_steps: int | None = None,
    dropout: float = 0.5,
    use_dataloader: bool = True,
) -> dict:
    """Leave-one-subject-out, one fold after the other, as the released code trains.

    For each subject (in sorted order, as `mer_jax.core.protocols.loso`): a fresh
    `TorchRCN`, SGD(lr, momentum, weight_decay) on the cross-entropy (the released
    training has no weight decay, the default here), `epochs`
    epochs over the other subjects' clips in a fresh random order per epoch
    (`batch_size`, last partial batch dropped, as mer-jax does), then the held-out
    clips predicted in eval mode. `x` is NHWC float32 (converted to NCHW once).

    `use_dataloader` draws the batches with `torch.utils.data.DataLoader` over a
    `TensorDataset` (the released code's loop); False indexes the tensors with a
    random permutation directly (no per-sample collation).

    Returns {"predictions": (N,) int64, "seconds": float,
    "phase_seconds": {"init", "train", "predict"}} (phases summed over folds).
    """
    start = time.perf_counter()
    x_all = torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))
    labels = np.asarray(labels, np.int64)
    y_all = torch.from_numpy(labels)
    subjects = np.asarray(subjects).astype(str)
    if not (len(x_all) == len(labels) == len(subjects)):
        raise ValueError(f"x, labels and subjects differ in length: {len(x_all)}, {len(labels)}, {len(subjects)}")
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    predictions = np.full(len(labels), -1, np.int64)
    phases = {"init": 0.0, "train": 0.0, "predict": 0.0}
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    for subject in np.unique(subjects):
        tick = time.perf_counter()
        test_index = torch.from_numpy(np.flatnonzero(subjects == subject))
        train_index = torch.from_numpy(np.flatnonzero(subjects != subject))
        if len(train_index) < batch_size:
            raise ValueError(
                f"batch_size={batch_size} exceeds the training set of fold {subject!r} ({len(train_index)} samples)"
            )
        x_train, y_train = x_all[train_index], y_all[train_index]
        model = TorchRCN(
            name, features, pool_size, num_classes, x_all.shape[1], recurrent_steps=recurrent_steps, dropout=dropout
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        criterion = nn.CrossEntropyLoss()
        if use_dataloader:
            loader = torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(x_train, y_train),
                batch_size=batch_size,
                shuffle=True,
                drop_last=True,
                generator=generator,
            )
        phases["init"] += time.perf_counter() - tick

        tick = time.perf_counter()
        model.train()
        steps = len(x_train) // batch_size
        for _ in range(epochs):
            if use_dataloader:
                batches = iter(loader)
            else:
                order = torch.randperm(len(x_train), generator=generator)
                batches = (
                    (x_train[idx], y_train[idx])
                    for idx in (order[i * batch_size : (i + 1) * batch_size] for i in range(steps))
                )
            for xb, yb in batches:
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
        phases["train"] += time.perf_counter() - tick

        tick = time.perf_counter()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(x_all[chunk]) for chunk in test_index.split(max(batch_size, 256))])
        predictions[test_index.numpy()] = logits.argmax(1).numpy()
        phases["predict"] += time.perf_counter() - tick

    return {"predictions": predictions, "seconds": time.perf_counter() - start, "phase_seconds": phases}
