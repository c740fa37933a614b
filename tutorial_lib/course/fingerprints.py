"""Each shipped run checked again: in full (slow), or by its fingerprint (seconds).

A shipped run (``<store>/<lesson>/<run>/``) holds a half-precision model and the figures
it was recorded with (``metrics.json``). :func:`full_check` loads the model as a learner's
lesson does and measures those figures again (:func:`tutorial_lib.runs.evaluate`: a
thousand samples scored by the evaluation classifier on the cpu profile); they must agree
within :data:`FIGURE_TOLERANCE`. That takes minutes for the whole store.

The **fingerprint** of a run (:func:`fingerprint`) is what the loaded model gives on a
small fixed input: its own figure (the test MSE, or the negative log-likelihood or its
bound, nats per image or per character) on the first :data:`EXAMPLES` test images (or
windows of validation text), and its first samples drawn with the recorded seed.
:func:`record_reference` runs the full check of a run and only then writes its
fingerprint beside it (``reference.npz``, listed in ``SHA256SUMS``), so a reference is one
the recorded figures were reproduced with. :func:`reference_problems` then checks a run in
seconds: its files match their checksums, and the model, loaded again, gives its
reference (within :data:`REFERENCE_TOLERANCE`). A changed file, a model that loads
differently, or likelihood or sampling code that drifted gives another fingerprint.

::

    python -m tutorial_lib.course.fingerprints check       # the full check of every shipped run
    python -m tutorial_lib.course.fingerprints record      # the full check, then the references
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
from pathlib import Path

import numpy as np

from tutorial_lib import checkpoints, data, runs, training
from tutorial_lib.profiles import get_profile

REFERENCE_FILE = "reference.npz"
EXAMPLES = 64  # test images (or validation windows of text) of the fingerprint's figure
SAMPLES = {"images": 4, "text": 32}  # images, or characters, drawn with the recorded seed
# How close a shipped (half-precision) model comes to the figures it was recorded with.
FIGURE_TOLERANCE = {
    "confidence": dict(abs=0.01),
    "coverage": dict(abs=0.0),
    "frechet_distance": dict(rel=0.05),
    "nll": dict(rel=0.005),
    "test_mse": dict(rel=0.02),
}
# How close the same model, loaded again (on any machine), comes to its fingerprint: float
# rounding only. The figures' relative difference; the images' mean absolute difference
# (pixels in [0, 1]); a text is drawn character for character the same.
REFERENCE_TOLERANCE = {"figure": 1e-3, "images": 2e-3}
RECORD_COMMAND = "python -m tutorial_lib.course.fingerprints record"


def shipped_runs(profile: str = "cpu") -> list[Path]:
    """The run folders of the store of ``profile``, in order."""
    store = checkpoints.store_dir(profile)
    return sorted(path.parent for path in store.glob(f"*/*/{training.METRICS_FILE}"))


def load(folder: Path) -> runs.Run:
    """A shipped run as a lesson loads it (its half-precision model), with every random
    generator seeded first: a model that draws from a seed generator of its own (a VAE's
    codes) then draws the same numbers at every load."""
    training.set_seed(0)
    return runs.load(folder, load_model=checkpoints.load_model)


def _close(measured: float, expected: float, *, rel: float = 0.0, abs: float = 0.0) -> bool:
    return bool(np.abs(measured - expected) <= max(rel * np.abs(expected), abs))


def full_check(run: runs.Run) -> list[str]:
    """The recorded figures of ``run`` measured again (:func:`tutorial_lib.runs.evaluate`,
    without timing the sampling): one line per figure outside :data:`FIGURE_TOLERANCE`."""
    recorded = dict(run.record)
    measured = runs.evaluate(run, recorded["profile"], timed=False)
    return [
        f"{key}: recorded {recorded[key]:.6g}, measured {measured[key]:.6g}"
        for key, tolerance in FIGURE_TOLERANCE.items()
        if recorded.get(key) is not None and not _close(measured[key], recorded[key], **tolerance)
    ]


def fingerprint(run: runs.Run) -> dict[str, np.ndarray]:
    """What a freshly loaded ``run`` gives on a small fixed input: its own figures on the
    first :data:`EXAMPLES` test examples (a text model: the mean NLL of the first
    ``EXAMPLES`` windows of the validation text) and its first samples drawn with the
    recorded seed. Computed in this order on a model just loaded by :func:`load` (a VAE's
    figure draws its codes from the model's own seed generator)."""
    family, module = run.family, run.family.load()
    if family.samples == "text":
        ids = data.load_shakespeare().val[: EXAMPLES * run.config.context + 1]
        figures = {"nll": module.evaluate_nll(run.model, ids, run.config)["nats_per_char"]}
    else:
        small = dataclasses.replace(get_profile(run.record["profile"]), test_examples=EXAMPLES)
        figures = module.evaluate(
            run.model, run.config, dataset=run.record["dataset"], profile=small
        )
    result = {key: np.float64(value) for key, value in figures.items()}
    if family.samples in SAMPLES:
        samples = run.sample(SAMPLES[family.samples], seed=run.record["seed"])
        result["samples"] = np.asarray(
            samples, dtype=None if family.samples == "text" else "float32"
        )
    return result


def _differences(found: dict, reference: dict) -> list[str]:
    """One line per part of the fingerprint ``found`` that is not the ``reference``'s."""
    problems = []
    if set(found) != set(reference):
        problems.append(f"holds {sorted(found)}, the reference {sorted(reference)}")
    for key in sorted(set(found) & set(reference) - {"samples"}):
        if not _close(found[key], reference[key], rel=REFERENCE_TOLERANCE["figure"]):
            problems.append(
                f"{key} {float(found[key]):.6g}, the reference {float(reference[key]):.6g}"
            )
    if "samples" in found and "samples" in reference:
        new, old = found["samples"], reference["samples"]
        if new.dtype.kind == "U" or old.dtype.kind == "U":
            if str(new) != str(old):
                problems.append(f"samples {str(new)[:30]!r}..., the reference {str(old)[:30]!r}...")
        elif new.shape != old.shape:
            problems.append(f"samples of shape {new.shape}, the reference {old.shape}")
        else:
            gap = float(np.mean(np.abs(new - old)))
            if not gap <= REFERENCE_TOLERANCE["images"]:
                problems.append(f"samples {gap:.3g} away from the reference's (mean per pixel)")
    return problems


def reference_problems(folder: Path) -> list[str]:
    """Why the shipped run in ``folder`` does not give its reference: files that do not
    match ``SHA256SUMS``, no reference, or the parts of its fingerprint that differ.
    Empty when all is well."""
    store = folder.parent.parent
    files = [path for path in sorted(folder.iterdir()) if path.is_file()]
    problems = list(checkpoints.damaged(store, files).values())
    if not (folder / REFERENCE_FILE).is_file():
        return problems + [f"{folder} has no {REFERENCE_FILE}: `{RECORD_COMMAND}` writes it."]
    with np.load(folder / REFERENCE_FILE, allow_pickle=False) as stored:
        reference = {key: stored[key] for key in stored.files}
    return problems + [
        f"{folder.name}: {line}" for line in _differences(fingerprint(load(folder)), reference)
    ]


def record_reference(folder: Path) -> Path:
    """The full check of the run in ``folder`` and, when it passes, its fingerprint written
    to ``reference.npz`` with its checksum (:func:`tutorial_lib.checkpoints.commit_file`).
    Raises :class:`tutorial_lib.checkpoints.CheckpointError` when the check fails."""
    problems = full_check(load(folder))
    if problems:
        raise checkpoints.CheckpointError(
            f"{folder} does not reproduce its recorded figures ({'; '.join(problems)}): "
            "no reference written."
        )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **fingerprint(load(folder)))  # a model loaded afresh
    store = folder.parent.parent
    relative = f"{folder.relative_to(store).as_posix()}/{REFERENCE_FILE}"
    return checkpoints.commit_file(store, relative, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib.course.fingerprints", description=__doc__
    )
    parser.add_argument("command", choices=("check", "record"))
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args(argv)
    failed = 0
    for folder in shipped_runs(args.profile):
        name = f"{folder.parent.name}/{folder.name}"
        try:
            if args.command == "record":
                record_reference(folder)
                problems = []
            else:
                problems = full_check(load(folder))
        except (checkpoints.CheckpointError, training.RunError) as error:
            problems = [str(error)]
        failed += bool(problems)
        print(f"{name}: {'; '.join(problems) or 'reproduces its recorded figures'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
