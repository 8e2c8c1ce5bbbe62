"""UF1 of the learning check and its two negative controls (configs/controls.py) over data seeds.

    python benchmarks/controls.py --seeds 1 2 3 4 5 6 7 8 9 10

For each seed: the config as it is (the expression present), with the expression motion
removed, and with the training labels permuted; then per condition the minimum, mean,
maximum and standard deviation, and the range of the means over any three seeds (the
controls are tested by such a mean). tests/test_controls.py sets its thresholds from these (docs/testing.md).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np

from mer_jax.config import sibling_config
from mer_jax.train import train_and_evaluate

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "controls.py"
CONDITIONS = ("expression", "expression removed", "labels shuffled")


def control_config(seed: int, condition: str):
    """configs/controls.py for data seed `seed` under `condition` (one of CONDITIONS)."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; valid: {CONDITIONS}")
    config = sibling_config(str(CONFIG), "controls")
    config.data.seed = seed
    if condition == "expression removed":
        config.data.toy_flow.motion_scale = 0.0
    if condition == "labels shuffled":
        config.data.shuffle_labels = True
    return config


def control_uf1(seed: int, condition: str) -> float:
    """LOSO UF1 of one run."""
    with tempfile.TemporaryDirectory() as workdir:
        return float(train_and_evaluate(control_config(seed, condition), workdir, progress=False)["uf1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    args = parser.parse_args()
    scores = {condition: [] for condition in CONDITIONS}
    for seed in args.seeds:
        row = {condition: control_uf1(seed, condition) for condition in CONDITIONS}
        for condition, value in row.items():
            scores[condition].append(value)
        print(f"seed {seed}: " + ", ".join(f"{c} {v:.3f}" for c, v in row.items()), flush=True)
    for condition, values in scores.items():
        means = [np.mean(three) for three in itertools.combinations(values, 3)] or [np.nan]
        print(
            f"{condition}: min {min(values):.3f} mean {np.mean(values):.3f} max {max(values):.3f} "
            f"sd {np.std(values, ddof=1):.3f}; means over three seeds {min(means):.3f} to {max(means):.3f}"
        )


if __name__ == "__main__":
    main()
