"""RCN-A as the authors' released PyTorch code trains it (docs/models.md, "The released code").

    mer-jax build megc2019 --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/rcn_xia2020_code.py --config.data.data_dir=runs/tfds \
        --workdir runs/xia2020_code

DIR: the unpacked data sets (docs/data.md). Expected time: the full 100 epochs not measured; 2 epochs
of its 68 folds on random inputs of this size took 24.2 s on 2 idle cores (docs/benchmarks.md).
Expected result: not run.

The code differs from the paper: a 5x5 stem with max pooling, a shared BatchNorm in the recurrent
step, attention after adaptive pooling. Its training script runs SGD with momentum 0.9, lr 5e-4 and
no weight decay for all of 100 epochs. The other released models:
--config.model.name=rcn_w; rcn_s, rcn_c, rcn_f or rcn_p with --config.model.recurrent_steps=3
(their shortcut blocks unroll 3).
"""

from mer_jax.config import sibling_config


def get_config():
    config = sibling_config(__file__, "rcn_megc2019")
    config.model.name = "rcn_a"
    config.model.variant = "xia2020_code"
    config.model.recurrent_steps = 2  # `y = rr(x + y)` twice (the shortcut blocks of rcn_s, c, f, p unroll 3)
    config.train.learning_rate = 5e-4
    config.train.momentum = 0.9
    config.train.weight_decay = 0.0  # `optim.SGD(params, lr=lr, momentum=0.9)`: PyTorch's default, no decay
    config.train.epochs = 100
    config.train.stop_loss = 0.0  # its train_model runs every epoch: no stopping criterion
    config.train.batch_size = 64
    return config
