"""`mer-jax train|describe|build|synth`: parses flags and calls the library.

train and describe take an ml_collections config file (``--config FILE``,
overrides ``--config.a.b=value``) through absl flags. build and synth have
their own small parsers: build's ``--config`` names a builder config
(flow60, ...), not a file.
"""

from __future__ import annotations

import argparse
import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "describe", "build", "synth")
EXPERIMENT_COMMANDS = ("train", "describe")

config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/quickstart.py.")
flags.DEFINE_string("workdir", None, "train: where checkpoints and the report go (a run there is resumed).")
flags.DEFINE_bool("progress", True, "train: show a progress bar.")
FLAGS = flags.FLAGS


def run(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
    commands = argv[1:]
    if len(commands) != 1 or commands[0] not in EXPERIMENT_COMMANDS:
        raise app.UsageError(f"usage: mer-jax {{{'|'.join(COMMANDS)}}} ...")
    if FLAGS.config is None:
        raise app.UsageError("--config is required, e.g. --config configs/quickstart.py")
    if commands[0] == "describe":
        from mer_jax.describe import describe

        print(describe(FLAGS.config))
        return
    if FLAGS.workdir is None:
        raise app.UsageError("train needs --workdir DIR")
    from mer_jax.train import train_and_evaluate

    result = train_and_evaluate(FLAGS.config, FLAGS.workdir, progress=FLAGS.progress)
    print(
        f"{result['num_folds']} folds, {result['strategy']}: accuracy {result['accuracy']:.3f}  "
        f"UF1 {result['uf1']:.3f}  UAR {result['uar']:.3f}  ({result['train_seconds']:.1f} s)\n"
        f"report: {FLAGS.workdir}/report.json, {FLAGS.workdir}/results.md"
    )


def build(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mer-jax build", description="Build a TFDS data set from raw clips.")
    parser.add_argument("dataset", help="casme2, samm, smic, megc2019 or synthetic_me")
    parser.add_argument("--manual_dir", help="the folder holding the unpacked dataset(s) (not for synthetic_me)")
    parser.add_argument("--data_dir", default=None, help="where to write (default: TFDS's ~/tensorflow_datasets)")
    parser.add_argument("--config", default="flow60", help="flow60 (default), flow_strcn_g, strcn_a or frames")
    args = parser.parse_args(argv)
    from mer_jax.data_builders import build as build_lib

    builder = build_lib.build(args.dataset, config=args.config, manual_dir=args.manual_dir, data_dir=args.data_dir)
    print(build_lib.format_summary(builder))


def synth(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mer-jax synth",
        description="Write a synthetic CASME II + SAMM + SMIC composite in the real datasets' layouts.",
    )
    parser.add_argument("--out", required=True, help="folder to write (use it as --manual_dir of `mer-jax build`)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from mer_jax.synth import write_synthetic_composite

    summary = write_synthetic_composite(args.out, seed=args.seed)
    print(
        f"wrote {len(summary['clips'])} clips ({summary['frames']} frames, {summary['bytes'] / 1e6:.0f} MB) "
        f"in {summary['seconds']:.0f} s to {args.out}\nbuild them: mer-jax build megc2019 --manual_dir {args.out}"
    )


def run_reporting_errors(argv: list[str]) -> None:
    """Runs a command; a user's mistake (bad config value, data, folder) is one clear line, not a traceback."""
    try:
        command = argv[1] if len(argv) > 1 else ""
        if command == "build":
            build(argv[2:])
        elif command == "synth":
            synth(argv[2:])
        else:
            app.run(run, argv=argv)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"mer-jax: error: {error}")


def main() -> None:
    run_reporting_errors(sys.argv)


if __name__ == "__main__":
    main()
