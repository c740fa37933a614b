"""``python -m tutorial_lib pretrain``: train what every lesson trains, and ship it.

1. Every lesson that trains (a :class:`tutorial_lib.checkpoints.Lesson` in its
   first cell) is executed top to bottom in a fresh kernel with the switch set
   to ``record``: its training cells train exactly as a learner's would, and
   write their models, histories and results, with every figure the lesson
   quotes, into the store (:func:`tutorial_lib.checkpoints.store_dir`).
2. The spread: every model a lesson trains through the life cycle is trained
   again with other seeds (``--seeds``, 3 by default, the lesson's own run
   included), and its headline figures over the seeds go to ``spread.json``.
3. The seed documents' recipes (:mod:`tutorial_lib.baselines`) train for as many
   seconds as the lesson's model took, on the same machine: ``bench.json``.
4. ``SHA256SUMS`` over the store, and the total size (at most 25 MB). Before that, every
   run recorded (but the fast profile's) is checked again in full from its shipped
   half-precision model, and its fingerprint written beside it
   (:func:`tutorial_lib.course.fingerprints.record_reference`), which the tests check it by.
5. Every lesson once more with the switch on (loading what step 1 wrote): how long
   a class waits with the shipped checkpoints; and every lesson in the ``fast``
   profile. ``lessons.json`` holds each lesson's seconds all three ways (a lesson
   that trains nothing takes as long with checkpoints as without).

The figures the lessons' Markdown and the README quote are filled in from this
record by ``python -m tutorial_lib.course.figures fill``.

Nothing is lost when it stops half-way (a kill, Ctrl-C, a failing cell, a full disk):
a lesson is recorded into a staging folder and swapped in, with its checksums, only
when the whole lesson ran (:func:`tutorial_lib.checkpoints.install_lesson`); every
other file is written whole and then renamed into place with its checksum. Run the
same command again to go on (a training it interrupted resumes). The store is written
outside the installed package unless asked (``--out DIR``, by default the per-user
folder :func:`tutorial_lib.stores.default_root`; ``--into-package`` for the package's own), and one
``pretrain`` at a time writes a store (a lock names the process holding it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from tutorial_lib import (
    bench,
    checkpoints,
    compare,
    device,
    families,
    runs,
    safe_io,
    stores,
    training,
)
from tutorial_lib.course import fingerprints, notebook_tools
from tutorial_lib.profiles import Profile, get_profile

SPREAD_FILE = checkpoints.SPREAD_FILE
BENCH_FILE = "bench.json"
LESSONS_FILE = "lessons.json"
MAX_BYTES = 25 * 1024 * 1024
# The figures whose spread over seeds the lessons quote.
SPREAD_KEYS = (
    "train_seconds",
    "test_mse",
    "nll",
    "bits_per_dim",
    "confidence",
    "coverage",
    "frechet_distance",
    "thickness_move",  # the text-to-image model's words, high minus low (notebook 09)
    "slant_move",
    "width_move",
)


def training_lessons() -> list[Path]:
    """The lessons that train something (their first code cell makes a ``Lesson``)."""
    return [
        path
        for path in notebook_tools.lesson_notebooks()
        if "checkpoints.Lesson(" in path.read_text(encoding="utf-8")
    ]


def record_lesson(path: Path, profile: Profile, root: Path, mode: str = "record") -> float:
    """Execute one lesson with the switch on ``mode`` (``record`` writes under ``root``,
    ``1`` loads from there); its wall-clock seconds."""
    settings = {
        "TUTORIAL_PROFILE": profile.name,
        checkpoints.PRETRAINED_ENV: mode,
        checkpoints.STORE_ENV: str(root),
    }
    start = time.perf_counter()
    nb = notebook_tools.execute(path, settings, timeout=3600)
    errors = notebook_tools.error_outputs(nb)
    if errors:
        raise RuntimeError(f"{path.name} failed in the {profile.name} profile: {errors[0]}")
    return time.perf_counter() - start


def lesson_records(store: Path) -> dict[str, dict]:
    """Every lesson's record in the store, by lesson name."""
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(store.glob(f"*/{checkpoints.RECORD_FILE}"))
    }


def spread(store: Path, profile: Profile, seeds: int, lessons: list[str] | None = None) -> dict:
    """Each life-cycle model of the lessons (default: all in the store) trained with seeds
    1..seeds-1 too; per lesson, model and figure, the values over all seeds (the lesson's
    own run, seed 0, first)."""
    result = {}
    for lesson, record in lesson_records(store).items():
        if lessons is not None and lesson not in lessons:
            continue
        for key, run_record in record["runs"].items():
            name, options = run_record["model"], _train_options(run_record)
            values = {k: [run_record.get(k)] for k in SPREAD_KEYS}
            stages = _stages_as_given(run_record, profile)
            for seed in range(1, seeds):
                again = runs.train(name, profile, seed=seed, stages=stages, **options).record
                for k in SPREAD_KEYS:
                    values[k].append(again.get(k))
            result.setdefault(lesson, {})[key] = {
                k: v for k, v in values.items() if all(x is not None for x in v)
            }
    return result


def _stages_as_given(record: dict, profile: Profile) -> dict | None:
    """The trained parts the lesson handed its run (notebook 05's shipped VAE), handed to the
    other seeds too, so that every seed trains, and is timed, as the lesson's run was."""
    if "autoencoder" not in (record.get("stages_given") or []):
        return None
    return {"autoencoder": compare.autoencoder_stage(profile)}


def _train_options(record: dict) -> dict:
    """The family's own train options a run used (from its recorded config)."""
    family = families.get(record["model"])
    config = record["config"]
    return {
        option.dest: config[option.dest]
        for option in family.options_for("train")
        if option.dest in config
    }


def seed_recipes(
    store: Path, profile: Profile, lessons: list[str] | None = None, earlier: dict | None = None
) -> dict:
    """The benchmark table: each lesson model of a family with a seed recipe, beside that
    recipe trained for as many seconds on the same machine. With ``lessons`` named, only
    their rows are measured; every other lesson keeps its rows of the ``earlier`` table
    (its seed recipes timed beside its own runs, when those were recorded)."""
    kept = _rows_by_lesson(earlier)
    rows = []
    for lesson, record in lesson_records(store).items():
        if lessons is not None and lesson not in lessons and lesson in kept:
            rows.extend(kept[lesson])
            continue
        for key, run_record in record["runs"].items():
            family = families.get(run_record["model"])
            ours = {
                **bench.table_row(run_record, family),
                "model": key,
                "lesson": lesson,
                "train_examples": run_record["config"].get("train_examples"),
            }
            rows.append(ours)
            if family.seed_recipe is not None and key == family.name:
                rows.append(
                    bench.bench_seed_recipe(
                        family, ours, dataset=run_record["dataset"], profile=profile
                    )
                )
            ours.pop("train_examples", None)
    return bench.report(rows, profile, "mnist")


def _rows_by_lesson(table: dict | None) -> dict[str, list[dict]]:
    """A benchmark's rows by lesson; a seed recipe's row (no lesson) goes with the lesson
    row above it."""
    found, lesson = {}, None
    for row in (table or {}).get("rows", []):
        lesson = row.get("lesson") or lesson
        found.setdefault(lesson, []).append(row)
    return found


def store_bytes(store: Path) -> int:
    return sum(path.stat().st_size for path in store.rglob("*") if path.is_file())


def _write_json(store: Path, name: str, value) -> None:
    """Write ``store/name`` whole, with its checksum (:func:`checkpoints.commit_file`)."""
    text = json.dumps(value, indent=1, sort_keys=name == LESSONS_FILE) + "\n"
    checkpoints.commit_file(store, name, text.encode("utf-8"))


def pretrain(
    profile: str | Profile = "cpu",
    *,
    lessons: list[Path] | None = None,
    seeds: int = 3,
    root: Path | None = None,
) -> Path:
    """Write the store of ``profile`` under ``root`` (default: the package's; see the
    module's description). Returns the profile's folder.

    With ``lessons``, only those are recorded again; the spread and timings of the
    others stay as they were, and the benchmark is redone from every record."""
    profile = get_profile(profile)
    root = Path(root) if root is not None else stores.default_root()
    store = root / profile.name
    staging = root / checkpoints.STAGING_DIR / profile.name
    try:
        lock = safe_io.FolderLock(staging, what="store", advice=", or write another store (--out)")
        with lock:
            result = _pretrain(profile, lessons, seeds, root, store)
    except OSError as error:
        raise safe_io.write_error(
            error,
            store,
            "Every lesson recorded before it is in place: run the same command again to go on",
        ) from error
    _remove_empty_staging(staging)
    return result


def _remove_empty_staging(staging: Path) -> None:
    """The staging folders, once every lesson in them is swapped in (only a lock is left)."""
    if all(path.name == safe_io.LOCK_FILE for path in staging.iterdir()):
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()  # when no other profile is being recorded


class OtherMachineError(RuntimeError):
    """Some lessons would be recorded on another machine than the rest of the store."""


def check_one_machine(store: Path, lessons: list[Path], machine: str) -> None:
    """Refuse to record ``lessons`` on ``machine`` when the store's other lessons were
    recorded on another one.

    The benchmark trains each seed recipe for as many seconds as the lesson's model took,
    here, and every row's speed is compared with the others': one table, one machine.
    (The fast store is exempt: nothing quotes its timings.)
    """
    names = {path.stem for path in lessons}
    others = {
        record.get("machine")
        for lesson, record in lesson_records(store).items()
        if lesson not in names and record.get("machine")
    }
    if others and others != {machine}:
        raise OtherMachineError(
            f"The store's other lessons were recorded on {', '.join(sorted(others))}; this "
            f"machine is {machine}. Its benchmark compares training seconds row by row, so "
            "they must come from one machine. Fix: record every lesson here (pretrain with "
            "no lesson named), or record these on that machine."
        )


def _pretrain(profile, lessons, seeds, root, store) -> Path:
    paths = lessons or training_lessons()
    if lessons is not None and profile.name != "fast":
        check_one_machine(store, paths, device.machine_description())
    timings = _read_json(store / LESSONS_FILE) or {}
    for key in ("record_seconds", "load_seconds", "fast_seconds"):
        timings.setdefault(key, {})
    for path in paths:
        with _env(checkpoints.STORE_ENV, str(root)):  # where the lesson recorded itself
            seconds = record_lesson(path, profile, root)
            checkpoints.note_code(path.stem, profile, notebook_tools.code_digest(path))
            checkpoints.install_lesson(path.stem, profile)  # later lessons load it
        timings["record_seconds"][path.stem] = round(seconds, 1)
        print(f"recorded {path.stem} in {seconds:.0f} s")
    if profile.name != "fast":  # the suite checks the shipped runs by their references
        for path in paths:
            for metrics in sorted((store / path.stem).glob(f"*/{training.METRICS_FILE}")):
                fingerprints.record_reference(metrics.parent)
    if seeds > 1:
        found = _read_json(store / SPREAD_FILE) or {}
        found.update(spread(store, profile, seeds, [path.stem for path in paths]))
        _write_json(store, SPREAD_FILE, found)
    named = [path.stem for path in paths] if lessons is not None else None
    earlier = _read_json(store / BENCH_FILE)
    _write_json(store, BENCH_FILE, seed_recipes(store, profile, named, earlier))
    for path in paths:
        seconds = record_lesson(path, profile, root, mode="1")
        timings["load_seconds"][path.stem] = round(seconds, 1)
        print(f"{path.stem} from the shipped checkpoints in {seconds:.0f} s")
    if lessons is None and profile.name != "fast":
        # The lessons that train nothing take as long either way; and every lesson in the
        # smallest profile, for an instructor's dry run (the fast store's own timings
        # are those already).
        for path in notebook_tools.lesson_notebooks():
            if path not in paths:
                seconds = round(record_lesson(path, profile, root, mode="0"), 1)
                timings["record_seconds"][path.stem] = timings["load_seconds"][path.stem] = seconds
            fast = record_lesson(path, get_profile("fast"), root, mode="0")
            timings["fast_seconds"][path.stem] = round(fast, 1)
            print(f"{path.stem} in the fast profile in {fast:.0f} s")
    _write_json(store, LESSONS_FILE, timings)
    checkpoints.write_checksums(store)
    size = store_bytes(store)
    print(f"store {store}: {size / 2**20:.1f} MiB")
    if size > MAX_BYTES:
        raise RuntimeError(f"The store holds {size / 2**20:.1f} MiB, more than the 25 MiB allowed.")
    return store


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


class _env:
    """An environment variable set for a ``with`` block."""

    def __init__(self, name: str, value: str):
        self.name, self.value = name, value

    def __enter__(self):
        self.old = os.environ.get(self.name)
        os.environ[self.name] = self.value

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.old


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tutorial_lib pretrain", description=__doc__)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    stores.add_store_options(parser)
    parser.add_argument("lessons", nargs="*", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    pretrain(
        args.profile, lessons=args.lessons or None, seeds=args.seeds, root=stores.root_of(args)
    )
    return 0
