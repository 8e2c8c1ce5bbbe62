"""The `mer-jax` command line: describe's table and counts, overrides, and usage errors."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mer_jax(*args):
    return subprocess.run(
        [sys.executable, "-m", "mer_jax.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


@pytest.fixture
def mer_jax_here(capsys, monkeypatch):
    """`mer-jax ARGS` run in this process (no interpreter and JAX start per call): its exit code, stdout and
    stderr as the process would give them (`sys.exit(message)` prints the message to stderr and exits 1)."""
    from mer_jax import cli

    monkeypatch.chdir(REPO)

    def run(*args):
        capsys.readouterr()
        try:
            cli.main(list(args))
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) or exit.code is None else 1
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["mer-jax", *args], code or 0, out, err)

    return run


def test_describe_prints_table_params_and_flops_with_overrides():
    result = mer_jax("describe", "--config", "configs/rcn_xia2020_code.py", "--config.model.features=32")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # 10 M^2 + 84 M + K^2 M C + C at M=32, K=5, C=3 (docs/models.md).
    assert "params: 15331" in lines
    flops = [int(line.split()[1]) for line in lines if line.startswith("flops: ")]
    # Multiply-adds of the convolutions and the classifier: the 5x5 stem on its 56 x 56 output (then
    # pooled to 28 x 28), the 1x1 feed-forward conv once and the shared 3x3 recurrent conv twice on 28 x 28.
    m = 32
    multiply_adds = 56 * 56 * 25 * 3 * m + 28 * 28 * m * m + 2 * 28 * 28 * 9 * m * m + 5 * 5 * m * 3
    # XLA counts a multiply-add as 2 and adds BatchNorm, ReLU, pooling and the sums (measured: 1.15x).
    assert len(flops) == 1 and 2 * multiply_adds <= flops[0] <= 1.25 * 2 * multiply_adds, flops
    assert "rconv" in result.stdout and "classifier" in result.stdout


def test_load_config_applies_overrides_whatever_the_processs_own_arguments():
    """ml_collections looks for override flags in sys.argv: a library caller's (a test's, a benchmark's) own
    arguments must not decide whether its overrides apply."""
    from mer_jax.cli import load_config

    config = load_config(str(REPO / "configs" / "quickstart.py"), ["--config.model.name=rcn_f", "--config.train.epochs=3"])
    assert (config.model.name, config.train.epochs) == ("rcn_f", 3)


def test_describe_strcn_g():
    result = mer_jax("describe", "--config", "configs/strcn_g.py", "--config.model.num_rcls=2")
    assert result.returncode == 0, result.stderr
    m, c = 64, 4  # the four STRCN classes (Xia et al., TMM 2019, sec. IV-B)
    rcl = (m * m + m + 2 * m) + (9 * m * m + m) + 3 * 2 * m
    expected = (25 * 2 * m + m + 2 * m) + 2 * rcl + m * c + c
    assert f"params: {expected}" in result.stdout.splitlines()


def test_describe_tlcnn_counts_the_frame_cnn_and_the_lstm():
    result = mer_jax("describe", "--config", "configs/tlcnn.py")
    assert result.returncode == 0, result.stderr
    stages = {part.splitlines()[0].split(":")[0]: part for part in result.stdout.split("stage ")[1:]}
    assert list(stages) == ["expressions", "frames", "clips"]
    assert "params: 80260740" in stages["frames"].splitlines()  # Wang et al., Neurocomputing 2018, sec. 3.4
    assert "9 classes" in stages["expressions"].splitlines()[0]  # eq. 11
    assert "lstm 4457472" in stages["clips"]  # 4 gates x (4096 inputs + 256 units + 1) x 256 units


def test_usage_errors_are_clear(mer_jax_here):
    """In this process but for the first call: `mer_jax.cli.main` is what the `mer-jax` script runs."""

    result = mer_jax("fit", "--config", "configs/quickstart.py")
    assert result.returncode != 0 and "invalid choice: 'fit'" in result.stderr
    assert "{synth,build,train,search,describe,predict}" in result.stderr
    result = mer_jax_here("train", "--config", "configs/quickstart.py")
    assert result.returncode != 0 and "the following arguments are required: --workdir" in result.stderr
    result = mer_jax_here("describe", "--config", "configs/quickstart.py", "--config.model.name=resnet")
    assert result.returncode != 0 and "unknown model.name 'resnet'" in result.stderr
    result = mer_jax_here("describe", "--config", "configs/quickstart.py", "--config.train.epochz=3")
    assert result.returncode != 0 and "epochz" in result.stderr and "Traceback" not in result.stderr
    result = mer_jax_here("describe", "--config", "configs/nothing_here.py")
    assert result.returncode != 0 and "nothing_here.py" in result.stderr and "Traceback" not in result.stderr
    result = mer_jax_here("synth", "--out", "x", "--config.train.epochs=3")
    assert result.returncode != 0 and "unrecognized arguments: --config.train.epochs=3" in result.stderr
    result = mer_jax_here("synth", "--out", "x", "--expression_scale=-1")  # reaches write_synthetic_composite
    assert result.returncode != 0 and "expression_scale must be >= 0; got -1.0" in result.stderr


@pytest.mark.parametrize("command", ["synth", "build", "train", "search", "describe", "predict"])
def test_every_subcommand_has_help(command):
    result = mer_jax(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mer-jax {command} ")


def test_build_errors_say_what_goes_where(tmp_path, mer_jax_here):

    result = mer_jax("build", "casme2", "--manual_dir", str(tmp_path), "--data_dir", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "mer-jax: error: casme2: missing" in result.stderr
    assert "CASME2-coding-20140508.xlsx" in result.stderr and "CASME2_RAW_selected/sub01/EP02_01f" in result.stderr
    result = mer_jax_here("build", "casme3", "--manual_dir", str(tmp_path))
    assert "unknown dataset 'casme3'; builders: casme2, samm, smic, megc2019, synthetic_me" in result.stderr
    result = mer_jax_here("train", "--config", "configs/rcn_megc2019.py", "--workdir", str(tmp_path / "run"),
                     f"--config.data.data_dir={tmp_path}")
    assert result.returncode != 0 and "no built data set 'megc2019/flow60'" in result.stderr
    assert "mer-jax build megc2019 --builder_config flow60" in result.stderr
