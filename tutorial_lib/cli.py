"""Command line: ``python -m tutorial_lib COMMAND``.

::

    python -m tutorial_lib info
    python -m tutorial_lib download
    python -m tutorial_lib train MODEL --dataset {mnist,fashion_mnist} --profile P --out DIR
    python -m tutorial_lib sample MODEL --run DIR --num N --out FILE.npy
    python -m tutorial_lib sample transformer --run DIR --num-chars N --prompt TEXT [--out FILE.txt]
    python -m tutorial_lib bench [--profile P] [--models MODEL ...] [--out DIR]
    python -m tutorial_lib slides [--profile P] [--out DIR] [NOTEBOOK ...]

``train`` writes ``model.keras``, ``metrics.json`` and ``samples.png`` to DIR
(and resumes an interrupted run in the same DIR). ``sample`` writes float32
images in [0, 1] of shape (N, 28, 28, 1).

Adding a model family is one line in :data:`MODEL_FAMILIES`: the module must
define ``train_run(name, *, dataset, profile, out_dir, seed, **options)`` and
``sample_run(name, *, run_dir, num, seed, **options)`` (raising
``NotImplementedError`` with the reason if the model cannot sample), and may
define ``add_cli_arguments(command, parser)`` for options of its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np

from tutorial_lib.data import IMAGE_DATASETS, DataError
from tutorial_lib.profiles import UnknownProfileError, get_profile, profile_names

# CLI model name -> module that trains and samples it.
MODEL_FAMILIES = {
    "autoencoder": "tutorial_lib.autoencoder",
    "vae": "tutorial_lib.vae",
    "gan": "tutorial_lib.gan",
    "wgan_gp": "tutorial_lib.gan",
    "cgan": "tutorial_lib.gan",
    "transformer": "tutorial_lib.transformer",
    "diffusion": "tutorial_lib.diffusion",
}


def _family(name: str):
    return importlib.import_module(MODEL_FAMILIES[name])


def _writes_text(family) -> bool:
    """Whether a family samples text (``SAMPLES = "text"`` in its module) rather than images."""
    return getattr(family, "SAMPLES", "images") == "text"


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
        help=f"default: all ({', '.join(MODEL_FAMILIES)})",
    )
    bench.add_argument("--dataset", choices=IMAGE_DATASETS, default="mnist")
    bench.add_argument("--out", type=Path, default=Path("bench"), help="folder for bench.md/json")

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
    sample = commands.add_parser("sample", help="sample images from a trained run")
    sample_models = sample.add_subparsers(dest="model", required=True, metavar="MODEL")

    for name in MODEL_FAMILIES:
        family = _family(name)
        writes_text = _writes_text(family)
        p = train_models.add_parser(name, help=f"train {name}")
        if writes_text:  # a text model trains on its own data set
            p.set_defaults(dataset=family.DATASET)
        else:
            p.add_argument("--dataset", choices=IMAGE_DATASETS, default="mnist")
        p.add_argument(
            "--profile",
            choices=profile_names(),
            default=None,
            help="default: TUTORIAL_PROFILE or the hardware",
        )
        p.add_argument("--out", type=Path, required=True, help="run folder to write")
        p.add_argument("--seed", type=int, default=0)
        if hasattr(family, "add_cli_arguments"):
            family.add_cli_arguments("train", p)

        p = sample_models.add_parser(name, help=f"sample {name}")
        p.add_argument("--run", type=Path, required=True, help="run folder written by train")
        if writes_text:
            p.add_argument("--out", type=Path, default=None, help="write the text here (.txt)")
        else:
            p.add_argument("--num", type=int, default=64, help="how many images")
            p.add_argument("--out", type=Path, required=True, help="where to write the .npy file")
        p.add_argument("--seed", type=int, default=0)
        if hasattr(family, "add_cli_arguments"):
            family.add_cli_arguments("sample", p)
    return parser


_COMMON = {
    "command",
    "model",
    "dataset",
    "profile",
    "out",
    "seed",
    "run",
    "num",
    "models",
    "notebooks",
}


def _options(args: argparse.Namespace) -> dict:
    """The family-specific options of a parsed command line."""
    return {k: v for k, v in vars(args).items() if k not in _COMMON}


def check_samples(images: np.ndarray, num: int) -> np.ndarray:
    """Samples as the CLI promises them: float32, (num, 28, 28, 1), in [0, 1]."""
    images = np.asarray(images)
    if images.shape != (num, 28, 28, 1):
        raise ValueError(f"expected samples of shape {(num, 28, 28, 1)}, got {images.shape}")
    if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0:
        raise ValueError(
            f"samples must be finite and in [0, 1]; found [{images.min()}, {images.max()}]"
        )
    return images.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
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

            unknown = [m for m in args.models or [] if m not in MODEL_FAMILIES]
            if unknown:
                parser.error(f"unknown models {unknown}; choose from {', '.join(MODEL_FAMILIES)}")
            run_bench(
                get_profile(args.profile),
                models=args.models,
                dataset=args.dataset,
                out_dir=args.out,
            )
            print((args.out / "bench.md").read_text())
            return 0

        if args.command == "slides":
            from tutorial_lib.slides import build_all

            for deck in build_all(args.profile, args.out, args.notebooks or None):
                print(f"wrote {deck}")
            return 0

        if args.command == "train":
            profile = get_profile(args.profile)
            metrics = _family(args.model).train_run(
                args.model,
                dataset=args.dataset,
                profile=profile,
                out_dir=args.out,
                seed=args.seed,
                **_options(args),
            )
            print(f"trained {args.model} ({profile.name} profile); run folder: {args.out}")
            for key, value in metrics.items():
                print(f"  {key}: {value}")
            return 0

        if args.command == "sample" and _writes_text(_family(args.model)):
            text = _family(args.model).sample_run(
                args.model, run_dir=args.run, seed=args.seed, **_options(args)
            )
            if args.out is None:
                print(text)
            else:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text, encoding="utf-8")
                print(f"wrote {len(text):,} characters to {args.out}")
            return 0

        if args.command == "sample":
            if args.num < 1:
                parser.error("--num must be at least 1")
            images = _family(args.model).sample_run(
                args.model, run_dir=args.run, num=args.num, seed=args.seed, **_options(args)
            )
            images = check_samples(images, args.num)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            np.save(args.out, images)
            print(f"wrote {args.num} samples of shape {images.shape[1:]} to {args.out}")
            return 0
    except UnknownProfileError as error:
        parser.error(str(error))  # exits with code 2
    except NotImplementedError as error:  # e.g. sampling a model that defines no sampling
        print(f"error: {args.command} {args.model}: {error}", file=sys.stderr)
        return 2
    except (DataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
