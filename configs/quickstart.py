"""A few minutes on CPU: the shallow RCN trained on every LOSO fold of the built-in synthetic flow maps."""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "rcn_megc2019")
    config.data.name = "synthetic_flow"  # 3 source data sets x 6 subjects x 12 clips, 60 x 60 x 3
    config.train.epochs = 30  # instead of 500: the synthetic task is learnt in 30
    config.train.batch_size = 32  # the folds have ~200 training clips
    config.train.learning_rate = 5e-3  # the paper's 1e-4 needs its 500 epochs
    return config
