"""A minute or two on CPU: the shallow RCN trained on every LOSO fold of the built-in synthetic flow maps.

    mer-jax train --config configs/quickstart.py --workdir runs/quickstart

Expected (2 cores, no other job, a machine's first run): 91 s, 81 s with
`--config.train.strategy=loop` (docs/benchmarks.md, "Strategy chosen by timing"); UF1 0.82 over
the 18 folds (tests/test_train.py). It needs no data extra.

The model is that of Xia et al., TIP 2020 (configs/rcn_megc2019.py). The training is shortened for
the small synthetic set (216 clips, 18 subjects). Its values come from a small sweep on that set:
UF1 0.79 with the paper's loss and dropout, 0.82 with these.
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "rcn_megc2019")
    config.data.name = "toy_flow"  # 3 source data sets x 6 subjects x 12 clips, 60 x 60 x 3
    config.model.dropout = 0.25  # instead of 0.5: 40 epochs are too few to fit through 0.5
    config.train.epochs = 40  # instead of 500
    config.train.batch_size = 32  # the folds have ~200 training clips
    config.train.learning_rate = 1e-2  # the paper's 1e-4 needs its 500 epochs
    config.train.stop_loss = 0.0  # every fold trains all 40 epochs (the paper stops at 0.5 within its 500)
    config.train.loss = "balanced"  # Xia et al., TMM 2019, eq. 9-10: the classes are imbalanced like MEGC2019's
    return config
