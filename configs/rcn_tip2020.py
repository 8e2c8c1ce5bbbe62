"""Xia et al., TIP 2020 (shallow RCN): one config per table row the project can run, named after the table.

    mer-jax build megc2019 --manual_dir DIR --data_dir runs/tfds
    mer-jax train --config configs/rcn_tip2020.py:table5_rcn_f --config.data.data_dir=runs/tfds \
        --workdir runs/table5_rcn_f

DIR: the unpacked data sets (docs/data.md). Expected time: not measured for any row (no accelerator
was lent); the paper's hours on one Tesla K80 are the table6 rows' (1.0 to 1.8 h). Expected result:
not run for any row; `ROWS` holds the paper's numbers (table5_rcn_f: UAR 0.7052, UF1 0.7164 on MEGC2019).

Every row is configs/rcn_megc2019.py (the MEGC2019 composite's 60 x 60 u, v, strain maps, LOSO over
68 subjects, the training of sec. V-A) with the row's model, feature maps M and pooling size K:

  table2_<model>_fm<M>_pool<K>   Table II: rcn, rcn_a, rcn_s, rcn_w, rcn_p, rcn_c, rcn_f;
                                 M in 16, 32, 64; K in 5, 7 (UAR)
  table5_<model>                 Table V: rcn_a (M 64, K 7), rcn_s (16, 5), rcn_w (32, 7),
                                 rcn_f (32, 5), sec. V-D's optimal values (UAR and UF1,
                                 on MEGC2019 and per source data set)
  table6_<model>_fm<M>_pool<K>   Table VI at 60 x 60: rcn, rcn_a, rcn_s, rcn_w, rcn_f with
                                 (M, K) = (16, 5) or (64, 9) (hours to train and test all folds)

Table III's "without MM" rows at 60 x 60 are Table II's M = 16 rows. docs/reproduction.md lists the
rows with their commands, and those the project cannot run (Tables III with MM or at 100 x 100, IV)
with the reason.
"""

from mer_jax.config import sibling_config, table_row

_TABLE2_MODELS = ("rcn", "rcn_a", "rcn_s", "rcn_w", "rcn_p", "rcn_c", "rcn_f")
# UAR per model in _TABLE2_MODELS order, for M = 16, 32, 64.
_TABLE2 = {
    5: ((0.6773, 0.6695, 0.6571), (0.6891, 0.6869, 0.7055), (0.7106, 0.6800, 0.6801), (0.6889, 0.6848, 0.6892),
        (0.6826, 0.6757, 0.6643), (0.6829, 0.6692, 0.6578), (0.6948, 0.7052, 0.6918)),
    7: ((0.6724, 0.6638, 0.6461), (0.6892, 0.7052, 0.7190), (0.7106, 0.7146, 0.6848), (0.6901, 0.7100, 0.6815),
        (0.6892, 0.6862, 0.6673), (0.6796, 0.6787, 0.6703), (0.6915, 0.7005, 0.6901)),
}
# Table V: (M, K) and (UAR, UF1) on MEGC2019, SMIC, CASME II, SAMM.
_TABLE5 = {
    "rcn_a": ((64, 7), ((0.7190, 0.7432), (0.6441, 0.6326), (0.8123, 0.8512), (0.6715, 0.7601))),
    "rcn_s": ((16, 5), ((0.7106, 0.7466), (0.6572, 0.6519), (0.7914, 0.8360), (0.6565, 0.7647))),
    "rcn_w": ((32, 7), ((0.7100, 0.7422), (0.6600, 0.6584), (0.8131, 0.8522), (0.6164, 0.7164))),
    "rcn_f": ((32, 5), ((0.7052, 0.7164), (0.5980, 0.5991), (0.8087, 0.8563), (0.6771, 0.6976))),
}
_TABLE5_COLUMNS = ("megc2019", "smic", "casme2", "samm")
# Table VI, 60 x 60 column: hours for all 68 subjects' training and testing.
_TABLE6 = {
    (16, 5): {"rcn": 1.0, "rcn_a": 1.1, "rcn_s": 1.1, "rcn_w": 1.1, "rcn_f": 1.1},
    (64, 9): {"rcn": 1.7, "rcn_a": 1.8, "rcn_s": 1.8, "rcn_w": 1.8, "rcn_f": 1.8},
}


def _rows() -> dict[str, dict]:
    rows = {}
    for pool, per_model in _TABLE2.items():
        for model, uars in zip(_TABLE2_MODELS, per_model, strict=True):
            for features, uar in zip((16, 32, 64), uars, strict=True):
                rows[f"table2_{model}_fm{features}_pool{pool}"] = dict(
                    model=model, features=features, pool=pool, paper={"uar": uar}
                )
    for model, ((features, pool), scores) in _TABLE5.items():
        paper = {f"{column}_{metric}": value for column, pair in zip(_TABLE5_COLUMNS, scores, strict=True)
                 for metric, value in zip(("uar", "uf1"), pair, strict=True)}
        rows[f"table5_{model}"] = dict(model=model, features=features, pool=pool, paper=paper)
    for (features, pool), hours in _TABLE6.items():
        for model, value in hours.items():
            rows[f"table6_{model}_fm{features}_pool{pool}"] = dict(
                model=model, features=features, pool=pool, paper={"hours": value}
            )
    return rows


ROWS = _rows()


def get_config(row: str | None = None):
    """The config of table row `row` (a key of ROWS); ValueError listing them for any other."""
    spec = table_row(ROWS, row, "configs/rcn_tip2020.py:table5_rcn_f")
    config = sibling_config(__file__, "rcn_megc2019")
    config.model.name = spec["model"]
    config.model.features = spec["features"]
    config.model.pool_size = spec["pool"]
    return config
