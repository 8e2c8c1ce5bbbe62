"""The learning check and its negative controls: the pipeline learns an expression it is shown and nothing else.

configs/controls.py (the quick start's training on a smaller synthetic set, with a data seed
the quick start's values were not chosen on) is trained three times on the same clips: as it
is, with the expression motion removed (head drift and noise stay), and with the training
labels permuted. Thresholds come from `python benchmarks/controls.py --seeds 1 2 ... 10`
(docs/testing.md): the learned run's lowest UF1 over those seeds less a margin, the
controls' highest plus one. A pipeline that learns from anything but the expression (a leak
of the held-out labels, a cue in the drift or the noise) lifts the controls; one that
stopped learning drops the first.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `benchmarks`

from benchmarks.controls import CONDITIONS, control_uf1  # noqa: E402

SEED = 1  # configs/controls.py's own
LEARNED_AT_LEAST = 0.55  # seeds 1-10: 0.65-0.83
CHANCE_AT_MOST = {"expression removed": 0.52, "labels shuffled": 0.45}  # seeds 1-10: up to 0.44 and 0.33


@pytest.fixture(scope="module")
def uf1():
    return {condition: control_uf1(SEED, condition) for condition in CONDITIONS}


def test_the_expression_is_learned(uf1):
    assert uf1["expression"] >= LEARNED_AT_LEAST, uf1


@pytest.mark.parametrize("condition", sorted(CHANCE_AT_MOST))
def test_without_the_expression_or_with_shuffled_labels_nothing_is_learned(uf1, condition):
    assert uf1[condition] <= CHANCE_AT_MOST[condition], uf1
