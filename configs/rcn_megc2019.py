"""Shallow RCN on the MEGC2019 composite, as Xia et al., TIP 2020 sets it up.

    mer-jax build megc2019 --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/rcn_megc2019.py --config.data.data_dir=runs/tfds --workdir runs/megc2019

DIR: the unpacked data sets (docs/data.md). Expected time: not measured (no accelerator was lent);
the paper gives 1.0 h on one Tesla K80 for this model, M and K (Xia et al., TIP 2020, Table VI).
Expected result: not run; the paper's UAR is 0.6773 (Table II, RCN, M = 16, K = 5).

It reads the `flow60` build of the composite: 442 clips of 68 subjects, 3 classes.
"""

from mer_jax.config import base_config


def get_config():
    config = base_config()
    config.model.name = "rcn"  # also rcn_w, rcn_s, rcn_a and the searched rcn_c, rcn_f, rcn_p (sec. V-C-4)
    config.model.features = 16  # M = 16 feature maps, the basic setup of sec. V-C
    config.model.pool_size = 5  # K = 5, 5 x 5 adaptive average pooling (sec. V-C)
    config.model.recurrent_steps = 3  # "four states in one recurrent layer": 1 feed-forward + 3 recurrent (sec. V-A)
    config.model.dropout = 0.5  # Dropout 0.5 for each convolutional layer (sec. V-A)
    config.data.name = "megc2019/flow60"  # the composite's u, v, strain maps (sec. IV-A, V-B)
    config.data.labels = "megc2019"  # negative, positive, surprise (sec. V-B)
    config.data.input_shape = (60, 60, 3)  # 60 x 60 flow maps (u, v, strain) (sec. V-C, eq. 2)
    config.data.num_classes = 3  # negative, positive, surprise (sec. V-B)
    config.protocol.name = "loso"  # leave-one-subject-out, MEGC2019 (sec. V-B)
    config.train.learning_rate = 1e-4  # sec. V-A
    config.train.momentum = 0.9  # sec. V-A
    config.train.weight_decay = 5e-4  # sec. V-A
    config.train.epochs = 500  # "maximum iteration number is set to 500" (sec. V-A), read as epochs
    config.train.stop_loss = 0.5  # "the stopping criterion for SGD loss is set to 0.5" (sec. V-A), per fold
    config.train.batch_size = 64  # not given in the paper; the authors' released code uses 64
    config.train.loss = "cross_entropy"  # eq. 9 with all sample weights 1
    return config
