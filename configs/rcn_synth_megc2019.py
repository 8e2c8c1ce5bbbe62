"""The main job: the shallow RCN trained LOSO on the synthetic MEGC2019 composite, built like the real one.

    mer-jax synth --out runs/synth
    mer-jax build megc2019 --manual_dir runs/synth --data_dir runs/tfds
    mer-jax train --config configs/rcn_synth_megc2019.py --workdir runs/synth_megc2019

Expected (2 cores, with other jobs beside it): synth 71 s, build 96 s, training 189 s; UF1 0.90, UAR
0.90, accuracy 0.91 on the default composite (docs/benchmarks.md). Without the expression motion it
scores at chance (tests/test_end_to_end.py). At `--expression_scale 10`: UF1 0.964; at 0: 0.355
(benchmarks/amplitude.py).

The model is that of Xia et al., TIP 2020 (configs/rcn_megc2019.py). The training is the quick
start's (configs/quickstart.py) with 20 epochs of batch 64, so the 68 folds train in a few minutes
on CPU.
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "quickstart")
    config.data.name = "megc2019/flow60"  # u, v, strain at 60 x 60 of 442 clips, 68 subjects (Xia et al., TIP 2020, sec. IV-A)
    config.data.data_dir = "runs/tfds"  # where the README's `mer-jax build` writes
    config.data.labels = "megc2019"  # negative, positive, surprise (Xia et al., TIP 2020, sec. V-B)
    config.train.epochs = 20  # the folds have ~430 training clips, twice the quickstart's
    config.train.batch_size = 64  # the released code's batch
    config.train.final_model = True  # also one model of every subject, for `mer-jax predict` on new clips
    return config
