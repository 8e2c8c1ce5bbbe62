"""The CPU configs of the amplitude benchmark (benchmarks/amplitude.py, one model each) learn a class their
inputs show and stay at chance on the same labels without it.

Each config is taken as it is, its optimizer, learning rate, schedule, loss, batch, protocol and model, on
tiny inputs of its own shape whose class shifts a channel; only the epochs are cut. Single-model configs are
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
SUBJECTS = 8
PER_SUBJECT = {"rcn": 12, "rcn_a": 12, "rcn_f": 12, "strcn_a": 6, "strcn_g": 6}  # RCN: folds above its batch of 64
SINGLE_MODEL = tuple(PER_SUBJECT)
EPOCHS = 10
# STRCN-A's matrices hold the top_p share of a face's pixels (921 at the paper's 30% of 64 x 48); 240 rows, the
# share at top_p = 0.078, keep every pool of Table I and cost a quarter of the time.
INPUT_SHAPE = {"strcn_a": (240, 30, 3)}


def config_of(method: str):
    spec = METHODS[method]
    return load_config(str(REPO / spec.config), list(spec.overrides))


def tiny_clips(shape: tuple[int, ...], per_subject: int, signal: bool) -> Dataset:
    """8 subjects' examples of noise, classes in a shuffled order; with `signal` the class shifts a channel's
    mean, one a global average pool keeps: class 0 raises channel 0, class 1 lowers it, class 2 raises
    channel 1. Float and centred on 0 for every model, STRCN-A's too (it takes float matrices as they are):
    on uint8 pixels (its build's, scaled by 1/255 to [0, 1]) STRCN-A fits this shift but does not carry it to
    held-out subjects in 10 epochs (docs/models.md, "Does each method learn?")."""
    rng = np.random.default_rng(0)
    n = SUBJECTS * per_subject
    label = rng.permutation(np.arange(n) % 3).astype(np.int32)
    x = rng.uniform(-1, 1, (n, *shape))
    if signal:
        channel, sign = np.array([0, 0, 1])[label], np.array([1, -1, 1])[label]
        x[np.arange(n), ..., channel] += 0.5 * sign[:, None, None]
    return Dataset(
        x=x.astype(np.float32), label=label, subject=np.repeat([f"s{i}" for i in range(SUBJECTS)], per_subject),
        dataset=np.full(n, "tiny"), sample_id=np.array([f"c{i:02d}" for i in range(n)]),
        class_names=("negative", "positive", "surprise"),
    )


def held_out_accuracy(method: str, signal: bool) -> float:
    config = config_of(method)
    config.train.epochs = EPOCHS
    clips = tiny_clips(INPUT_SHAPE.get(method, tuple(config.data.input_shape)), PER_SUBJECT[method], signal)
    folds = protocols.folds_of_config(config.protocol, subjects=clips.subject, labels=clips.label)
    result = train_folds(config, clips, folds, progress=False)
    correct = result.test_logits.argmax(-1) == clips.label[result.test_index]
    return float(correct[result.test_valid].mean())


@pytest.mark.parametrize("method", SINGLE_MODEL)
def test_a_cpu_config_learns_a_visible_class_and_nothing_without_it(method):
    assert held_out_accuracy(method, signal=True) >= 0.8
    assert held_out_accuracy(method, signal=False) <= 0.55
