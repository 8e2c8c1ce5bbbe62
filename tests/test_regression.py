"""Behaviour kept across a restructuring: a fixed-seed run predicts what it predicted before.

The predictions below were recorded at commit 5cfcd6a, before the package was split into core, methods,
data and speed (issue 24). Any change that moves the held-out predictions of this run (the training, the
folds, the toy data, the model) fails here and must say why in its commit.
"""

from pathlib import Path

from mer_jax.cli import load_config
from mer_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
# configs/controls.py (108 clips, 9 LOSO folds) for 5 epochs, loop strategy: each clip's held-out prediction in
# sample id order, by the first letter of its class (negative, positive, surprise).
RECORDED = ("snpnnpnnpnsnnnnpnppnppsnnnpnpssnnnnnsnnnpnnppsnpsspnnsnnpnpnppppppppppnnspnpspnsnnpsnspnnnppnspnpsnpnnsss"
            "psn")


def test_a_fixed_seed_run_predicts_what_it_predicted_before_the_restructuring(tmp_path):
    overrides = ["--config.train.epochs=5", "--config.train.strategy=loop"]
    config = load_config(str(REPO / "configs" / "controls.py"), overrides)
    report = train_and_evaluate(config, tmp_path, progress=False)
    predicted = sorted((p["sample_id"], p["prediction"][0]) for p in report["predictions"])
    assert "".join(letter for _, letter in predicted) == RECORDED
