"""RCN-A as the authors' released PyTorch code trains it (docs/design.md, "Models").

The code differs from the paper: a 5x5 stem with max pooling, a shared BatchNorm
in the recurrent step, attention after adaptive pooling, lr 5e-4 for 100 epochs.
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "rcn_megc2019")
    config.model.name = "rcn_a"
    config.model.variant = "xia2020_code"
    config.model.recurrent_steps = 2  # `y = rr(x + y)` twice (rcn_s in that code unrolls 3)
    config.train.learning_rate = 5e-4
    config.train.epochs = 100
    config.train.batch_size = 64
    return config
