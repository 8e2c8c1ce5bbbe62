"""The table-row configs of Xia et al., TMM 2019 (configs/strcn_tmm2019.py) and TIP 2020 (configs/rcn_tip2020.py).

Every row loads through the command line's loader (`--config FILE:ROW`) and
resolves to the table's data set, classes, protocol, model and settings.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from mer_jax.cli import load_config
from mer_jax.data.labels import MEGC2019_CLASSES, strcn4_classes
from mer_jax.models import model_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def rows_of(name: str) -> dict:
    spec = importlib.util.spec_from_file_location(f"table_rows_{name}", CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ROWS


STRCN_ROWS = rows_of("strcn_tmm2019")
RCN_ROWS = rows_of("rcn_tip2020")


def test_the_tables_rows_are_all_there():
    # Table II and III: 2 models x 3 data sets each; Table IV: 2 protocols x 2 ablations x 2 models x 3 data sets.
    assert sum(row.startswith("table2_") for row in STRCN_ROWS) == 6
    assert sum(row.startswith("table3_") for row in STRCN_ROWS) == 6
    assert sum(row.startswith("table4_") for row in STRCN_ROWS) == 24
    # Table II: 7 models x 3 M x 2 K; Table V: 4 models; Table VI at 60 x 60: 5 models x 2 (M, K).
    assert [sum(row.startswith(f"table{t}_") for row in RCN_ROWS) for t in (2, 5, 6)] == [42, 4, 10]
    assert STRCN_ROWS["table2_casme2_strcn_g"]["accuracy"] == 0.803  # Table II, CASME II, STRCN-G
    assert RCN_ROWS["table5_rcn_f"]["paper"]["megc2019_uf1"] == 0.7164  # Table V, RCN-F, MEGC2019 UF1


@pytest.mark.parametrize("row", sorted(STRCN_ROWS))
def test_strcn_rows_resolve_to_the_tables_setting(row):
    config = load_config(f"{CONFIGS / 'strcn_tmm2019.py'}:{row}", [])
    table, *rest = row.split("_")
    protocol = {"table2": "loso", "table3": "lovo"}.get(table) or rest[0]
    dataset = next(name for name in ("smic", "casme2", "samm") if f"_{name}_" in row)
    model = "strcn_a" if "_strcn_a" in row else "strcn_g"
    assert config.protocol.name == protocol
    assert config.protocol.test_fraction == 0.05  # LOVO: 5% of the videos per evaluation (sec. IV-B)
    assert config.model.name == model
    assert config.data.name == f"{dataset}/{'strcn_a' if model == 'strcn_a' else 'flow_strcn_g'}"
    assert config.data.labels == "strcn4"
    assert config.data.num_classes == len(strcn4_classes((dataset,))) == (3 if dataset == "smic" else 4)
    expected_shape = (math.floor(config.data.top_p * 48 * 64), 30, 3) if model == "strcn_a" else (245, 300, 2)
    assert tuple(config.data.input_shape) == expected_shape
    assert config.train.loss == ("cross_entropy" if row.endswith("without_bl") else "balanced")
    assert config.data.get("augment", True) is (not row.endswith("without_da"))
    assert set(config.model) == set(model_config(model))  # no key the model does not read


@pytest.mark.parametrize("row", sorted(RCN_ROWS))
def test_rcn_rows_resolve_to_the_tables_setting(row):
    config = load_config(f"{CONFIGS / 'rcn_tip2020.py'}:{row}", [])
    table = row.split("_")[0]
    model = config.model
    named = f"{table}_{model.name}" + ("" if table == "table5" else f"_fm{model.features}_pool{model.pool_size}")
    assert row == named
    if table == "table5":  # sec. V-D's optimal M and K
        assert (model.features, model.pool_size) == {"rcn_a": (64, 7), "rcn_s": (16, 5), "rcn_w": (32, 7),
                                                     "rcn_f": (32, 5)}[model.name]
    assert config.data.name == "megc2019/flow60" and tuple(config.data.input_shape) == (60, 60, 3)
    assert config.data.num_classes == len(MEGC2019_CLASSES) and config.protocol.name == "loso"
    assert (config.train.epochs, config.train.stop_loss, config.model.dropout) == (500, 0.5, 0.5)  # sec. V-A


def test_a_row_that_is_not_in_the_table_names_the_rows():
    with pytest.raises(ValueError, match="table2_casme2_strcn_g"):
        load_config(f"{CONFIGS / 'strcn_tmm2019.py'}:table9_casme2_strcn_g", [])
    with pytest.raises(ValueError, match="table5_rcn_f"):
        load_config(str(CONFIGS / "rcn_tip2020.py"), [])
