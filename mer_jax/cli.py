"""`mer-jax synth|build|train|search|describe|predict`: one parser; each subcommand calls the library.

Config-driven subcommands (train, search, describe) take an experiment file,
``--config FILE``, and override any of its values ml_collections style,
``--config.train.epochs=5``. ``mer-jax SUBCOMMAND --help`` lists each one's flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from absl import flags, logging
from ml_collections import config_flags

DESCRIPTION = "Facial micro-expression recognition: every fold of a protocol trained at once."


def load_config(path: str, overrides: list[str]):
    """The ml_collections config of file `path` with `--config.key=value` overrides applied.

    `path` may end in `:ARGUMENT`, passed to the file's `get_config` (a table row:
    `configs/strcn_tmm2019.py:table2_casme2_strcn_g`).
    """
    file = path.split(":", 1)[0]  # ml_collections' own split
    if not Path(file).is_file():
        raise FileNotFoundError(f"config file {file} not found (the experiments are in configs/)")
    flag_values = flags.FlagValues()
    argv = ["mer-jax", f"--config={path}", *overrides]
    # sys_argv: the override flags are looked for there (by default in the process's own sys.argv)
    config_flags.DEFINE_config_file("config", None, "experiment config file", flag_values=flag_values, sys_argv=argv)
    try:
        flag_values(argv)
        return flag_values.config  # overrides are applied here
    except (flags.Error, KeyError, AttributeError) as error:
        # ml_collections' KeyError text is the repr of a message: show the message.
        reason = str(error).strip("'\"").replace("\\n", " ").replace("\\'", "'")
        raise ValueError(f"{path} {' '.join(overrides)}: {reason}") from error


def synth(args) -> None:
    from mer_jax.data.synth import write_synthetic_composite

    summary = write_synthetic_composite(args.out, seed=args.seed, expression_scale=args.expression_scale)
    print(
        f"wrote {len(summary['clips'])} clips ({summary['frames']} frames, {summary['bytes'] / 1e6:.0f} MB) "
        f"in {summary['seconds']:.0f} s to {args.out}\nbuild them: mer-jax build megc2019 --manual_dir {args.out}"
    )
    if not args.no_expressions:
        from mer_jax.data.synth.expressions import write_synthetic_expressions

        images = write_synthetic_expressions(args.out, seed=args.seed)
        print(
            f"wrote {images['images']} posed expression images of {len(images['subjects'])} people "
            f"({images['bytes'] / 1e6:.0f} MB) in {images['seconds']:.0f} s to {images['folder']}\n"
            f"build them: mer-jax build kdef --manual_dir {args.out} --builder_config all_angles"
        )


def build(args) -> None:
    from mer_jax.data.clips import build as build_lib

    builder = build_lib.build(
        args.dataset, builder_config=args.builder_config, manual_dir=args.manual_dir, data_dir=args.data_dir
    )
    print(build_lib.format_summary(builder))


def train(args) -> None:
    import jax

    from mer_jax.train import train_and_evaluate

    result = train_and_evaluate(args.config, args.workdir, progress=args.progress)
    if jax.process_index() != 0:  # process 0 reports for the run
        return
    print(
        f"{result['num_folds']} folds, {result['strategy']}: accuracy {result['accuracy']:.3f}  "
        f"UF1 {result['uf1']:.3f}  UAR {result['uar']:.3f}  ({result['train_seconds']:.1f} s)\n"
        f"report: {args.workdir}/report.json, {args.workdir}/results.md"
    )


def search(args) -> None:
    from mer_jax.methods.rcn.search import search as search_lib

    result = search_lib(args.config, args.workdir, progress=args.progress)
    choice = result["choice"]
    named = f" (= {choice['equals']})" if choice["equals"] else ""
    print(
        f"{len(result['folds'])} folds searched ({result['seconds']:.0f} s): stem {choice['stem']}, "
        f"recurrence {choice['recurrence']}, attention {list(choice['attention'])}{named}\n"
        f"architecture: {args.workdir}/architecture.json\n"
        f"train it: mer-jax train --config {args.workdir}/derived_config.py --workdir DIR"
    )


def describe(args) -> None:
    from mer_jax.describe import describe as describe_model

    print(describe_model(args.config))


def predict(args) -> None:
    import json

    from mer_jax.predict import predict_clip

    result = predict_clip(args.workdir, args.frames, onset=args.onset, apex=args.apex)
    if args.json:
        print(json.dumps({"label": result.label, "probabilities": result.probabilities}))
        return
    print(f"{args.frames}: {result.label}  (apex frame {result.apex}{', spotted' if result.apex_spotted else ''})")
    for name, probability in sorted(result.probabilities.items(), key=lambda item: -item[1]):
        print(f"  {name:>12s} {probability:.3f}")


def _add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE",
        help="experiment config file (configs/*.py); override any value with --config.KEY=VALUE, "
        "e.g. --config.train.epochs=5",
    )


def _add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of a run over several processes (mer_jax/core/distributed.py, docs/scale.md)."""
    group = parser.add_argument_group("several processes (hosts); none given: one process")
    group.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    group.add_argument("--num_processes", type=int, default=None, help="how many processes run")
    group.add_argument("--process_id", type=int, default=None, help="this process's index, 0 .. num_processes - 1")
    group.add_argument("--distributed", action="store_true",
                       help="take the three from the platform (TPU VMs, SLURM): jax.distributed.initialize()")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer-jax", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{synth,build,train,search,describe,predict}")

    command = commands.add_parser(
        "synth", help="write a synthetic CASME II + SAMM + SMIC composite (and KDEF-like images) in the real layouts",
        description="Write a synthetic CASME II + SAMM + SMIC composite in the real datasets' layouts, and posed "
        "expression images in KDEF's layout (<out>/KDEF/; --no_expressions skips them).",
    )
    command.add_argument("--out", required=True, help="folder to write (use it as --manual_dir of `mer-jax build`)")
    command.add_argument("--seed", type=int, default=0, help="random seed of the composite (default 0)")
    command.add_argument(
        "--expression_scale", type=float, default=1.0,
        help="factor on every clip's expression amplitude (default 1: about a pixel; 0: the expression-free "
        "control; 10: a macro-expression)",
    )
    command.add_argument(
        "--no_expressions", action="store_true",
        help="skip the synthetic posed-expression images in KDEF's layout (<out>/KDEF/, about 10 s)",
    )
    command.set_defaults(run=synth)

    command = commands.add_parser(
        "build", help="build a TFDS data set from raw clips (data_builders/)",
        description="Build (or reuse) one builder config of a data set from its raw clips.",
    )
    command.add_argument("dataset", help="casme2, samm, smic, megc2019, synthetic_me, kdef or rafd")
    command.add_argument("--manual_dir", help="the folder holding the unpacked data set(s) (not for synthetic_me)")
    command.add_argument("--data_dir", default=None, help="where to write (default: TFDS's ~/tensorflow_datasets)")
    command.add_argument(
        "--builder_config", default=None, metavar="NAME",
        help="what to store per clip: flow60 (default), flow_strcn_g, strcn_a, flow_strcn_g_single, strcn_a_single, "
        "frames, regions, tim32 or tim64; kdef and rafd: "
        "frontal (default) or all_angles (docs/data.md)",
    )
    command.set_defaults(run=build)

    command = commands.add_parser(
        "train", help="train every fold of a protocol and write the report",
        description="Train every fold of the config's protocol at once and write the report into --workdir "
        "(a run there is resumed).",
    )
    _add_config_flag(command)
    command.add_argument("--workdir", required=True, help="where checkpoints, the report and the final model go")
    command.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="a progress bar")
    _add_distributed_flags(command)
    command.set_defaults(run=train)

    command = commands.add_parser(
        "search", help="the architecture search of Xia et al., TIP 2020 (sec. IV-C-4, eq. 8)",
        description="Search the module placements of Xia et al., TIP 2020 (Fig. 6) with an eq. 8 supernet on the "
        "config's first search.num_folds folds; write architecture.json and derived_config.py (a config for "
        "`mer-jax train`) into --workdir (docs/search.md).",
    )
    _add_config_flag(command)
    command.add_argument("--workdir", required=True, help="where architecture.json and derived_config.py go")
    command.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="a progress bar")
    command.set_defaults(run=search)

    command = commands.add_parser(
        "describe", help="a model's layer table, parameter count and FLOPs",
        description="Print the config's model: layer table, trainable parameters, forward FLOPs of one example.",
    )
    _add_config_flag(command)
    command.set_defaults(run=describe)

    command = commands.add_parser(
        "predict", help="class probabilities of a new clip with a trained final model",
        description="Apply the final model of a finished run (train.final_model=True) to a new clip: the same "
        "preprocessing as its build (face alignment, crop, flow, strain, resize), then the class probabilities.",
    )
    command.add_argument("--workdir", required=True, help="the run's --workdir (holds final_model/)")
    command.add_argument("--frames", required=True, help="a folder of frame images (in name order) or a video file")
    command.add_argument("--onset", type=int, default=0, help="position of the onset frame (default 0: the first)")
    command.add_argument("--apex", type=int, default=None,
                         help="position of the apex frame (default: spotted, Xia et al., TMM 2019, eq. 5)")
    command.add_argument("--json", action="store_true", help="print one JSON object: label and probabilities")
    command.set_defaults(run=predict)
    return parser


def run(argv: list[str]) -> None:
    """Parses `argv` (without the program name) and runs the subcommand."""
    parser = make_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not hasattr(args, "config"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if hasattr(args, "config"):
        args.config = load_config(args.config, rest)
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
    from mer_jax.speed import compile_cache  # imports JAX: not before the arguments are known good

    compile_cache.enable()
    if hasattr(args, "coordinator_address"):
        from mer_jax.core import distributed

        distributed.initialize(
            args.coordinator_address, args.num_processes, args.process_id, from_platform=args.distributed
        )
    args.run(args)


def main(argv: list[str] | None = None) -> None:
    """A user's mistake (bad config value, data, folder) is one clear line, not a traceback."""
    try:
        run(sys.argv[1:] if argv is None else argv)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"mer-jax: error: {error}")


if __name__ == "__main__":
    main()
