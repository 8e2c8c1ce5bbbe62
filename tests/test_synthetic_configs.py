"""The CPU configs of the amplitude benchmark (benchmarks/amplitude.py, one model each) learn a class their
inputs show and stay at chance on the same labels without it.

Each config is taken as it is, its optimizer, learning rate, schedule, loss, batch and model, on tiny inputs
of its own shape whose class brightens one band of rows; only the epochs are cut. Single-model configs are
here; the staged ones (six regions, TLCNN) in tests/test_stages.py and tests/test_tlcnn.py.
"""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.amplitude import METHODS
from mer_jax import protocols
from mer_jax.cli import load_config
from mer_jax.data import Dataset
from mer_jax.train import train_folds

REPO = Path(__file__).resolve().parents[1]
SUBJECTS, PER_SUBJECT = 6, 9
SINGLE_MODEL = ("rcn", "rcn_a", "rcn_f", "strcn_a", "strcn_g")
EPOCHS = {"rcn": 15, "rcn_a": 15, "rcn_f": 15, "strcn_a": 10, "strcn_g": 10}


def config_of(method: str):
    spec = METHODS[method]
    return load_config(str(REPO / spec.config), list(spec.overrides))


def tiny_clips(shape: tuple[int, ...], dtype, signal: bool) -> Dataset:
    """54 examples of 6 subjects, classes in a shuffled order; with `signal` the class lifts its own third of
    the first axis (rows of a map, pixels of STRCN-A's matrix)."""
    rng = np.random.default_rng(0)
    n = SUBJECTS * PER_SUBJECT
    label = rng.permutation(np.arange(n) % 3).astype(np.int32)
    x = rng.uniform(0, 100, (n, *shape))
    if signal:
        band = shape[0] // 3
        for i in range(n):
            x[i, label[i] * band : (label[i] + 1) * band] += 100
    if dtype != np.uint8:
        x = (x - 50) / 50
    return Dataset(
        x=x.astype(dtype), label=label, subject=np.repeat([f"s{i}" for i in range(SUBJECTS)], PER_SUBJECT),
        dataset=np.full(n, "tiny"), sample_id=np.array([f"c{i:02d}" for i in range(n)]),
        class_names=("negative", "positive", "surprise"),
    )


def held_out_accuracy(method: str, signal: bool) -> float:
    config = config_of(method)
    config.train.epochs = EPOCHS[method]
    config.train.final_model = False
    dtype = np.uint8 if method == "strcn_a" else np.float32  # STRCN-A's matrices are a build's uint8 pixels
    clips = tiny_clips(tuple(config.data.input_shape), dtype, signal)
    folds = protocols.folds_of_config(config.protocol, subjects=clips.subject, labels=clips.label)
    result = train_folds(config, clips, folds, progress=False)
    correct = result.test_logits.argmax(-1) == clips.label[result.test_index]
    return float(correct[result.test_valid].mean())


@pytest.mark.parametrize("method", SINGLE_MODEL)
def test_a_cpu_config_learns_a_visible_class_and_nothing_without_it(method):
    assert held_out_accuracy(method, signal=True) >= 0.8
    assert held_out_accuracy(method, signal=False) <= 0.55
