"""Training helpers shared by every model family.

* :func:`set_seed` -- one call for reproducible runs.
* :func:`fit_resumable` -- ``model.fit`` that survives an interruption: it backs
  up the model and optimizer state after every epoch and, when called again on
  the same run folder, resumes at the first unfinished epoch.
* :func:`fit_for_profile` -- ``model.fit`` with the profile's epochs, steps and verbosity.
* :class:`SampleGrid` -- a callback that shows a grid of samples every N epochs.
* :func:`progress_verbosity` -- Keras progress bars for people, quiet in tests.
* :func:`save_run` / :func:`load_run_model` -- the run folder the CLI writes:
  ``model.keras``, ``metrics.json`` and ``samples.png``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from tutorial_lib.profiles import Profile, get_profile


def set_seed(seed: int = 0, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and the backend's random generators at once.

    With ``deterministic=True`` TensorFlow also picks deterministic kernels
    (slower on GPUs), so two runs give bit-identical weights.
    """
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def progress_verbosity(profile: Profile | None = None) -> int | str:
    """Verbosity for ``model.fit``: quiet in the fast profile, one line per epoch
    in a notebook, Keras's live progress bar in a terminal.

    The fast profile is what tests and CI run, where progress only clutters the
    log. In a notebook a saved progress bar keeps every redraw, so one summary
    line per epoch reads better.
    """
    profile = profile or get_profile()
    if profile.name == "fast":
        return 0
    return 2 if _in_notebook() else "auto"


def _read_history(path: Path, epochs_done: int | None = None) -> dict[str, list[float]]:
    """Per-epoch logs from a CSVLogger file, one row per finished epoch."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # A row may be repeated if a run stopped between logging and backing up.
    by_epoch = {int(row.pop("epoch")): row for row in rows}
    epochs = sorted(e for e in by_epoch if epochs_done is None or e < epochs_done)
    keys = list(by_epoch[epochs[0]]) if epochs else []
    logs = {key: [_to_float(by_epoch[e][key]) for e in epochs] for key in keys}
    # CSVLogger writes "NA" for a metric a run never logged (val_loss without
    # validation data): leave such columns out rather than keep a row of NaNs.
    return {key: values for key, values in logs.items() if not all(map(math.isnan, values))}


def _to_float(text: str) -> float:
    """A CSVLogger cell as a number ('NA', for a value not logged that epoch, is NaN)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


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

    After every epoch the weights, the optimizer state and the epoch number are
    backed up to ``run_dir/backup`` (``keras.callbacks.BackupAndRestore``) and
    the epoch's logs appended to ``run_dir/history.csv``. If the run is killed
    (kernel restart, Ctrl-C, power cut), calling this again with the same
    ``run_dir`` restores that state and trains only the missing epochs: no
    finished epoch is lost. The backup is deleted when training completes.

    The model must be built and compiled before the call. Other keyword
    arguments go to ``model.fit``. Returns a ``History`` whose ``.history``
    holds *every* epoch of the run, including those before an interruption.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = run_dir / "backup"
    history_path = run_dir / "history.csv"
    if not backup_dir.exists() and history_path.exists():
        history_path.unlink()  # a new run, not a resumed one: start its log afresh
    fit_kwargs.setdefault("verbose", progress_verbosity())
    if not isinstance(x, np.ndarray):
        fit_kwargs.setdefault("shuffle", False)  # a tf.data pipeline shuffles itself
    history = model.fit(
        x,
        epochs=epochs,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(backup_dir)),
            keras.callbacks.CSVLogger(str(history_path), append=True),
            *(callbacks or []),
        ],
        **fit_kwargs,
    )
    history.history = _read_history(history_path, epochs_done=epochs)
    return history


def fit_for_profile(
    model: keras.Model,
    dataset,
    *,
    profile: Profile,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    validation_data=None,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """``model.fit`` on a ``tf.data`` pipeline with the profile's settings.

    Epochs and steps per epoch (unless given) and verbosity come from
    ``profile``; a profile that caps the steps per epoch (``fast``) caps a
    given ``steps_per_epoch`` too. With ``run_dir`` the run is resumable
    (:func:`fit_resumable`). The pipeline must shuffle itself (see
    :func:`tutorial_lib.data.image_dataset`) and repeat when the steps per
    epoch are capped.
    """
    if steps_per_epoch is None:
        steps_per_epoch = profile.steps_per_epoch
    elif profile.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, profile.steps_per_epoch)
    kwargs = dict(
        epochs=profile.epochs if epochs is None else epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_data,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline reshuffles every epoch itself
        verbose=progress_verbosity(profile),
    )
    if run_dir is not None:
        return fit_resumable(model, dataset, run_dir=run_dir, **kwargs)
    return model.fit(dataset, **kwargs)


def images_seen(num_examples: int, epochs: int, profile: Profile) -> int:
    """How many training images a run under ``profile`` processes (for images/s)."""
    per_epoch = num_examples
    if profile.steps_per_epoch is not None:
        per_epoch = profile.steps_per_epoch * profile.batch_size
    return epochs * per_epoch


class SampleGrid(keras.callbacks.Callback):
    """Show a grid of generated images every ``every`` epochs.

    ``sample_fn(num)`` must return ``num`` images in [0, 1]. In a notebook the
    grid is displayed under the training cell; elsewhere (scripts, tests) it is
    only kept in :attr:`grids` as ``(epoch, images)`` pairs.
    """

    def __init__(
        self,
        sample_fn: Callable[[int], np.ndarray],
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

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        images = np.asarray(self.sample_fn(self.num))
        self.grids.append((epoch + 1, images))
        if _in_notebook():
            from IPython.display import display

            from tutorial_lib.plotting import image_grid

            display(image_grid(images, title=self.title.format(epoch=epoch + 1)))


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
METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"


def save_run(
    out_dir: str | Path,
    model: keras.Model,
    metrics: dict,
    samples: np.ndarray,
    *,
    title: str = "Samples",
) -> Path:
    """Write ``model.keras``, ``metrics.json`` and a PNG grid of ``samples`` to ``out_dir``."""
    from tutorial_lib.plotting import image_grid

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_FILE)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    image_grid(samples[:64], title=title).savefig(out_dir / SAMPLES_FILE, dpi=100)
    return out_dir


def load_run_model(run_dir: str | Path) -> keras.Model:
    """The model saved by :func:`save_run`, with a clear error if there is none."""
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No trained model at {path}. Train one first with "
            f"`python -m tutorial_lib train MODEL --out {run_dir}`."
        )
    return keras.models.load_model(path)


def load_run_metrics(run_dir: str | Path) -> dict:
    """The ``metrics.json`` of a run folder."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())
