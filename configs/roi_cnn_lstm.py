"""Aouayeb et al., MLSP 2019: six facial regions, a CNN per region, an LSTM per region, on the MEGC2019 composite.

    mer-jax build megc2019 --builder_config regions --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/roi_cnn_lstm.py --config.data.data_dir=runs/tfds --workdir runs/roi

DIR: the unpacked data sets (docs/data.md). Expected time: not measured (an accelerator's job; none
was lent). Expected result: not run; the paper's UF1 is 0.902 on the MEGC2019 composite (Aouayeb
et al., MLSP 2019, Table 2). configs/roi_cnn_lstm_synthetic.py is the CPU-sized version.

Trained in two stages per fold (mer_jax/methods/six_regions/stages.py). First the region CNNs, on
single frames with "not me" region labels (sec. 3.2). Then, with the CNNs frozen, the LSTMs and the
classifier on every frame's features (sec. 3.3). Leave-one-subject-out on SMIC + CASME II + SAMM in
three classes (sec. 4.1.1, MEGC 2019). Every number below is the paper's (sec. 4.1.2) unless its
comment says it is a choice. The paper states no optimizer or learning rate (docs/models.md, "Six
regions, CNN + LSTM"). At this size stage 1 is ~100 epochs of ~30k frames x 6 regions per fold, for
68 folds: a job for an accelerator (docs/scale.md).
"""

import ml_collections

from mer_jax.config import base_config
from mer_jax.models import model_config
from mer_jax.data.region_geometry import REGION_SIZES


def get_config():
    config = base_config("roi_cnn")
    config.model = model_config("roi_lstm")  # the model that scores the clips, stage 2's; each stage names its own
    config.data.name = "megc2019/regions"  # mer-jax build megc2019 --builder_config regions
    config.data.labels = "megc2019"  # negative, positive, surprise (sec. 4.1.2: "3 neurons")
    config.data.num_classes = 3
    config.data.frames = 0  # every frame onset..offset, padded at the end and masked (sec. 4.1.2 pads to 500)
    canvas = (max(h for h, _ in REGION_SIZES), max(w for _, w in REGION_SIZES))
    config.data.input_shape = (0, 6, *canvas, 1)  # (T, regions, H, W, grey); T: the longest clip, set when known
    config.protocol.name = "loso"  # sec. 4.1.1: leave-one-subject-out, MEGC 2019

    config.train.optimizer = "adam"  # a choice: the paper (keras 2.2.4) names none; Adam is keras's usual one
    config.train.learning_rate = 1e-3  # a choice: keras's Adam default
    config.train.momentum = 0.0  # unused by Adam
    config.train.weight_decay = 0.0  # the paper mentions none
    config.train.loss = "focal"  # sec. 3.4, eq. 2
    config.train.focal_gamma = 2.0  # unstated in the paper: Lin et al.'s (ICCV 2017) value
    config.train.class_weight = "inverse_frequency"  # eq. 2's alpha, from each fold's own training labels

    config.stages = ml_collections.ConfigDict()
    config.stages.cnn = ml_collections.ConfigDict({
        "model": model_config("roi_cnn"),  # sec. 3.2, 4.1.2
        "train": {"batch_size": 64, "epochs": 100},  # sec. 4.1.2
    })
    config.stages.lstm = ml_collections.ConfigDict({
        "model": model_config("roi_lstm"),  # sec. 3.3, 4.1.2
        "train": {"batch_size": 244, "epochs": 60},  # sec. 4.1.2
    })
    return config
