"""`mer-jax train|describe`: parses flags and calls the library."""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "describe")

config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. configs/quickstart.py.")
flags.DEFINE_string("workdir", None, "train: where checkpoints and the report go (a run there is resumed).")
flags.DEFINE_bool("progress", True, "train: show a progress bar.")
FLAGS = flags.FLAGS


def run(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
    commands = argv[1:]
    if len(commands) != 1 or commands[0] not in COMMANDS:
        raise app.UsageError(f"usage: mer-jax {{{'|'.join(COMMANDS)}}} --config FILE [--config.key=value ...]")
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


def run_reporting_errors(argv: list[str]) -> None:
    """Runs a command; a user's mistake (bad config value, data, folder) is one clear line, not a traceback."""
    try:
        run(argv)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"mer-jax: error: {error}")


def main() -> None:
    app.run(run_reporting_errors, argv=sys.argv)


if __name__ == "__main__":
    main()
