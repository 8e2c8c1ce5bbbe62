"""Two local CPU processes (jax.distributed over gloo) train the folds of one run: the same as one process,
also when the pair was stopped after an epoch and started again (every process resumes its own folds)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from mer_jax.core import distributed, final_model

REPO = Path(__file__).resolve().parents[1]
# A quick start small enough for seconds: 6 folds (2 subjects per data set), a final model; 2 epochs unless told.
OVERRIDES = [
    "--config.data.toy_flow.subjects_per_dataset=(2,2,2)", "--config.data.toy_flow.clips_per_subject=8",
    "--config.data.toy_flow.size=24", "--config.data.input_shape=(24,24,3)", "--config.model.pool_size=3",
    "--config.train.batch_size=8", "--config.train.final_model=True",
    "--config.train.checkpoint_every=1",
    "--config.train.strategy=loop",  # not timed: runs started side by side could time (and choose) differently
]


def mer_jax_train(workdir: Path, *extra: str, epochs: int = 2) -> subprocess.Popen:
    command = [sys.executable, "-m", "mer_jax.cli", "train", "--config", "configs/quickstart.py",
               "--workdir", str(workdir), "--no-progress", *OVERRIDES, f"--config.train.epochs={epochs}", *extra]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", **COMPILE_CACHE})


# The session's compilation cache (conftest.py), so the runs read back the programs the first one compiled.
COMPILE_CACHE = {k: v for k, v in os.environ.items() if k.startswith("JAX_") and "CACHE" in k}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


def pair(workdir: Path, epochs: int = 2) -> list[subprocess.Popen]:
    """Processes 0 and 1 of one run in `workdir` (shared, as hosts share a bucket)."""
    address = f"localhost:{free_port()}"
    return [mer_jax_train(workdir, f"--coordinator_address={address}", "--num_processes=2", f"--process_id={p}",
                          epochs=epochs) for p in (0, 1)]


def checkpoint_payload(step_dir: Path) -> dict:
    """A checkpoint's arrays as numpy, read in this one process (each leaf (processes, folds, ...))."""
    checkpointer = ocp.StandardCheckpointer()
    stored = checkpointer.metadata(step_dir / "payload").item_metadata
    return checkpointer.restore(step_dir / "payload", jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), stored))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The run in one process; in two, stopped after its first epoch, then started again to resume."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    single = mer_jax_train(one)
    for process in pair(two, epochs=1):  # a pair stopped after one epoch, its checkpoint written
        finished(process)
    stopped = {"metrics": (two / "metrics.jsonl").read_text().splitlines(),
               "payload": checkpoint_payload(two / "checkpoints" / "1")}
    outputs = [finished(p) for p in (single, *pair(two))]
    return one, two, outputs, stopped


def test_two_processes_predict_as_one_and_only_process_0_writes(runs):
    one, two, (single_out, out_0, out_1), _ = runs
    report_one = json.loads((one / "report.json").read_text())
    report_two = json.loads((two / "report.json").read_text())
    assert report_two["predictions"] == report_one["predictions"]
    assert report_two["per_fold"] == report_one["per_fold"]
    assert "UF1" in out_0 and "UF1" not in out_1  # process 1 trains its folds and reports nothing
    # One report, one final model, one log.
    assert (two / "final_model").is_dir() and len((two / "metrics.jsonl").read_text().splitlines()) == 2
    x = np.random.default_rng(0).normal(size=(4, 24, 24, 3)).astype(np.float32)
    np.testing.assert_array_equal(final_model.load(two).probabilities(x), final_model.load(one).probabilities(x))


def test_a_stopped_pair_resumes_from_its_checkpoint(runs):
    _, two, _, stopped = runs
    # The checkpoint holds each process's own folds: 4 on process 0 (folds 0, 2, 4 and the final model's), 3 on 1.
    payload = stopped["payload"]
    assert payload["folds"].ravel().tolist() == [4, 3]
    assert payload["history"]["train_loss"].shape == (2, 4, 1)
    assert np.isfinite(payload["history"]["train_loss"][1, :3]).all()
    assert all(np.abs(leaf[1, :3]).sum() > 0 for leaf in jax.tree.leaves(payload["state"]) if leaf.dtype.kind == "f")
    # Started again, the pair trained epoch 1 only: epoch 0's record (its time included) was kept, not rewritten.
    assert len(stopped["metrics"]) == 1
    assert (two / "metrics.jsonl").read_text().splitlines()[0] == stopped["metrics"][0]


def test_initialize_without_settings_stays_single_process_and_partial_settings_are_refused():
    distributed.initialize()
    assert distributed.share(5).tolist() == [0, 1, 2, 3, 4]
    assert distributed.share(5, final_fold=4).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="--coordinator_address, --num_processes and --process_id together"):
        distributed.initialize("localhost:1234", None, 0)
