"""UF1 against expression amplitude for every method on the synthetic composite: does each one learn?

    python benchmarks/amplitude.py --out runs/amplitude
    python benchmarks/amplitude.py --out runs/amplitude --methods strcn_g --scales 10 0   # one or a few cells

For each amplitude (`mer-jax synth --expression_scale S`: 0 is the control
without any expression, 1 the composite as shipped, about a pixel at the
apex, 10 a macro-expression) it writes the composite once, builds what the
methods read once (methods reading the same build share it), trains each
method's CPU config (METHODS) with `mer-jax train` and records UF1, UAR,
accuracy, each stage's last-epoch training accuracy beside its training class
prior, the wall time and the peak resident memory of every command. Finished
steps are reused, so a stopped run goes on where it was and a cell added later
costs only itself. DIR/amplitude.json holds one object per method and
amplitude, DIR/amplitude.png UF1 against amplitude, one line per method, with
chance drawn. Results and times: README.md and docs/benchmarks.md
("Amplitude curves").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.0, 1.0, 2.0, 4.0, 10.0)
CLASSES = 3  # the MEGC2019 composite's negative, positive, surprise
CHANCE_UF1 = 1 / CLASSES  # a guess drawn uniformly at random
TARGET_UF1 = 0.6  # at amplitude 10
LEARNT_UF1 = 0.5  # "learns at this amplitude"


@dataclasses.dataclass(frozen=True)
class Method:
    """A line of the plot: a CPU config, the builds it reads ('dataset/config') and overrides of its keys."""

    label: str
    config: str
    builds: tuple[str, ...]
    overrides: tuple[str, ...] = ()


METHODS = {
    "rcn": Method("RCN (main job)", "configs/rcn_synth_megc2019.py", ("megc2019/flow60",)),
    "rcn_a": Method("RCN-A", "configs/rcn_synth_megc2019.py", ("megc2019/flow60",), ("--config.model.name=rcn_a",)),
    "rcn_f": Method("RCN-F (searched)", "configs/rcn_synth_megc2019.py", ("megc2019/flow60",),
                    ("--config.model.name=rcn_f",)),
    "strcn_a": Method("STRCN-A", "configs/strcn_a_synthetic.py", ("megc2019/strcn_a_single",)),
    "strcn_g": Method("STRCN-G", "configs/strcn_g_synthetic.py", ("megc2019/flow_strcn_g_single",)),
    "roi_cnn_lstm": Method("six regions CNN+LSTM", "configs/roi_cnn_lstm_synthetic.py", ("megc2019/regions",)),
    "tlcnn": Method("TLCNN", "configs/tlcnn_synthetic.py", ("megc2019/tim32", "kdef/all_angles")),
}


def scale_name(scale: float) -> str:
    return f"s{scale:g}"


def run_step(name: str, command: list[str], steps: Path) -> dict:
    """Runs `command` once and returns {command, seconds, peak_rss_bytes}; a finished step's record is reused.

    The peak is the largest resident set of the command or of any one process it waited for (os.wait4's
    ru_maxrss: a build's largest worker, not the sum of its workers). The output goes to steps/<name>.log.
    A record of the same step made by another command is an error, not reused.
    """
    shown = " ".join(command).replace(" ".join(cli_command()), "mer-jax")
    record_path = steps / f"{name}.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record["command"] != shown:
            raise ValueError(
                f"{record_path} was made by another command ({record['command']}), not {shown}: remove it and "
                "the step's output to run it again"
            )
        return record
    steps.mkdir(parents=True, exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {shown}", flush=True)
    start = time.perf_counter()
    with open(steps / f"{name}.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # e.g. Ctrl-C: the step is not left running
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {process.returncode}); its output: {steps / name}.log")
    record = {"command": shown, "seconds": round(seconds, 1), "peak_rss_bytes": usage.ru_maxrss * 1024}
    record_path.write_text(json.dumps(record))
    return record


def cli_command(*args: str) -> list[str]:
    """`mer-jax ARGS` run by this interpreter."""
    return [sys.executable, "-m", "mer_jax.cli", *args]


def synth(out: Path, scale: float) -> tuple[Path, dict]:
    folder = out / "synth" / scale_name(scale)
    if folder.exists() and not (out / "steps" / f"synth_{scale_name(scale)}.json").exists():
        shutil.rmtree(folder)  # a composite left half-written by a stopped run: synth writes into an empty folder
    step = run_step(f"synth_{scale_name(scale)}",
                    cli_command("synth", "--out", str(folder), "--expression_scale", f"{scale:g}"), out / "steps")
    return folder, step


def build(out: Path, scale: float, manual_dir: Path, name: str) -> tuple[Path, dict]:
    dataset, config = name.split("/")
    data_dir = out / "tfds" / scale_name(scale)
    command = cli_command("build", dataset, "--builder_config", config, "--manual_dir", str(manual_dir),
                      "--data_dir", str(data_dir))
    return data_dir, run_step(f"build_{dataset}_{config}_{scale_name(scale)}", command, out / "steps")


def stage_fit(report: dict) -> dict:
    """Each stage's last-epoch training accuracy and training class prior (one model: the stage 'model')."""
    stages = report["stages"] if "stages" in report else {"model": report["fit"]}
    return {
        stage: {"train_accuracy": record["final_train_accuracy"], "train_prior": record["train_prior"]}
        for stage, record in stages.items()
    }


def cell(out: Path, method: str, scale: float) -> dict:
    """One method at one amplitude: its builds (shared), its training run, what they measured."""
    spec = METHODS[method]
    manual_dir, synth_step = synth(out, scale)
    data_dir, build_steps = None, {}
    for name in spec.builds:
        data_dir, build_steps[name] = build(out, scale, manual_dir, name)
    workdir = out / "runs" / method / scale_name(scale)
    command = cli_command("train", "--config", spec.config, "--workdir", str(workdir), "--no-progress",
                      f"--config.data.data_dir={data_dir}", *spec.overrides)
    train_step = run_step(f"train_{method}_{scale_name(scale)}", command, out / "steps")
    report = json.loads((workdir / "report.json").read_text())
    return {
        "method": method,
        "label": spec.label,
        "scale": scale,
        "uf1": report["uf1"],
        "uar": report["uar"],
        "accuracy": report["accuracy"],
        "fit": stage_fit(report),
        "train_command": train_step["command"],
        "train_seconds": train_step["seconds"],
        "build_seconds": {name: step["seconds"] for name, step in build_steps.items()},
        "synth_seconds": synth_step["seconds"],
        "peak_rss_bytes": train_step["peak_rss_bytes"],  # training's; the shared steps' are their own
        "build_peak_rss_bytes": {name: step["peak_rss_bytes"] for name, step in build_steps.items()},
    }


def plot(cells: list[dict], path: Path) -> None:
    """UF1 against amplitude, one line per method, chance and the target drawn; amplitudes evenly spaced."""
    scales = sorted({c["scale"] for c in cells})
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for method, spec in METHODS.items():
        uf1 = {c["scale"]: c["uf1"] for c in cells if c["method"] == method}
        if uf1:  # an amplitude not run is a gap in the line, not a straight segment across it
            axes.plot(range(len(scales)), [uf1.get(scale, np.nan) for scale in scales], "o-", label=spec.label)
    axes.axhline(CHANCE_UF1, color="grey", linestyle="--", label="chance (uniform guess)")
    axes.axhline(CHANCE_UF1 + 0.1, color="grey", linestyle=":", label="control's bar (chance + 0.1)")
    axes.axhline(TARGET_UF1, color="black", linestyle=":", linewidth=0.8, label=f"target at 10 ({TARGET_UF1})")
    axes.set_xticks(range(len(scales)), [f"{s:g}" + (" (control)" if s == 0 else "") for s in scales])
    axes.set_xlabel("expression amplitude (mer-jax synth --expression_scale; 1 = as shipped, about 1 px)")
    axes.set_ylabel("UF1, held-out subjects")
    axes.set_ylim(0, 1)
    axes.set_title("Does each method learn the synthetic composite?")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: no curve hidden
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_results(out: Path, cells: list[dict]) -> None:
    cells = sorted(cells, key=lambda c: (list(METHODS).index(c["method"]), c["scale"]))
    (out / "amplitude.json").write_text(json.dumps(cells, indent=1))
    plot(cells, out / "amplitude.png")


def table(cells: list[dict]) -> str:
    """UF1 of methods (rows) by amplitude (columns), the smallest amplitude run at which each learns and
    whether its control stays within chance + 0.1, markdown."""
    scales = sorted({c["scale"] for c in cells})
    rows = ["| method | " + " | ".join(f"{s:g}" for s in scales)
            + f" | learns (UF1 >= {LEARNT_UF1}) from | control (0) <= chance + 0.1 |",
            "|---" * (len(scales) + 3) + "|"]
    for method, spec in METHODS.items():
        uf1 = {c["scale"]: c["uf1"] for c in cells if c["method"] == method}
        if uf1:
            learnt = [s for s in scales if s > 0 and uf1.get(s, 0.0) >= LEARNT_UF1]
            since = f"{min(learnt):g}" if learnt else "not at the amplitudes run"
            control = "not run" if 0.0 not in uf1 else ("yes" if uf1[0.0] <= CHANCE_UF1 + 0.1 else "**no**")
            rows.append(f"| {spec.label} | " + " | ".join(f"{uf1[s]:.2f}" if s in uf1 else "" for s in scales)
                        + f" | {since} | {control} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for composites, builds, runs and results")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--scales", nargs="+", type=float, default=list(SCALES))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    existing = args.out / "amplitude.json"
    cells = {(c["method"], c["scale"]): c for c in (json.loads(existing.read_text()) if existing.exists() else [])}
    for scale in args.scales:  # amplitude-major: a composite and its builds serve every method before the next
        for method in args.methods:
            cells[method, scale] = cell(args.out, method, scale)
            write_results(args.out, list(cells.values()))
            c = cells[method, scale]
            print(f"{method} at {scale:g}: UF1 {c['uf1']:.3f} UAR {c['uar']:.3f} accuracy {c['accuracy']:.3f}, "
                  f"fit {c['fit']}, train {c['train_seconds']:.0f} s", flush=True)
    print(table(list(cells.values())))


if __name__ == "__main__":
    main()
