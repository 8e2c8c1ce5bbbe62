"""Wang et al., Neurocomputing 2018: TLCNN, a deep frame CNN transferred twice, then trained jointly with an LSTM.

    mer-jax build casme2 --builder_config tim32 --manual_dir DIR --data_dir runs/tfds
    mer-jax build kdef --builder_config frontal --manual_dir DIR --data_dir runs/tfds
    mer-jax build rafd --builder_config frontal --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/tlcnn.py --config.data.data_dir=runs/tfds --workdir runs/tlcnn

DIR: the unpacked data sets (docs/data.md). Expected time: not measured (an accelerator's job; none
was lent). Expected result: not run; the paper's accuracy is 71.2% at TIM32 in 5 folds, on its
clips of three data sets, not CASME II alone (Wang et al., Neurocomputing 2018, Table 3; below).
configs/tlcnn_synthetic.py is the CPU-sized version.

Three stages (mer_jax/methods/tlcnn/stages.py), every number the paper's (sec. 3.4-3.5,
4.1-4.2) unless its comment says it is a choice:
  expressions (a): `tlcnn_cnn` on KDEF + Radboud expression images, eq. 11's
                   nine classes, 4/5 of the subjects to train, 1/5 to decide
                   when to stop; trained once for all folds.
  frames (b):      each fold's CNN from stage a's, on single frames of its
                   training clips, four classes.
  clips (c):       each fold's CNN + LSTM (`tlcnn`) from its stage-b CNN, on
                   16 consecutive frames drawn from each training clip.
TLCNN(E): --config.stages.expressions.enabled=False; TLCNN(EM): also
--config.stages.frames.enabled=False (sec. 4.3).

The paper's clips are SMIC + CASME + CASME II in four classes (positive, negative, surprise,
others), TIM-normalised to 32 frames (or 64: `megc2019/tim64`, data.input_shape (64, ...)), in five
folds of clips. mer-jax has no CASME builder, so this runs on CASME II's clips in STRCN's four
classes (the same four); other builds and LOSO are flags (docs/models.md, "TLCNN"). The paper's
iteration counts become epochs at its five-fold sizes: stage b has 14,336 training frames / 224 =
64 iterations an epoch, stage c 448 training clips / 16 = 28.
"""

import ml_collections

from mer_jax.config import base_config
from mer_jax.models import model_config

ITERATIONS_PER_EPOCH = {"frames": 14336 // 224, "clips": 448 // 16}  # sec. 4.2, at the paper's five-fold sizes


def get_config():
    config = base_config("tlcnn_cnn")
    config.model = ml_collections.ConfigDict({"name": "tlcnn"})  # the model that scores the clips, stage c's; each stage names its own
    config.data.name = "casme2/tim32"  # mer-jax build casme2 --builder_config tim32 (sec. 4.2: TIM32)
    config.data.labels = "strcn4"  # negative, positive, surprise, other: the paper's four classes (sec. 4.2)
    config.data.num_classes = 4
    config.data.input_shape = (32, 240, 320, 3)  # sec. 3.4: 240 x 320 RGB frames; sec. 4.2: TIM32
    # 442 clips x 32 frames x 240 x 320 x 3 are 3.3 GB (6.5 GB at TIM64): decoded once into a memory-mapped
    # file and sent to the device a call's batches at a time, so neither host nor device holds them all
    config.data.memmap = True
    config.train.data_on_device = False
    config.protocol.name = "kfold"  # sec. 4.2: the clips split into five parts (LOSO: --config.protocol.name=loso)
    config.protocol.k = 5

    config.train.optimizer = "sgd"
    config.train.momentum = 0.9  # sec. 4.2
    config.train.weight_decay = 5e-4  # a choice: unstated; Caffe's reference nets' value
    config.train.schedule = "step"  # sec. 4.2: "decreased by an order of magnitude" every so many iterations
    config.train.lr_decay = 0.1
    config.train.loss = "cross_entropy"  # sec. 3.4: softmax and its loss

    cnn = model_config("tlcnn_cnn")
    config.stages = ml_collections.ConfigDict()
    config.stages.expressions = ml_collections.ConfigDict({
        "enabled": True,  # False: TLCNN(E)
        "model": cnn,
        "data": ("kdef/frontal", "rafd/frontal"),  # sec. 4.1: KDEF's 980 and Radboud's 1608 images (of 3,383)
        "input_shape": (240, 320, 3),  # the face crops as stored
        "validation_fraction": 0.2,  # sec. 4.1: "four parts are used for training, the other part for validation"
        "stop_delta": 0.005,  # sec. 4.1's "small threshold": unstated, a choice
        "stop_patience": 10,  # its "contiguous iterations", as epochs: unstated, a choice
        "transfer": (),
        # unstated in the paper: stage b's batch and learning rate, and at most 300 epochs (the rule stops it)
        "train": {"batch_size": 224, "learning_rate": 1e-3, "schedule": "constant", "epochs": 300},
    })
    config.stages.frames = ml_collections.ConfigDict({
        "enabled": True,  # False (with expressions): TLCNN(EM)
        "model": cnn,
        "transfer": ("trunk", "fc7"),  # every layer but FC8 (nine classes before, four here)
        "train": {
            "batch_size": 224,  # sec. 4.2
            "learning_rate": 1e-3,  # sec. 4.2
            "lr_step_epochs": 2560 // ITERATIONS_PER_EPOCH["frames"],  # sec. 4.2: every 2560 iterations
            "epochs": 10000 // ITERATIONS_PER_EPOCH["frames"],  # sec. 4.2: "at the time of 10000 iterations"
        },
    })
    config.stages.clips = ml_collections.ConfigDict({
        "model": model_config("tlcnn"),  # sec. 3.5
        "transfer": ("trunk",),  # C1..FC6, whose FC6 features feed the LSTM (sec. 3.5)
        "train": {
            "batch_size": 16,  # sec. 4.2: "each batch includes 16 videos"
            "learning_rate": 1e-2,  # sec. 4.2
            "lr_step_epochs": 5600 // ITERATIONS_PER_EPOCH["clips"],  # sec. 4.2: after 5600 iterations
            "epochs": 20000 // ITERATIONS_PER_EPOCH["clips"],  # sec. 4.2: "stopped after 20000 iterations"
        },
    })
    return config
