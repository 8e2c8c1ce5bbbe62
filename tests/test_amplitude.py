"""benchmarks/amplitude.py: every method names a config that loads and builds that exist, a step runs once and
records its time and memory, and the results come out as JSON, a table and a plot."""

import json
import sys
from pathlib import Path

import pytest

from benchmarks import amplitude
from mer_jax.cli import load_config
from mer_jax.data.clips.builder import CONFIGS

REPO = Path(__file__).resolve().parents[1]


LINES = {"rcn": ("rcn", "rcn"), "rcn_a": ("rcn", "rcn_a"), "rcn_f": ("rcn", "rcn_f"), "strcn_a": ("strcn", "strcn_a"),
         "strcn_g": ("strcn", "strcn_g"), "roi_cnn_lstm": ("six_regions", "roi_lstm"), "tlcnn": ("tlcnn", "tlcnn")}


@pytest.mark.parametrize("method", list(amplitude.METHODS))
def test_each_method_names_a_config_that_loads_and_reads_its_first_build(method):
    spec = amplitude.METHODS[method]
    config = load_config(str(REPO / spec.config), list(spec.overrides))
    assert config.data.name == spec.builds[0]
    clip_configs = {c.name for c in CONFIGS}
    for build in spec.builds:
        dataset, name = build.split("/")
        assert dataset == "kdef" or name in clip_configs, build
    assert config.data.num_classes == amplitude.CLASSES
    assert (config.method, config.model.name) == LINES[method]  # the method and model the line stands for
    if "stages" in config and "expressions" in config.stages:  # TLCNN's stage a reads the other builds
        assert tuple(config.stages.expressions.data) == spec.builds[1:]


def test_a_step_runs_once_and_records_its_seconds_and_peak_memory(tmp_path):
    marker = tmp_path / "runs"
    command = [sys.executable, "-c", f"import pathlib; p = pathlib.Path({str(marker)!r}); "
               "p.write_text(p.read_text() + 'x' if p.exists() else 'x'); bytearray(50_000_000)"]
    first = amplitude.run_step("probe", command, tmp_path / "steps")
    again = amplitude.run_step("probe", command, tmp_path / "steps")
    assert marker.read_text() == "x"  # the second call reused the record
    assert again == first
    assert first["peak_rss_bytes"] > 50_000_000 and first["seconds"] >= 0


def test_a_failing_step_names_its_log(tmp_path):
    with pytest.raises(RuntimeError, match="probe failed.*probe.log"):
        amplitude.run_step("probe", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
    assert not (tmp_path / "probe.json").exists()


def test_a_record_of_another_command_is_refused_not_reused(tmp_path):
    amplitude.run_step("probe", [sys.executable, "-c", "pass"], tmp_path)
    with pytest.raises(ValueError, match="probe.json was made by another command"):
        amplitude.run_step("probe", [sys.executable, "-c", "print(1)"], tmp_path)


def test_fit_reads_one_models_and_each_stages_training_accuracy_and_prior():
    single = {"fit": {"final_train_accuracy": 0.9, "final_train_loss": 0.2, "train_prior": 0.56}}
    assert amplitude.stage_fit(single) == {"model": {"train_accuracy": 0.9, "train_prior": 0.56}}
    staged = {"stages": {"cnn": {"final_train_accuracy": 0.4, "train_prior": 0.47},
                         "lstm": {"final_train_accuracy": 0.7, "train_prior": 0.57}}}
    assert list(amplitude.stage_fit(staged)) == ["cnn", "lstm"]
    assert amplitude.stage_fit(staged)["lstm"]["train_accuracy"] == 0.7


def test_results_are_written_as_json_a_plot_and_a_table(tmp_path):
    cells = [
        {"method": method, "label": amplitude.METHODS[method].label, "scale": scale, "uf1": uf1}
        for method, scale, uf1 in (("strcn_g", 10.0, 0.7), ("rcn", 10.0, 0.96), ("rcn", 0.0, 0.3))
    ]
    amplitude.write_results(tmp_path, cells)
    written = json.loads((tmp_path / "amplitude.json").read_text())
    assert [(c["method"], c["scale"]) for c in written] == [("rcn", 0.0), ("rcn", 10.0), ("strcn_g", 10.0)]
    assert (tmp_path / "amplitude.png").read_bytes()[:4] == b"\x89PNG"
    lines = amplitude.table(cells).splitlines()
    assert lines[0] == "| method | 0 | 10 | learns (UF1 >= 0.5) from | control (0) <= chance + 0.1 |"
    assert lines[2] == "| RCN (main job) | 0.30 | 0.96 | 10 | yes |"
    assert lines[3] == "| STRCN-G |  | 0.70 | 10 | not run |"
    assert amplitude.table(cells[2:]).splitlines()[2] == "| RCN (main job) | 0.30 | not at the amplitudes run | yes |"
    cells[2]["uf1"] = 0.45
    assert amplitude.table(cells).splitlines()[2] == "| RCN (main job) | 0.45 | 0.96 | 10 | **no** |"
