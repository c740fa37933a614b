"""The life cycle of every model family: train, load, sample, evaluate.

::

    run = runs.train("vae")                         # the profile's VAE, trained now
    run = runs.train("gan", out_dir="runs/gan")     # ...into a run folder (resumable)
    run = runs.load("runs/gan")                     # a run folder trained before
    images = run.sample(64, seed=1)                 # images in [0, 1] (text for the GPT)
    run.record["frechet_distance"]                  # every figure of the run

The command line, the benchmark and the notebooks train through :func:`train`,
so one model name under one profile is one model everywhere. The family's
module does the family's own work (see :mod:`tutorial_lib.families`); this
module does what every family shares: the device, the seed, the clock, the
evaluation, the run folder.

A run's **record** (:data:`RECORD_KEYS`) has the same keys and units for every
family, ``None`` where a figure does not apply: a GAN has no likelihood, the
GPT's samples are not images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import time
from pathlib import Path

import numpy as np

from tutorial_lib import data, device, families, metrics, safe_io, training
from tutorial_lib.families import Family
from tutorial_lib.profiles import Profile, get_profile

# What a record holds, for every family.
RECORD_KEYS = {
    "model": "the model name (tutorial_lib.families)",
    "dataset": "the data set it trained on",
    "profile": "the profile it trained under",
    "seed": "the seed of its training",
    "config": "every size and setting it trained with",
    "parameters": "trainable and frozen weights of the model",
    "train_seconds": "wall-clock seconds of training, every leg of a resumed run added up "
    "(without the time callbacks spent measuring, such as sample grids)",
    "examples_seen": "training examples processed (images, or characters for a text model)",
    "train_legs": "how many legs the training took (1 unless it was interrupted and resumed)",
    "train_images_per_second": "training images processed per second (image models)",
    "train_tokens_per_second": "training tokens processed per second (text models)",
    "final_logs": "the last epoch's logged values (losses, accuracies)",
    "test_mse": "test reconstruction error, mean squared error per pixel (autoencoder)",
    "likelihood": "'bound' or 'exact' (None: the model defines no likelihood)",
    "nll": "negative log-likelihood (or its bound) on held-out data, in nll_unit",
    "nll_unit": "'nats per image' or 'nats per character'",
    "bits_per_dim": "nll in bits per dimension (per pixel, or per character)",
    "num_samples": "how many samples were drawn to score the model",
    "sample_seconds_per_item": "seconds to draw one sample (an image, or a character)",
    "confidence": "evaluation classifier's mean top probability on the samples",
    "coverage": "fraction of the ten classes that hold at least 2% of the samples",
    "inception_score": "exp of the mean KL between class posteriors and their marginal",
    "frechet_distance": "Fréchet distance to the test set in the classifier's features",
    "class_histogram": "samples per predicted class",
    "stages_given": "the trained parts it was handed instead of training them (a latent "
    "model's 'autoencoder'), by name",
    "date": "the day it was trained",
    "machine": "the machine it was trained on",
}
QUALITY_KEYS = ("confidence", "coverage", "inception_score", "frechet_distance", "class_histogram")


@dataclasses.dataclass
class Run:
    """A trained model with everything known about it.

    Attributes:
        name: the model name (a key of :data:`tutorial_lib.families.FAMILIES`).
        config: the family's config it trained with.
        model: the trained ``keras.Model``.
        history: per-epoch logs, ``{"loss": [...], ...}``.
        record: every figure of the run (:data:`RECORD_KEYS`).
        run_dir: the run folder, if it has one.
        stages: models trained on the way, by name (latent diffusion's
            ``"autoencoder"``, its VAE).
    """

    name: str
    config: object
    model: object
    history: dict
    record: dict
    run_dir: Path | None = None
    stages: dict = dataclasses.field(default_factory=dict)

    @property
    def family(self) -> Family:
        return families.get(self.name)

    def sample(self, num: int, *, seed: int = 0, **options):
        """``num`` images in [0, 1] of shape (num, 28, 28, 1), or a text of ``num``
        characters; ``options`` are the family's (labels, guidance, temperature, ...).

        A request that would not fit in memory is refused before it runs
        (:func:`check_in_memory`); :func:`sample_to_file` streams a large one to a file.
        """
        check_in_memory(self.family, num)
        return self.family.load().sample(self.model, num, seed=seed, **options)


def _known(options: dict) -> dict:
    """Options that were given (the command line passes None for those that were not)."""
    return {
        key: value for key, value in options.items() if value is not None and value is not False
    }


def config_of(name: str, profile: str | Profile | None = None, **options):
    """The config model ``name`` trains with under ``profile`` (default: the one in force),
    with the ``train`` options that were given applied."""
    return families.get(name).config(get_profile(profile), **_known(options))


def train(
    name: str,
    profile: str | Profile | None = None,
    *,
    dataset: str | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    callbacks: list | None = None,
    evaluate: bool = True,
    stages: dict | None = None,
    **options,
) -> Run:
    """Train model ``name`` as the profile says, evaluate it, and write its run folder.

    Args:
        name: a model name (``"vae"``, ``"gan"``, ...).
        profile: a profile or its name (default: the one in force).
        dataset: the data set (default: the family's first).
        seed: seeds the weights, the data order and the sampling.
        out_dir: the run folder; training backs itself up there every epoch,
            and calling again after an interruption resumes it (at its first
            unfinished epoch, or at the evaluation when the training had finished:
            the trained model is saved before it is evaluated). One process at a
            time writes a run folder (:func:`lock_run_folder`); every file is
            written whole, then renamed into place.
        callbacks: Keras callbacks for the training (sample grids, quality history).
        evaluate: score the trained model (:func:`evaluate`) into the record.
        stages: trained parts to reuse instead of training them, by name
            (``{"autoencoder": vae_model}`` for latent diffusion).
        options: the family's ``train`` options, such as ``kind="conv"``
            (:meth:`tutorial_lib.families.Family.options_for`).
    """
    family = families.get(name)
    dataset = dataset or family.datasets[0]
    if dataset not in family.datasets:
        raise data.DataError(
            f"{name} trains on {', '.join(family.datasets)}; got dataset {dataset!r}."
        )
    setup = device.setup(profile)  # the profile resolved, once: setup.profile from here on
    if out_dir is None:
        run = _fit(name, setup, dataset, seed, None, callbacks, stages, options)
        if evaluate:
            run.record.update(_evaluate(run, setup.profile))
        return run
    with lock_run_folder(out_dir):
        return _train_in_folder(
            name, setup, dataset, seed, Path(out_dir), callbacks, evaluate, stages, options
        )


@contextlib.contextmanager
def lock_run_folder(run_dir: str | Path):
    """Hold the run folder's lock for a ``with`` block: a second writer (another
    process) stops at once with a :class:`tutorial_lib.training.RunError` naming the
    process that holds it. The same process may take it again (:func:`train` does)."""
    lock = safe_io.FolderLock(
        run_dir, what="run folder", advice=", or train into another folder (--out)"
    )
    try:
        lock.__enter__()
    except safe_io.FolderBusyError as error:
        raise training.RunError(str(error)) from None
    except OSError as error:  # the folder cannot be made or written
        raise safe_io.write_error(error, run_dir) from error
    try:
        yield lock
    finally:
        lock.__exit__(None, None, None)


def _train_in_folder(name, setup, dataset, seed, out_dir, callbacks, evaluate, stages, options):
    """:func:`train` into a run folder (locked by the caller): train, or take the trained
    model an interrupted run saved; save it before it is evaluated; then evaluate and
    write the folder. A kill at any point leaves a folder the same call resumes."""
    if training.run_state(out_dir) == "evaluate":
        run = _trained_in(out_dir)
        if run.name != name:
            raise training.RunError(
                f"{out_dir} holds a finished training of {run.name}, not {name}: train "
                f"{run.name} into it to finish that run, or train {name} into another folder."
            )
    else:
        run = _fit(name, setup, dataset, seed, out_dir, callbacks, stages, options)
    if evaluate:
        run.record.update(_evaluate(run, setup.profile))
    try:
        _save(run, setup.profile)
        (out_dir / training.TRAINED_FILE).unlink(missing_ok=True)  # the run is complete
        (out_dir / training.TRAINED_MODEL).unlink(missing_ok=True)
    except OSError as error:
        raise safe_io.write_error(
            error,
            out_dir,
            "The trained model is kept there: run the same training again to evaluate and save it",
        ) from error
    return run


def _fit(name, setup, dataset, seed, out_dir, callbacks, stages, options) -> Run:
    """Train model ``name`` (resuming an interrupted run in ``out_dir``); the run with its
    record of the training. With a run folder the trained model, its record and history
    are saved there (:data:`tutorial_lib.training.TRAINED_MODEL`) before the clock and
    the backups go: from then on the training is never lost."""
    family = families.get(name)
    module = family.load()
    profile = setup.profile
    training.set_seed(seed)
    config = family.config(profile, **_known(options))
    clock = training.TrainingClock(out_dir, measuring=callbacks)
    with setup.strategy.scope():
        trained = module.train_model(
            config,
            dataset=dataset,
            profile=profile,
            seed=seed,
            run_dir=out_dir,
            callbacks=[clock, *(callbacks or [])],
            **(stages or {}),
        )
    legs = clock.legs()  # without the time callbacks spent measuring (sample grids, ...)
    seconds = sum(legs)
    model, history = trained.model, trained.history
    per_second = round(trained.examples_seen / seconds, 1) if seconds > 0 else None
    record = {key: None for key in RECORD_KEYS}
    record.update(
        model=name,
        dataset=dataset,
        profile=profile.name,
        seed=seed,
        config=dataclasses.asdict(config),
        parameters=int(model.count_params()),
        train_seconds=round(seconds, 2),
        examples_seen=int(trained.examples_seen),
        train_legs=len(legs),
        final_logs={key: values[-1] for key, values in history.items() if values},
        stages_given=sorted(stages or {}),
        date=datetime.date.today().isoformat(),
        machine=device.machine_description(),
    )
    record["train_tokens_per_second" if family.samples == "text" else "train_images_per_second"] = (
        per_second
    )
    run = Run(name, config, model, history, record, out_dir, trained.stages)
    if out_dir is not None:
        _save_trained(run)
    clock.finish()
    return run


def _save_trained(run: Run) -> None:
    """Keep the trained model and its record so far in its run folder: a run killed while
    it is evaluated or saved resumes there instead of training again."""
    folder = run.run_dir
    try:
        with safe_io.atomic_path(folder / training.TRAINED_MODEL) as tmp:
            run.model.save(tmp)
        state = {"record": run.record, "history": run.history}
        safe_io.atomic_write_text(folder / training.TRAINED_FILE, json.dumps(state) + "\n")
    except OSError as error:
        raise safe_io.write_error(
            error,
            folder,
            "The run folder keeps the backup of its last epoch: run the same training again "
            "to resume it",
        ) from error


def _trained_in(run_dir: Path) -> Run:
    """The trained model an interrupted run saved before it was evaluated."""
    path = run_dir / training.TRAINED_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        record, history = dict(state["record"]), dict(state["history"])
        name = record["model"]
        families.get(name).load()  # registers the family's model classes with Keras
    except (ValueError, KeyError, TypeError) as error:
        raise training.RunError(
            f"{path}, the record of a finished training, is damaged ({training._reason(error)}). "
            f"Delete {path} and {run_dir / training.TRAINED_MODEL} and train again."
        ) from error
    model = _load_trained_model(run_dir / training.TRAINED_MODEL, name)
    stages = {
        p.parent.name: training.load_run_model(p.parent, model=name)
        for p in sorted(run_dir.glob(f"*/{training.MODEL_FILE}"))
    }
    config = _config_from_dict(families.get(name).config(record["profile"]), record["config"])
    return Run(name, config, model, history, record, run_dir, stages)


def _load_trained_model(path: Path, name: str):
    """The model :func:`_save_trained` kept, or a :class:`RunError` that says what to do."""
    import zipfile

    import keras

    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not a complete .keras archive")
        return keras.models.load_model(path)
    except Exception as error:  # a missing or damaged file, weights that do not fit
        raise training.RunError(
            f"{path}, the finished training kept for its evaluation, is damaged "
            f"({training._reason(error)}). Delete {path.parent / training.TRAINED_FILE} and "
            f"train {name} again into {path.parent}."
        ) from error


def _evaluate(run: Run, profile: Profile, *, seed: int | None = None, timed: bool = True) -> dict:
    """The figures of :func:`evaluate` (a dict of record keys)."""
    family = run.family
    module = family.load()
    seed = run.record["seed"] if seed is None else seed
    figures = dict(
        module.evaluate(run.model, run.config, dataset=run.record["dataset"], profile=profile)
    )
    if family.likelihood != "none":
        nll = figures["nll"]
        figures.update(
            likelihood=family.likelihood,
            nll_unit=family.likelihood_unit,
            bits_per_dim=metrics.bits_per_dimension(nll, family.dimensions),
        )
    if family.samples == "images":
        num = max(profile.eval_samples, metrics.MIN_FD_SAMPLES)
        if timed:
            run.sample(2, seed=seed)  # the first call traces the sampling graph: not timed
        with training.Timer() as timer:
            images = run.sample(num, seed=seed)
        quality = metrics.image_quality(images, run.record["dataset"])
        figures.update({key: quality[key] for key in QUALITY_KEYS})
        figures.update(num_samples=num)
        if timed:
            figures.update(sample_seconds_per_item=timer.seconds / num)
    elif family.samples == "text" and timed:
        run.sample(2, seed=seed)
        with training.Timer() as timer:
            run.sample(profile.eval_characters, seed=seed)
        figures.update(
            num_samples=profile.eval_characters,
            sample_seconds_per_item=timer.seconds / profile.eval_characters,
        )
    return figures


def evaluate(
    run: Run, profile: str | Profile | None = None, *, seed: int | None = None, timed: bool = True
) -> dict:
    """Score a run into its record, in the same keys and units for every family.

    The family's own figures (the autoencoder's test MSE, the VAE's negative
    ELBO, the GPT's validation NLL), the likelihood in bits per dimension, and
    for image models ``profile.eval_samples`` samples (at least 50) timed and
    scored by the evaluation classifier (:func:`tutorial_lib.metrics.image_quality`).
    ``timed=False`` leaves the sampling speed as it was (no warm-up draw, no clock):
    the figures of a shipped model checked again. Returns the updated record.
    """
    profile = get_profile(profile or run.record["profile"])
    run.record.update(_evaluate(run, profile, seed=seed, timed=timed))
    return run.record


def _save(run: Run, profile: Profile) -> None:
    """The run folder: model, record and the picture (or text) of its samples."""
    family = run.family
    ncols = 10
    if family.samples == "none":
        images, title = family.load().preview(
            run.model, run.config, dataset=run.record["dataset"], profile=profile
        )
        ncols = 8
    elif family.samples == "text":
        images, title = run.sample(400, seed=run.record["seed"]), ""
    else:
        images = run.sample(60, seed=run.record["seed"])
        title = f"{family.title} on {run.record['dataset']}: samples"
        if family.conditional and getattr(run.model, "conditional", False):
            title += " (labels 0..9, column by column)"
    training.save_run(run.run_dir, run.model, run.record, images, title=title, ncols=ncols)


def load(run_dir: str | Path, *, load_model=None) -> Run:
    """A run folder written by :func:`train` (or ``python -m tutorial_lib train``).

    Every stage a run trained first (a latent diffusion model's VAE, in the
    folder ``autoencoder/``) is loaded too, into :attr:`Run.stages`.
    Missing or damaged files raise :class:`tutorial_lib.training.RunError`
    with what to do. ``load_model(path)`` reads a model file (default: Keras's,
    through :func:`tutorial_lib.training.load_run_model`).
    """
    run_dir = Path(run_dir)
    if training.run_state(run_dir) == "evaluate":
        raise training.RunError(
            f"{run_dir} holds a training that was interrupted while it was evaluated and "
            "saved: run the same train command again to finish it (it does not train again)."
        )
    record = training.load_run_metrics(run_dir)
    name = record.get("model")
    if name not in families.FAMILIES:
        raise training.RunError(f"{run_dir}: its record names no known model ({name!r}).")
    families.get(name).load()  # registers the family's model classes with Keras
    model = training.load_run_model(run_dir, load=load_model, model=name)
    stages = {
        path.parent.name: training.load_run_model(path.parent, load=load_model, model=name)
        for path in sorted(run_dir.glob(f"*/{training.MODEL_FILE}"))
    }
    template = families.get(name).config(record["profile"])
    config = _config_from_dict(template, record.get("config") or {})
    history = training.load_run_history(run_dir)
    return Run(name, config, model, history, record, run_dir, stages)


def _config_from_dict(template, values: dict):
    """A config dataclass like ``template`` with the recorded ``values`` (JSON lists back
    to tuples, nested configs rebuilt)."""
    fields = {}
    for field in dataclasses.fields(template):
        if field.name not in values:
            continue
        value, default = values[field.name], getattr(template, field.name)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = _config_from_dict(default, value)
        elif isinstance(value, list):
            value = tuple(value)
        fields[field.name] = value
    return dataclasses.replace(template, **fields)


# --------------------------------------------------------------------------
# Sampling requests sized before they run
# --------------------------------------------------------------------------

IMAGE_BYTES = int(np.prod(data.IMAGE_SHAPE)) * np.dtype(np.float32).itemsize  # one image
# Memory one sample takes while it is drawn and kept: an image twice (the batches and
# their concatenation), a character as a token id in a Python list and in the text.
SAMPLE_MEMORY = {"images": 2 * IMAGE_BYTES, "text": 64}
MEMORY_SHARE = 0.5  # of the memory available now, what one request may take
IMAGE_CHUNK = 1000  # images drawn at a time when streaming (a multiple of 10: labels cycle)
TEXT_CHUNK = 2000  # characters written at a time when streaming
MAX_MINUTES = 60.0  # the longest sampling run started without asking for more
PROGRESS_SECONDS = 5.0  # how often long sampling says how far it is


class RequestTooLarge(ValueError):
    """A sampling request that will not fit; the message gives the limit and how to split."""


def check_in_memory(family: Family, num: int, *, available: int | None = None) -> None:
    """Refuse ``num`` samples of ``family`` in memory when they would take more than
    :data:`MEMORY_SHARE` of the memory available now (a :class:`RequestTooLarge`)."""
    per_item = SAMPLE_MEMORY.get(family.samples)
    available = safe_io.available_memory() if available is None else available
    if per_item is None or available is None:
        return
    limit = int(MEMORY_SHARE * available / per_item)
    if num > limit:
        unit = "characters" if family.samples == "text" else "images"
        raise RequestTooLarge(
            f"{num:,} {unit} would take about {safe_io.human_bytes(num * per_item)} of memory; "
            f"{safe_io.human_bytes(available)} is available here, enough for {limit:,}. "
            f"Draw at most {limit:,} at a time (a different seed each time), or stream them "
            "to a file with runs.sample_to_file (python -m tutorial_lib sample ... --out FILE)."
        )


def _chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of a streamed request (chunk 0 keeps ``seed``, so a
    request of one chunk draws what ``run.sample`` draws)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


class _Progress:
    """Says how far a long sampling run is, with the time left, every few seconds."""

    def __init__(self, total: int, unit: str, report):
        self.total, self.unit, self.report = total, unit, report
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < PROGRESS_SECONDS or done >= self.total:
            return
        self.last = now
        left = (now - self.start) / done * (self.total - done)
        self.report(
            f"sampled {done:,} / {self.total:,} {self.unit}, about "
            f"{safe_io.human_seconds(left)} left"
        )


def _refuse_if_slow(seconds_per_item, num, unit, max_minutes, split_at):
    """Refuse a request estimated to run longer than ``max_minutes``."""
    estimate = seconds_per_item * num
    if max_minutes is not None and estimate > 60 * max_minutes:
        per_call = max(1, int(60 * max_minutes / seconds_per_item) // split_at * split_at)
        raise RequestTooLarge(
            f"{num:,} {unit} would take about {safe_io.human_seconds(estimate)} here "
            f"({seconds_per_item * 1000:.2g} ms each); the limit is {max_minutes:g} min. "
            f"Ask for at most {per_call:,} at a time (a different --seed each), or raise "
            "the limit with --max-minutes."
        )


def sample_to_file(
    run: Run,
    num: int,
    path: str | Path | None,
    *,
    seed: int = 0,
    max_minutes: float | None = MAX_MINUTES,
    report=print,
    write=None,
    family: Family | None = None,
    **options,
) -> Path | None:
    """Draw ``num`` samples in chunks and write them as they come, in bounded memory.

    Images go to the ``.npy`` file ``path`` (float32, (num, 28, 28, 1), in [0, 1]), filled
    :data:`IMAGE_CHUNK` images at a time through a memory map; a text goes to ``path``
    (or, when None, to ``write``, default stdout) :data:`TEXT_CHUNK` characters at a time,
    each chunk continuing from the end of the text so far. Before the work starts: a file
    larger than the free disk is refused; the first chunk is timed and a request that
    would take more than ``max_minutes`` is refused (:class:`RequestTooLarge`, with the
    limit and how to split). Long runs report progress with the time left. The file
    appears at ``path`` only when complete. ``family`` samples it as another model name
    of the same module would (default: the run's). Returns ``path``.
    """
    family = family or run.family
    if family.samples == "images":
        return _images_to_file(run, family, num, Path(path), seed, max_minutes, report, options)
    if family.samples == "text":
        return _text_to_file(run, family, num, path, seed, max_minutes, report, write, options)
    family.load().sample(run.model, num, seed=seed, **options)  # the family says why not
    raise NotImplementedError(f"{run.name} draws no samples.")


def _images_to_file(run, family, num, path, seed, max_minutes, report, options):
    from numpy.lib.format import open_memmap

    size = num * IMAGE_BYTES + 128
    free = safe_io.free_disk(path)
    if free is not None and size > free:
        most = max(0, (free - 128) // IMAGE_BYTES)
        raise RequestTooLarge(
            f"{num:,} images take {safe_io.human_bytes(size)} in {path}; its disk has "
            f"{safe_io.human_bytes(free)} free, enough for {most:,}. Ask for fewer (--num), "
            "or write several files with a different --seed each."
        )
    module = family.load()
    progress = _Progress(num, "images", report)
    with safe_io.atomic_path(path) as tmp:
        out = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(num, 28, 28, 1))
        done, index = 0, 0
        while done < num:
            count = min(IMAGE_CHUNK, num - done)
            start = time.perf_counter()
            images = module.sample(run.model, count, seed=_chunk_seed(seed, index), **options)
            out[done : done + count] = check_samples(images, count)
            done, index = done + count, index + 1
            if index == 2 and done < num:  # timed on the second chunk: the first traces
                seconds = (time.perf_counter() - start) / count
                _refuse_if_slow(seconds, num, "images", max_minutes, IMAGE_CHUNK)
            progress.update(done)
        out.flush()
        del out
    return path


def check_samples(images, num: int) -> np.ndarray:
    """Samples as the command line promises them: float32, (num, 28, 28, 1), in [0, 1]."""
    images = np.asarray(images)
    if images.shape != (num, 28, 28, 1):
        raise ValueError(f"expected samples of shape {(num, 28, 28, 1)}, got {images.shape}")
    if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0:
        raise ValueError(
            f"samples must be finite and in [0, 1]; found [{images.min()}, {images.max()}]"
        )
    return images.astype(np.float32)


def _text_to_file(run, family, num, path, seed, max_minutes, report, write, options):
    import contextlib
    import sys

    module = family.load()
    options = dict(options)
    prompt = options.pop("prompt", "\n")
    context = int(getattr(run.model, "context", 256))
    progress = _Progress(num, "characters", report)
    with contextlib.ExitStack() as stack:
        if path is not None:
            tmp = stack.enter_context(safe_io.atomic_path(path))
            handle = stack.enter_context(open(tmp, "w", encoding="utf-8"))
            write = handle.write
        elif write is None:
            write = sys.stdout.write
        tail, done, index, pending = prompt, 0, 0, prompt
        while done < num:
            count = min(TEXT_CHUNK, num - done)
            start = time.perf_counter()
            text = module.sample(
                run.model, count, seed=_chunk_seed(seed, index), prompt=tail, **options
            )
            tail = (tail + text)[-context:]
            done, index = done + count, index + 1
            if index == 2 and done < num:  # timed on the second chunk: the first traces
                seconds = (time.perf_counter() - start) / count
                _refuse_if_slow(seconds, num, "characters", max_minutes, TEXT_CHUNK)
            pending += text
            if index >= 2 or done >= num:  # the first chunk waits for the estimate
                write(pending)
                pending = ""
            progress.update(done)
        if path is None:
            write("\n")
    return None if path is None else Path(path)
