"""Command line: ``python -m tutorial_lib COMMAND``.

::

    python -m tutorial_lib info
    python -m tutorial_lib download
    python -m tutorial_lib train MODEL [--dataset D] [--profile P] --out DIR [options]
    python -m tutorial_lib sample MODEL --run DIR [--num N] [--out FILE] [--max-minutes M] [options]
    python -m tutorial_lib bench [--profile P] [--models MODEL ...] [--out DIR]
    python -m tutorial_lib pretrain [--profile P] [--seeds N] [--out DIR | --into-package] [NB ...]
    python -m tutorial_lib slides [--profile P] [--out DIR] [NOTEBOOK ...]
    python -m tutorial_lib grade ASSIGNMENT [--student S] [--unsandboxed]  (instructors)

``train`` writes a run folder (:func:`tutorial_lib.runs.train`): ``model.keras``,
``metrics.json``, ``history.csv`` and ``samples.png`` (``samples.txt`` for a
text model), and resumes an interrupted run in the same folder. ``sample``
writes float32 images in [0, 1] of shape (N, 28, 28, 1) as ``.npy`` (a text
model prints its text, or writes it to ``--out``).

The models and their own options come from :mod:`tutorial_lib.families`: a
new family appears here without any change to this file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from tutorial_lib import families, stores
from tutorial_lib.data import IMAGE_DATASETS, DataError
from tutorial_lib.profiles import UnknownProfileError, get_profile, profile_names
from tutorial_lib.safe_io import WriteError, describe
from tutorial_lib.training import RunError, run_state

COMMON_TEXT_CHARS = 500  # characters a text model writes by default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib",
        description="Train, sample and inspect the models of the genai-notebooks series.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("info", help="print the device report (versions, GPUs, profile)")
    commands.add_parser(
        "download", help="fetch every data set into the Keras cache (or check TUTORIAL_DATA_DIR)"
    )

    bench = commands.add_parser(
        "bench", help="train, sample and evaluate every model family against the seed recipes"
    )
    bench.add_argument("--profile", choices=profile_names(), default=None)
    bench.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help=f"default: all ({', '.join(families.names())})",
    )
    bench.add_argument("--dataset", choices=IMAGE_DATASETS, default="mnist")
    bench.add_argument("--out", type=Path, default=Path("bench"), help="folder for bench.md/json")

    pretrain = commands.add_parser(
        "pretrain", help="train what every lesson trains and write a store of its checkpoints"
    )
    pretrain.add_argument("--profile", choices=profile_names(), default="cpu")
    pretrain.add_argument(
        "--seeds", type=int, default=3, help="train each model with this many seeds (spread)"
    )
    stores.add_store_options(pretrain)
    pretrain.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson")

    slides = commands.add_parser(
        "slides", help="execute the lessons and build reveal.js slide decks from them"
    )
    slides.add_argument(
        "--profile",
        choices=profile_names(),
        default="cpu",
        help="profile the notebooks run in before conversion (default: cpu)",
    )
    slides.add_argument("--out", type=Path, default=Path("slides"), help="folder for the decks")
    slides.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson")

    train = commands.add_parser("train", help="train a model, write a run folder")
    train_models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    sample = commands.add_parser("sample", help="sample from a trained run")
    sample_models = sample.add_subparsers(dest="model", required=True, metavar="MODEL")

    for name, family in families.FAMILIES.items():
        p = train_models.add_parser(name, help=f"train the {family.title}")
        p.add_argument("--dataset", choices=family.datasets, default=family.datasets[0])
        p.add_argument(
            "--profile",
            choices=profile_names(),
            default=None,
            help="default: TUTORIAL_PROFILE or the hardware",
        )
        p.add_argument("--out", type=Path, required=True, help="run folder to write")
        p.add_argument("--seed", type=int, default=0)
        for option in family.options_for("train"):
            option.add_to(p)

        p = sample_models.add_parser(name, help=f"sample the {family.title}")
        p.add_argument("--run", type=Path, required=True, help="run folder written by train")
        if family.samples == "text":
            p.add_argument(
                "--num-chars",
                dest="num",
                type=int,
                default=COMMON_TEXT_CHARS,
                help="characters to write",
            )
            p.add_argument("--out", type=Path, default=None, help="write the text here (.txt)")
        else:
            p.add_argument("--num", type=int, default=64, help="how many images")
            p.add_argument("--out", type=Path, required=True, help="where to write the .npy file")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument(
            "--max-minutes",
            type=float,
            default=60.0,
            help="refuse a request estimated to take longer (default: 60)",
        )
        for option in family.options_for("sample"):
            option.add_to(p)
    return parser


def family_options(args: argparse.Namespace) -> dict:
    """The options of the family's own that the command line was given."""
    family = families.get(args.model)
    options = {o.dest: getattr(args, o.dest) for o in family.options_for(args.command)}
    return {key: value for key, value in options.items() if value is not None}


def check_samples(images: np.ndarray, num: int) -> np.ndarray:
    """Samples as the CLI promises them: float32, (num, 28, 28, 1), in [0, 1]."""
    from tutorial_lib.runs import check_samples as check

    return check(images, num)


def _train(args) -> int:
    from tutorial_lib import hosts, runs

    if os.environ.get(hosts.NUM_PROCESSES_ENV, "").strip() not in ("", "1"):
        hosts.join()  # one of several processes training together: join them first
    profile = get_profile(args.profile)
    with runs.lock_run_folder(args.out):  # before it says anything of the folder
        state = run_state(args.out)
        if state == "training":
            print(f"resuming the interrupted run in {args.out} at its first unfinished epoch")
        elif state == "evaluate":
            print(
                f"resuming the interrupted run in {args.out} at evaluate: its training "
                "finished before the interruption and is not repeated"
            )
        print(f"training {args.model} ({profile.name} profile) into {args.out}", flush=True)
        run = runs.train(
            args.model,
            profile,
            dataset=args.dataset,
            seed=args.seed,
            out_dir=args.out,
            **family_options(args),
        )
    print(f"trained {args.model} ({profile.name} profile); run folder: {args.out}")
    for key, value in run.record.items():
        if value is not None and key not in ("config", "class_histogram", "final_logs"):
            print(f"  {key}: {value}")
    return 0


def _sample(args, parser) -> int:
    from tutorial_lib import runs

    family = families.get(args.model)
    if args.num < 1:
        parser.error("--num must be at least 1")
    run = runs.load(args.run)
    if run.name != args.model and families.get(run.name).module != family.module:
        raise RunError(f"{args.run} holds a {run.name} run, not {args.model}: sample it as such.")
    options = family_options(args)
    out = args.out
    if family.samples != "text" and out.suffix != ".npy":
        out = out.with_name(out.name + ".npy")  # as numpy.save names it
    runs.sample_to_file(
        run,
        args.num,
        out,
        seed=args.seed,
        max_minutes=args.max_minutes,
        report=lambda line: print(line, file=sys.stderr, flush=True),
        family=family,
        **options,
    )
    if family.samples == "text":
        if args.out is not None:
            print(f"wrote {args.num:,} characters after the prompt to {args.out}")
        return 0
    print(f"wrote {args.num:,} samples of shape (28, 28, 1) to {out}")
    return 0


def _error(error: BaseException, context: str = "") -> None:
    """Report a bad input on stderr in one line: what is wrong and what to do."""
    if isinstance(error, OSError) and not isinstance(error, WriteError) and error.errno:
        error = describe(error)
    print(f"error: {context}{' '.join(str(error).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["grade"]:  # the instructors' sandboxed autograde (tutorial_lib.grading)
        from tutorial_lib.grading import main as grade

        return grade(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.command == "info":
        from tutorial_lib.device import print_report

        print_report()
        return 0

    try:
        if args.command == "download":
            from tutorial_lib.data import check_data

            rows = check_data()
            for row in rows:
                print(f"{'ok ' if row['ok'] else 'ERR'} {row['dataset']:<16} {row['message']}")
            return 0 if all(row["ok"] for row in rows) else 1

        if args.command == "bench":
            from tutorial_lib.bench import run_bench

            unknown = [m for m in args.models or [] if m not in families.FAMILIES]
            if unknown:
                parser.error(f"unknown models {unknown}; choose from {', '.join(families.names())}")
            run_bench(
                get_profile(args.profile),
                models=args.models,
                dataset=args.dataset,
                out_dir=args.out,
            )
            print((args.out / "bench.md").read_text())
            return 0

        if args.command == "pretrain":
            from tutorial_lib.course.pretrain import pretrain

            root = stores.root_of(args)
            store = pretrain(
                args.profile, lessons=args.notebooks or None, seeds=args.seeds, root=root
            )
            print(f"wrote {store}")
            if root != stores.PACKAGE_STORE:
                print(f"the lessons load it with {stores.STORE_ENV}={root}")
            return 0

        if args.command == "slides":
            from tutorial_lib.course.slides import build_all

            for deck in build_all(args.profile, args.out, args.notebooks or None):
                print(f"wrote {deck}")
            return 0

        if args.command == "train":
            return _train(args)
        if args.command == "sample":
            return _sample(args, parser)
    except KeyboardInterrupt:  # Ctrl-C: say what it left behind, without a traceback
        note = "interrupted"
        if args.command == "train" and run_state(args.out) in ("training", "evaluate"):
            note += f"; run the same command again to resume the run in {args.out}"
        print(f"\n{note}", file=sys.stderr)
        return 130  # the shell's code for Ctrl-C
    except UnknownProfileError as error:
        parser.error(str(error))  # exits with code 2
    except NotImplementedError as error:  # e.g. sampling a model that defines no sampling
        _error(error, f"{args.command} {args.model}: ")
        return 2
    except (DataError, RunError, OSError) as error:  # OSError: a folder that cannot be written
        _error(error)
        return 1
    except ValueError as error:  # an option that does not fit the run, e.g. a label for
        if args.command not in ("train", "sample"):  # an unconditional model
            raise
        _error(error, f"{args.command} {args.model}: ")
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
