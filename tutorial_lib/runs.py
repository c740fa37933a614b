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

import dataclasses
import datetime
from pathlib import Path

import numpy as np

from tutorial_lib import data, device, families, metrics, training
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
    "date": "the day it was trained",
    "machine": "the machine it was trained on",
}
QUALITY_KEYS = ("confidence", "coverage", "inception_score", "frechet_distance", "class_histogram")
TEXT_SAMPLE_CHARS = 200  # characters drawn to time a text model's sampling


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
        characters; ``options`` are the family's (labels, guidance, temperature, ...)."""
        return self.family.load().sample(self.model, num, seed=seed, **options)


def _known(options: dict) -> dict:
    """Options that were given (the command line passes None for those that were not)."""
    return {
        key: value for key, value in options.items() if value is not None and value is not False
    }


def config_of(name: str, profile: str | Profile | None = None, **options):
    """The config model ``name`` trains with under ``profile`` (``train`` options applied)."""
    return families.get(name).config(get_profile(profile).name, **_known(options))


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
            and calling again after an interruption resumes it.
        callbacks: Keras callbacks for the training (sample grids, quality history).
        evaluate: score the trained model (:func:`evaluate`) into the record.
        stages: trained parts to reuse instead of training them, by name
            (``{"autoencoder": vae_model}`` for latent diffusion).
        options: the family's ``train`` options, such as ``kind="conv"``
            (:meth:`tutorial_lib.families.Family.options_for`).
    """
    family = families.get(name)
    module = family.load()
    profile = get_profile(profile)
    dataset = dataset or family.datasets[0]
    if dataset not in family.datasets:
        raise data.DataError(
            f"{name} trains on {', '.join(family.datasets)}; got dataset {dataset!r}."
        )
    setup = device.setup(profile)
    training.set_seed(seed)
    config = config_of(name, profile, **options)
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
    legs = clock.finish()  # without the time callbacks spent measuring (sample grids, ...)
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
        date=datetime.date.today().isoformat(),
        machine=device.machine_description(),
    )
    record["train_tokens_per_second" if family.samples == "text" else "train_images_per_second"] = (
        per_second
    )
    run_dir = None if out_dir is None else Path(out_dir)
    run = Run(name, config, model, history, record, run_dir, trained.stages)
    if evaluate:
        record.update(_evaluate(run, profile))
    if out_dir is not None:
        _save(run, profile)
    return run


def _evaluate(run: Run, profile: Profile, *, seed: int | None = None) -> dict:
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
            bits_per_dim=nll / (family.dimensions * np.log(2.0)),
        )
    if family.samples == "images":
        num = max(profile.eval_samples, metrics.MIN_FD_SAMPLES)
        run.sample(2, seed=seed)  # the first call traces the sampling graph: not timed
        with training.Timer() as timer:
            images = run.sample(num, seed=seed)
        quality = metrics.image_quality(images, run.record["dataset"])
        figures.update({key: quality[key] for key in QUALITY_KEYS})
        figures.update(num_samples=num, sample_seconds_per_item=timer.seconds / num)
    elif family.samples == "text":
        run.sample(2, seed=seed)
        with training.Timer() as timer:
            run.sample(TEXT_SAMPLE_CHARS, seed=seed)
        figures.update(
            num_samples=TEXT_SAMPLE_CHARS, sample_seconds_per_item=timer.seconds / TEXT_SAMPLE_CHARS
        )
    return figures


def evaluate(run: Run, profile: str | Profile | None = None, *, seed: int | None = None) -> dict:
    """Score a run into its record, in the same keys and units for every family.

    The family's own figures (the autoencoder's test MSE, the VAE's negative
    ELBO, the GPT's validation NLL), the likelihood in bits per dimension, and
    for image models ``profile.eval_samples`` samples (at least 50) timed and
    scored by the evaluation classifier (:func:`tutorial_lib.metrics.image_quality`).
    Returns the updated record.
    """
    profile = get_profile(profile or run.record["profile"])
    run.record.update(_evaluate(run, profile, seed=seed))
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
        if getattr(run.model, "conditional", False):
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
