"""Training helpers shared by every model family.

* :func:`set_seed` -- one call for reproducible runs.
* :func:`fit_resumable` -- ``model.fit`` that survives an interruption: it backs
  up the model and optimizer state after every epoch and, when called again on
  the same run folder, resumes at the first unfinished epoch.
* :func:`fit_for_profile` -- ``model.fit`` with a config's epochs and the profile's
  step cap and verbosity.
* :class:`TrainingClock` -- the training seconds of a run, added up over every leg
  of a run that was interrupted and resumed.
* :func:`averaged_copy` / :func:`update_average` -- an exponential moving average
  of a network's weights (the diffusion and flow-matching models sample with it).
* :class:`SampleGrid` -- a callback that shows a grid of samples every N epochs.
* :func:`progress_verbosity` -- Keras progress bars for people, quiet in tests.
* :func:`save_run` / :func:`load_run_model` -- the run folder the CLI writes:
  ``model.keras``, ``metrics.json``, ``history.csv`` and ``samples.png`` (or
  ``samples.txt``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from tutorial_lib import safe_io
from tutorial_lib.profiles import PROFILES, Profile, get_profile


def set_seed(seed: int = 0, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and the backend's random generators at once.

    With ``deterministic=True`` TensorFlow also picks deterministic kernels
    (slower on GPUs), so two runs give bit-identical weights.
    """
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def steps_per_call(steps_per_execution: int) -> int:
    """Training steps per call of the compiled step function, as a config asks:
    ``steps_per_execution`` on TensorFlow and JAX (fewer calls from Python), 1 on PyTorch
    (whose Keras trainer runs one step per call)."""
    return 1 if keras.backend.backend() == "torch" else int(steps_per_execution)


def progress_verbosity(profile: Profile | None = None) -> int:
    """Verbosity for ``model.fit``: quiet in the fast profile, Keras's live progress
    bar in a terminal, one line per epoch anywhere else.

    The fast profile is what tests and CI run, where progress only clutters the
    log. A notebook keeps every redraw of a progress bar in its saved output, and
    a file (``python -m tutorial_lib train ... > log.txt``) would collect thousands
    of them per epoch, so both get one summary line per epoch instead. (Keras's own
    ``"auto"`` draws the bar into files too: it takes every POSIX system for a
    live display.)
    """
    profile = profile or get_profile()
    if profile.name == "fast":
        return 0
    if _in_notebook():
        return 2
    return 1 if _is_terminal(sys.stdout) else 2


def _is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (not a file, a pipe or a capture)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _read_history(path: Path, epochs_done: int | None = None) -> dict[str, list[float]]:
    """Per-epoch logs from a CSVLogger file, one row per finished epoch.

    A file that is not such a log raises :class:`RunError`, naming it.
    """
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        # A row may be repeated if a run stopped between logging and backing up.
        by_epoch = {int(row.pop("epoch")): row for row in rows}
        epochs = sorted(e for e in by_epoch if epochs_done is None or e < epochs_done)
        keys = list(by_epoch[epochs[0]]) if epochs else []
        logs = {key: [_to_float(by_epoch[e][key]) for e in epochs] for key in keys}
    except (ValueError, TypeError, KeyError, csv.Error) as error:  # UnicodeDecodeError too
        raise RunError(
            f"{path} is damaged: it is not the per-epoch log a run writes ({_reason(error)}). "
            "It holds only those logs: delete it to use the run without them, "
            "or train the run again."
        ) from error
    # CSVLogger writes "NA" for a metric a run never logged (val_loss without
    # validation data): leave such columns out rather than keep a row of NaNs.
    return {key: values for key, values in logs.items() if not all(map(math.isnan, values))}


def _to_float(text: str) -> float:
    """A CSVLogger cell as a number ('NA', for a value not logged that epoch, is NaN)."""
    if text == "NA":
        return math.nan
    if text is None:  # a row cut short
        raise ValueError("a row has fewer cells than the header")
    return float(text)


def fit_resumable(
    model: keras.Model,
    x,
    *,
    run_dir: str | Path,
    epochs: int,
    callbacks: list | None = None,
    **fit_kwargs,
) -> keras.callbacks.History:
    """``model.fit`` that resumes where an interrupted run stopped.

    After every epoch the epoch's logs are appended to ``run_dir/history.csv``,
    then the weights, the optimizer state and the epoch number are backed up to
    ``run_dir/backup``: written whole beside the last backup and swapped in for it
    in one step, so a kill at any moment leaves a complete backup. If the run is
    killed (kernel restart, Ctrl-C, power cut), calling this again with the same
    ``run_dir`` restores that state and trains only the missing epochs: no
    finished epoch is lost. The backup is deleted when training completes, or,
    when a :class:`TrainingClock` of the run folder is among the callbacks, by
    :meth:`TrainingClock.finish` once the caller has saved the trained model.

    The model must be built and compiled before the call. Other keyword
    arguments go to ``model.fit``. Returns a ``History`` whose ``.history``
    holds *every* epoch of the run, including those before an interruption.
    A full disk or a folder that cannot be written raises
    :class:`tutorial_lib.safe_io.WriteError` in one line; the last backup stays.
    """
    run_dir = Path(run_dir)
    backup_dir = run_dir / BACKUP_DIR
    history_path = run_dir / HISTORY_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        safe_io.recover(backup_dir)
        if not backup_dir.exists() and history_path.exists():
            history_path.unlink()  # a new run, not a resumed one: start its log afresh
        elif backup_dir.exists():
            _trim_history(history_path, _backed_up_epochs(backup_dir))
    except OSError as error:
        raise safe_io.write_error(error, run_dir) from error
    fit_kwargs.setdefault("verbose", progress_verbosity())
    if not isinstance(x, np.ndarray):
        fit_kwargs.setdefault("shuffle", False)  # the batches shuffle themselves
    clocks = [c for c in callbacks or [] if isinstance(c, TrainingClock)]
    keep = any(clock.path is not None for clock in clocks)  # the clock's finish() deletes it
    try:
        history = model.fit(
            x,
            epochs=epochs,
            callbacks=[
                # A clock first: the training seconds it adds to the logs go into the log
                # file; the log before the backup, so a backed-up epoch is always logged.
                *clocks,
                keras.callbacks.CSVLogger(str(history_path), append=True),
                _Backup(str(backup_dir), delete_checkpoint=not keep),
                *[c for c in callbacks or [] if not isinstance(c, TrainingClock)],
            ],
            **fit_kwargs,
        )
    except OSError as error:  # the log or the backup could not be written
        raise safe_io.write_error(
            error,
            run_dir,
            "The run folder keeps the backup of its last complete epoch: run the same "
            "training again to resume it",
        ) from error
    history.history = _read_history(history_path, epochs_done=epochs)
    return history


BACKUP_DIR = "backup"
BACKUP_MODEL = "latest.keras"
BACKUP_METADATA = "training_metadata.json"


def _backed_up_epochs(backup_dir: Path) -> int | None:
    """How many epochs the backup in ``backup_dir`` holds (None: it does not say)."""
    try:
        return int(json.loads((backup_dir / BACKUP_METADATA).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # restoring it says what is wrong


def _trim_history(path: Path, epochs: int | None) -> None:
    """Keep the rows of ``history.csv`` for the ``epochs`` the backup holds: a row logged
    after the last backup, or cut short by a kill, would otherwise stay in the log."""
    if epochs is None or not path.is_file():
        return
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return  # not a log: reading it at the end says so
    if not lines:
        return
    header, kept = lines[0], {}
    width = len(header.split(","))
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) == width and cells[0].isdigit() and int(cells[0]) < epochs:
            kept[int(cells[0])] = line
    text = "\n".join([header, *(kept[e] for e in sorted(kept))]) + "\n"
    if text != "\n".join(lines) + "\n":
        safe_io.atomic_write_text(path, text)


class _Backup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that writes each backup whole before it replaces the last one,
    never lets HDF5 write to the disk (a full disk then raises a plain ``OSError`` instead
    of crashing the process), and says what to do when the backup it restores is damaged
    or does not fit the model."""

    def __init__(self, backup_dir: str, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self._weights_path = str(Path(backup_dir) / BACKUP_MODEL)
        self._training_metadata_path = str(Path(backup_dir) / BACKUP_METADATA)
        self._prev_weights_path = self._weights_path + ".bkp"  # never written

    def on_train_begin(self, logs=None):
        import warnings

        run_dir = Path(self.backup_dir).parent
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                super().on_train_begin(logs)
        except Exception as error:  # a truncated model file, a mangled epoch record
            raise RunError(
                f"{self.backup_dir}, the backup of an interrupted run, is damaged and cannot "
                f"be restored ({_reason(error)}). Delete {run_dir} and train again: the run "
                "starts over from its first epoch."
            ) from error
        skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
        if skipped:  # Keras would go on without part of the state: refuse instead
            raise RunError(
                f"{self.backup_dir}, the backup of an interrupted run, holds only part of the "
                f"training state ({_reason(Warning(skipped[0]))}); resuming would drop it. "
                f"Delete {run_dir} and train again: the run starts over from its first epoch."
            )

    def _save_model(self):
        backup = Path(self.backup_dir)
        staging = backup.with_name(backup.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            self.model.save(staging / BACKUP_MODEL)  # a zip written by Python, not by HDF5
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            safe_io.atomic_write_text(staging / BACKUP_METADATA, json.dumps(metadata))
            safe_io.swap_in(staging, backup)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def capped_steps(steps_per_epoch: int | None, profile: Profile) -> int | None:
    """Steps per epoch after the profile's cap (``None``: a full pass over the data)."""
    if profile.steps_per_epoch is None:
        return steps_per_epoch
    if steps_per_epoch is None:
        return profile.steps_per_epoch
    return min(steps_per_epoch, profile.steps_per_epoch)


def fit_for_profile(
    model: keras.Model,
    dataset,
    *,
    profile: Profile,
    epochs: int,
    steps_per_epoch: int | None = None,
    validation_data=None,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """``model.fit`` on a pipeline of batches for ``epochs`` epochs, with the
    profile's cap on the steps per epoch (:func:`capped_steps`), its verbosity, and
    its choice of eager or traced steps (:attr:`Profile.run_eagerly`, on TensorFlow: JAX
    traces even an eager step to differentiate it, so it compiles its steps always).

    With ``run_dir`` the run is resumable (:func:`fit_resumable`). The pipeline
    must shuffle itself (see :func:`tutorial_lib.data.image_dataset`) and
    repeat when the steps per epoch are capped.
    """
    from tutorial_lib import hosts

    steps_per_epoch = capped_steps(steps_per_epoch, profile)
    # Trained across processes (tutorial_lib.hosts), each feeds its own part of every
    # batch; in any other run the data comes back as it is.
    dataset = hosts.shard_batches(dataset)
    validation_data = hosts.shard_batches(validation_data)
    if profile.run_eagerly and keras.backend.backend() == "tensorflow":
        model.run_eagerly = True
    kwargs = dict(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_data,
        callbacks=callbacks,
        shuffle=False,  # the batches reshuffle every epoch themselves
        verbose=progress_verbosity(profile),
    )
    if run_dir is not None:
        return fit_resumable(model, dataset, run_dir=run_dir, **kwargs)
    return model.fit(dataset, **kwargs)


def examples_seen(num_examples: int, epochs: int, batch_size: int, profile: Profile) -> int:
    """How many training examples a run of ``epochs`` over ``num_examples`` in batches of
    ``batch_size`` processes under ``profile`` (for examples per second)."""
    per_epoch = num_examples
    if profile.steps_per_epoch is not None:
        per_epoch = min(num_examples, profile.steps_per_epoch * batch_size)
    return epochs * per_epoch


@dataclasses.dataclass
class Trained:
    """What a family's ``train_model`` returns.

    Attributes:
        model: the trained model.
        history: its per-epoch logs, ``{"loss": [...], ...}``.
        examples_seen: how many training examples it processed (images, or
            tokens for a text model), for the throughput.
        stages: models trained on the way and needed later, by name (latent
            diffusion's ``"autoencoder"``); a run folder keeps each in a subfolder.
    """

    model: keras.Model
    history: dict
    examples_seen: int
    stages: dict = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------
# Training time over interrupted runs, and weight averages
# --------------------------------------------------------------------------

CLOCK_FILE = "clock.json"


class TrainingClock(keras.callbacks.Callback):
    """The training seconds of a run, over every leg of it.

    At every epoch's end it adds the training seconds so far to the epoch's logs
    (``train_seconds``, so a run's history can be drawn against time), without
    the time that the ``measuring`` callbacks spent (their ``measuring_seconds``:
    sample grids, quality histories). A run
    folder that was interrupted holds ``clock.json``: the seconds of each
    earlier leg, written at every epoch's end. A clock made for that folder
    starts a new leg now and adds the earlier ones up; :meth:`finish` returns
    every leg's seconds and removes the file (the run is complete). Pass the
    clock as a callback to every ``fit`` of the run; without a folder it only
    times this leg.
    """

    def __init__(self, run_dir: str | Path | None = None, *, measuring: list | None = None):
        super().__init__()
        self.measuring = list(measuring or [])
        self.path = None if run_dir is None else Path(run_dir) / CLOCK_FILE
        self.earlier: list[float] = []
        if self.path is not None and self.path.is_file():
            self.earlier = self._read_legs(self.path)
        self.start = time.perf_counter()

    @staticmethod
    def _read_legs(path: Path) -> list[float]:
        try:
            legs = [float(s) for s in json.loads(path.read_text(encoding="utf-8"))["legs"]]
            if not all(math.isfinite(s) and s >= 0 for s in legs):
                raise ValueError(f"leg seconds must be finite and >= 0, got {legs}")
            return legs
        except (ValueError, TypeError, KeyError) as error:  # JSONDecodeError too
            raise RunError(
                f"{path}, the training time of an interrupted run, is damaged "
                f"({_reason(error)}). Delete it to resume without the earlier legs' time, "
                f"or delete {path.parent} and train again from the start."
            ) from error

    @property
    def resumed(self) -> bool:
        """True when this leg continues an interrupted run."""
        return bool(self.earlier)

    def legs(self) -> list[float]:
        """Seconds of every leg so far, this one (still running) last."""
        measured = sum(getattr(c, "measuring_seconds", 0.0) for c in self.measuring)
        return [*self.earlier, time.perf_counter() - self.start - measured]

    def on_epoch_end(self, epoch, logs=None):
        legs = self.legs()
        if logs is not None:  # the history gets the training seconds so far, every epoch
            logs["train_seconds"] = sum(legs)
        if self.path is not None:
            text = json.dumps({"legs": [round(s, 2) for s in legs]}) + "\n"
            safe_io.atomic_write_text(self.path, text)

    def finish(self) -> list[float]:
        """Every leg's seconds; the run's training is complete (and its trained model
        saved), so its clock file and its backups go."""
        legs = self.legs()
        if self.path is not None:
            remove_backups(self.path.parent)
            self.path.unlink(missing_ok=True)
        return legs


def remove_backups(run_dir: str | Path) -> None:
    """Delete the backups of a run folder and of its stages (its training is complete)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    for folder in [run_dir, *(p for p in run_dir.iterdir() if p.is_dir())]:
        for name in (BACKUP_DIR, BACKUP_DIR + ".new", BACKUP_DIR + safe_io.OLD_SUFFIX):
            shutil.rmtree(folder / name, ignore_errors=True)


def is_resuming(run_dir: str | Path | None) -> bool:
    """Whether ``run_dir`` holds an interrupted run (its :class:`TrainingClock` file)."""
    return run_dir is not None and (Path(run_dir) / CLOCK_FILE).is_file()


def run_state(run_dir: str | Path | None) -> str:
    """Where the run in ``run_dir`` stands: ``"new"`` (nothing yet), ``"training"``
    (interrupted while it trained: it resumes at its first unfinished epoch),
    ``"evaluate"`` (its training finished and was saved, but it was interrupted while it
    was evaluated or its folder written: it resumes there) or ``"complete"``."""
    if run_dir is None or not Path(run_dir).is_dir():
        return "new"
    run_dir = Path(run_dir)
    if (run_dir / TRAINED_FILE).is_file():
        return "evaluate"
    if is_resuming(run_dir) or any(
        (run_dir / name).is_dir() for name in (BACKUP_DIR, BACKUP_DIR + safe_io.OLD_SUFFIX)
    ):
        return "training"
    return "complete" if (run_dir / METRICS_FILE).is_file() else "new"


def averaged_copy(network: keras.Model) -> keras.Model:
    """A frozen copy of ``network`` with the same weights, to hold their moving average."""
    average = keras.models.clone_model(network)
    average.set_weights(network.get_weights())
    average.trainable = False
    return average


def update_average(average: keras.Model, network: keras.Model, decay: float, step) -> None:
    r"""Move every weight of ``average`` towards ``network``'s:
    :math:`\bar\theta \leftarrow d\, \bar\theta + (1 - d)\, \theta` with
    :math:`d = \min(\text{decay}, \frac{1 + n}{10 + n})` after :math:`n` = ``step``
    optimizer steps (a warm-up: early weights are forgotten fast)."""
    from keras import ops

    steps = ops.cast(step, "float32")
    d = ops.minimum(decay, (1.0 + steps) / (10.0 + steps))
    for averaged, weight in zip(average.weights, network.weights, strict=True):
        averaged.assign(d * averaged + (1.0 - d) * ops.cast(weight, "float32"))


class SampleGrid(keras.callbacks.Callback):
    """Show a grid of generated images every ``every`` epochs.

    ``sample_fn(model, num)`` must return ``num`` images in [0, 1] from the
    model being trained. In a notebook the grid is displayed under the training
    cell; elsewhere (scripts, tests) it is only kept in :attr:`grids` as
    ``(epoch, images)`` pairs. :attr:`measuring_seconds` is the time it took
    (a run's record leaves it out of the training time).
    """

    def __init__(
        self,
        sample_fn: Callable[[keras.Model, int], np.ndarray],
        *,
        every: int = 1,
        num: int = 16,
        title: str = "Samples after epoch {epoch}",
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs; got {every}.")
        self.sample_fn, self.every, self.num, self.title = sample_fn, every, num, title
        self.grids: list[tuple[int, np.ndarray]] = []
        self.measuring_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        start = time.perf_counter()
        images = np.asarray(self.sample_fn(self.model, self.num))
        self.grids.append((epoch + 1, images))
        self._show(epoch + 1, images)
        self.measuring_seconds += time.perf_counter() - start

    def _show(self, epoch: int, images: np.ndarray) -> None:
        if _in_notebook():
            from IPython.display import display

            from tutorial_lib.plotting import image_grid

            display(image_grid(images, title=self.title.format(epoch=epoch)))

    def to_checkpoint(self) -> dict:
        """The grids, for a lesson's shipped results (:mod:`tutorial_lib.checkpoints`)."""
        return {"epochs": [epoch for epoch, _ in self.grids], "images": [g for _, g in self.grids]}

    def from_checkpoint(self, saved: dict) -> None:
        """Take back and show the grids a shipped run drew while it trained."""
        self.grids = list(zip(saved["epochs"], saved["images"], strict=True))
        for epoch, images in self.grids:
            self._show(epoch, np.asarray(images))


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where figures can be displayed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Timer:
    """Wall-clock seconds of a ``with`` block: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = math.nan
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


# --------------------------------------------------------------------------
# Run folders: what `python -m tutorial_lib train` writes
# --------------------------------------------------------------------------

MODEL_FILE = "model.keras"
TRAINED_MODEL = "trained.keras"  # the trained model, saved before it is evaluated
TRAINED_FILE = "trained.json"  # its record and history so far
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
SAMPLES_FILE = "samples.png"
SAMPLES_TEXT_FILE = "samples.txt"


class RunError(RuntimeError):
    """A run folder (or a file in it) is missing or damaged; the message says what to do."""


def _reason(error: BaseException, limit: int = 160) -> str:
    """An exception as one short line, for the messages of :class:`RunError`."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:limit]


def save_run(
    out_dir: str | Path,
    model: keras.Model,
    metrics: dict,
    samples: np.ndarray | str,
    *,
    title: str = "Samples",
    ncols: int | None = None,
) -> Path:
    """Write ``model.keras``, ``metrics.json`` and the samples to ``out_dir``: a PNG
    grid of up to 64 images (``ncols`` a row), or ``samples.txt`` for a text model.

    Each file is written whole beside the old one and then renamed over it (a kill
    leaves the old file or the new, never half of one); the record goes last.
    """
    out_dir = Path(out_dir)
    with safe_io.atomic_path(out_dir / MODEL_FILE) as tmp:
        model.save(tmp)
    if isinstance(samples, str):
        safe_io.atomic_write_text(out_dir / SAMPLES_TEXT_FILE, samples)
    else:
        from tutorial_lib.plotting import image_grid

        grid = image_grid(samples[:64], title=title, ncols=ncols)
        with safe_io.atomic_path(out_dir / SAMPLES_FILE) as tmp:
            grid.savefig(tmp, dpi=100)
    safe_io.atomic_write_text(
        out_dir / METRICS_FILE, json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    )
    return out_dir


def load_run_model(run_dir: str | Path, *, load=None, model: str = "MODEL") -> keras.Model:
    """The model saved by :func:`save_run`, with a clear error if it is missing or damaged.

    ``load(path)`` reads the file (default: ``keras.models.load_model``). ``run_dir``
    may also be the folder of a stage inside a run folder (latent diffusion's
    ``autoencoder/``): the advice then names the run folder, which is what trains
    again. ``model`` is the model name the advice gives.
    """
    run_dir = Path(run_dir)
    path = run_dir / MODEL_FILE
    retrain = f"`python -m tutorial_lib train {model} --out {_run_folder_of(run_dir)}`"
    if not path.is_file():
        raise RunError(f"No trained model at {path}. Train one first with {retrain}.")
    if not zipfile.is_zipfile(path):  # Keras would call it "not found"
        raise RunError(
            f"{path} is damaged (not a complete .keras archive: cut short or overwritten). "
            f"Train the run again with {retrain}."
        )
    try:
        return (load or keras.models.load_model)(path)
    except Exception as error:  # a truncated zip, a wrong file, weights that do not fit
        raise RunError(
            f"{path} is damaged and cannot be loaded ({_reason(error)}). "
            f"Train the run again with {retrain}."
        ) from error


def _run_folder_of(folder: Path) -> Path:
    """The run folder that ``folder`` belongs to: itself, or for a stage's subfolder
    the run folder around it (the one with a record or a clock)."""
    parent = folder.parent
    if parent != folder and any((parent / f).is_file() for f in (METRICS_FILE, CLOCK_FILE)):
        return parent
    return folder


def load_run_metrics(run_dir: str | Path) -> dict:
    """The ``metrics.json`` of a run folder, with a clear error if it is missing or damaged.

    A record must be a JSON object naming the model and a known profile.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise RunError(f"No record at {path}: the run never finished. Train it again.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise RunError(
            f"{path} is damaged (not JSON: {_reason(error)}). Train the run again."
        ) from error
    problem = None
    if not isinstance(record, dict):
        problem = f"a JSON {type(record).__name__}, not a record"
    elif not isinstance(record.get("model"), str):
        problem = "it names no model"
    elif record.get("profile") not in PROFILES:
        problem = f"its profile {record.get('profile')!r} is none of {', '.join(PROFILES)}"
    elif not isinstance(record.get("config") or {}, dict):
        problem = "its config is not a JSON object"
    if problem:
        raise RunError(f"{path} is damaged ({problem}). Train the run again.")
    return record


def load_run_history(run_dir: str | Path) -> dict[str, list[float]]:
    """The per-epoch logs of a run folder (``history.csv``), or {} if it has none."""
    return _read_history(Path(run_dir) / HISTORY_FILE)
