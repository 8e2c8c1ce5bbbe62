"""The main job: the shallow RCN trained LOSO on the synthetic MEGC2019 composite, built like the real one.

    mer-jax synth --out runs/synth
    mer-jax build megc2019 --manual_dir runs/synth --data_dir runs/tfds
    mer-jax train --config configs/synthetic_me.py --workdir runs/synthetic_me

The model is seed 002's (configs/rcn_megc2019.py); the training is the
quickstart's (configs/quickstart.py), shortened for CPU.
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "quickstart")
    config.data.name = "megc2019/flow60"  # u, v, strain at 60 x 60 of 442 clips, 68 subjects (seed 002 sec. IV-A)
    config.data.data_dir = "runs/tfds"  # where the README's `mer-jax build` writes
    config.data.labels = "megc2019"  # negative, positive, surprise (seed 002 sec. V-B)
    return config
