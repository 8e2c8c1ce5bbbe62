"""Xia et al., TMM 2019 (STRCN): one config per table row the project can run, named after the table.

    mer-jax build casme2 --builder_config flow_strcn_g --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/strcn_tmm2019.py:table2_casme2_strcn_g --config.data.data_dir=runs/tfds \
        --workdir runs/table2_casme2_strcn_g

DIR: the unpacked data sets (docs/data.md). Expected time: not measured for any row. Expected
result: not run for any row; `ROWS` holds the paper's numbers (table2_casme2_strcn_g: accuracy
0.803, F1-score 0.747).

A row is `table2_<data set>_<model>` (Table II, LOSO), `table3_<data set>_<model>` (Table III,
LOVO: 5% of the videos held out per evaluation, sec. IV-B) or
`table4_<loso|lovo>_<data set>_<model>_without_<bl|da>` (Table IV's ablations: the balanced loss
or the data augmentation removed). Data sets: smic, casme2, samm; models: strcn_a, strcn_g.
Table IV's "(Ours)" rows are Tables II and III's configs. Each row reads the single data set's
build (`strcn_a` or `flow_strcn_g`) in the paper's classes (sec. IV-B): positive, negative,
surprise and other for CASME II and SAMM, the first three for SMIC.

`ROWS` maps each row to the paper's numbers: accuracy, and the F1-score where the table gives one.
docs/reproduction.md lists every row with its command, and the rows the project cannot run
(Tables V and VI) with the reason.
"""

from mer_jax.config import sibling_config, table_row
from mer_jax.data.labels import strcn4_classes

DATASETS = ("smic", "casme2", "samm")  # the tables' column order
MODELS = ("strcn_a", "strcn_g")
BUILDS = {"strcn_a": "strcn_a", "strcn_g": "flow_strcn_g"}

# (accuracy, F1-score) per data set in DATASETS order; Table II (LOSO) and Table III (LOVO).
_TABLE2 = {
    "strcn_a": ((0.531, 0.514), (0.560, 0.542), (0.545, 0.492)),
    "strcn_g": ((0.723, 0.695), (0.803, 0.747), (0.786, 0.741)),
}
_TABLE3 = {
    "strcn_a": ((0.758, 0.714), (0.841, 0.784), (0.836, 0.792)),
    "strcn_g": ((0.749, 0.710), (0.833, 0.807), (0.827, 0.781)),
}
# Table IV: accuracy per data set, by protocol and ablation.
_TABLE4 = {
    ("lovo", "strcn_a", "da"): (0.583, 0.593, 0.617),
    ("lovo", "strcn_g", "da"): (0.605, 0.605, 0.641),
    ("lovo", "strcn_a", "bl"): (0.737, 0.829, 0.831),
    ("lovo", "strcn_g", "bl"): (0.741, 0.818, 0.822),
    ("loso", "strcn_a", "da"): (0.481, 0.471, 0.488),
    ("loso", "strcn_g", "da"): (0.576, 0.621, 0.642),
    ("loso", "strcn_a", "bl"): (0.541, 0.557, 0.538),
    ("loso", "strcn_g", "bl"): (0.718, 0.802, 0.775),
}


def _rows() -> dict[str, dict]:
    rows = {}
    for table, protocol, numbers in (("table2", "loso", _TABLE2), ("table3", "lovo", _TABLE3)):
        for model in MODELS:
            for dataset, (accuracy, f1) in zip(DATASETS, numbers[model], strict=True):
                rows[f"{table}_{dataset}_{model}"] = dict(
                    protocol=protocol, dataset=dataset, model=model, without=None, accuracy=accuracy, f1=f1
                )
    for (protocol, model, without), accuracies in _TABLE4.items():
        for dataset, accuracy in zip(DATASETS, accuracies, strict=True):
            rows[f"table4_{protocol}_{dataset}_{model}_without_{without}"] = dict(
                protocol=protocol, dataset=dataset, model=model, without=without, accuracy=accuracy, f1=None
            )
    return rows


ROWS = _rows()


def get_config(row: str | None = None):
    """The config of table row `row` (a key of ROWS); ValueError listing them for any other."""
    spec = table_row(ROWS, row, "configs/strcn_tmm2019.py:table2_casme2_strcn_g")
    config = sibling_config(__file__, spec["model"])  # the model, input and training of sec. IV-A
    config.data.name = f"{spec['dataset']}/{BUILDS[spec['model']]}"
    config.data.labels = "strcn4"
    config.data.num_classes = len(strcn4_classes((spec["dataset"],)))  # 4; SMIC 3 (sec. IV-B)
    config.protocol.name = spec["protocol"]
    if spec["without"] == "bl":
        config.train.loss = "cross_entropy"  # "all weights of samples set to beta = 1" (sec. IV-E-1)
    if spec["without"] == "da":
        config.data.augment = False  # "only the original samples are used" (sec. IV-E-1)
    return config
