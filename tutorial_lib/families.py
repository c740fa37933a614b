"""The model families of the series: one registry that says what each one is.

Every model the command line, the benchmark, the slides and the notebooks can
name has one :class:`Family` entry here. An entry says what the model samples
(images, text or nothing), what likelihood it defines (none, a bound, or an
exact one, and in which unit), whether it takes a class label, which data it
trains on, which seed document's recipe it is measured against, which lesson
teaches it, and the command-line options of its own.

The code of a family lives in its module (:attr:`Family.module`), which
defines the same five names for every family (:data:`CONTRACT`, written down with their
signatures as :class:`FamilyModule`):

* ``CONFIGS`` -- every size it trains with, by model name, then profile name:
  ``CONFIGS[name][profile]`` (read by :meth:`Family.config`);
* ``build_model(config, *, seed)`` -- a compiled ``keras.Model``;
* ``train_model(config, *, dataset, profile, seed, run_dir, callbacks)``
  -- load the data, build, fit; returns a :class:`tutorial_lib.training.Trained`
  (the model, its history, the examples it saw, the stages trained on the way);
* ``sample(model, num, *, seed, **options)`` -- ``num`` images in [0, 1] of
  shape (num, 28, 28, 1), or a text of ``num`` characters;
* ``evaluate(model, config, *, dataset, profile)`` -- the family's own numbers
  for the run's record (see :mod:`tutorial_lib.runs`).

Some families define more, as the registry says of them (:data:`EXTRA_CONTRACT`):
a family whose latent space is an encoder's (``latent="encoder"``) maps images to codes
and back with ``encode(model, images)`` and ``decode(model, codes)`` (the walks of
notebook 07); a family that samples nothing (``samples="none"``) shows what it does with
``preview(model, config, *, dataset, profile)`` (the picture of its run folder).

Adding a family is its module and one entry in :data:`FAMILIES`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from tutorial_lib import samplers
from tutorial_lib.data import IMAGE_DATASETS, IMAGE_SHAPE, NUM_CLASSES

SAMPLES = ("images", "text", "none")
LIKELIHOODS = ("none", "bound", "exact")
# What a likelihood is measured on: binary pixels (a Bernoulli per pixel; the config's
# ``binarization`` says how grey pixels became 0 or 1), dequantized 8-bit pixels (a
# density on [0, 1)^784), or characters. Figures on different data models do not compare.
DATA_MODELS = ("binary pixels", "dequantized pixels", "characters")
# What a family's latent space is: codes an encoder gives real images, noise a generator
# maps (no encoder), noise carried to data by a sampler's many steps, or none at all.
LATENTS = ("encoder", "noise", "sampler", "none")
CONTRACT = ("CONFIGS", "build_model", "train_model", "sample", "evaluate")
# The functions a family defines beyond CONTRACT, by what its registry entry says
# (EncoderFamilyModule and PreviewFamilyModule write down their signatures).
EXTRA_CONTRACT = {("latent", "encoder"): ("encode", "decode"), ("samples", "none"): ("preview",)}
PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]


class FamilyModule(Protocol):
    """The contract of a family's module, as the life cycle (:mod:`tutorial_lib.runs`) calls
    it: a module's functions accept these calls (``tests/test_families.py`` binds each one
    to every family's function), and may take more options of their own."""

    CONFIGS: dict[str, dict[str, Any]]  # CONFIGS[model name][profile name]: a config

    def build_model(self, config, *, seed: int | None = None) -> Any:
        """A compiled ``keras.Model`` for ``config``."""

    def train_model(self, config, *, dataset: str, profile, seed: int, run_dir, callbacks) -> Any:
        """Load the data, build, fit: a :class:`tutorial_lib.training.Trained`."""

    def sample(self, model, num: int, *, seed: int = 0) -> Any:
        """``num`` images in [0, 1] of shape (num, 28, 28, 1), or a text of ``num`` characters."""

    def evaluate(self, model, config, *, dataset: str, profile) -> dict:
        """The family's own figures for the run's record."""


class EncoderFamilyModule(FamilyModule, Protocol):
    """A family whose latent space is an encoder's (``latent="encoder"``) also maps
    images to codes and back."""

    def encode(self, model, images) -> Any:
        """Images in [0, 1], (N, 28, 28, 1) -> their codes, (N, code size)."""

    def decode(self, model, codes) -> Any:
        """Codes -> images in [0, 1], (N, 28, 28, 1)."""


class PreviewFamilyModule(FamilyModule, Protocol):
    """A family that samples nothing (``samples="none"``) shows what it does instead."""

    def preview(self, model, config, *, dataset: str, profile) -> Any:
        """``(images, title)``: the picture of its run folder (inputs and outputs)."""


class UnknownFamilyError(ValueError):
    """Raised for a model name that is not in :data:`FAMILIES`."""


@dataclasses.dataclass(frozen=True)
class Option:
    """A command-line option of one family's own, as data.

    ``train`` options override fields of the family's config (``--kind conv``
    sets ``config.kind``); ``sample`` options go to the family's ``sample``.
    ``choices`` is a tuple, or a function that returns one when the parser is made
    (the samplers: a sampler registered later is a choice too).
    """

    flag: str
    command: str  # "train" or "sample"
    help: str
    type: Any = None
    default: Any = None
    choices: tuple | Callable[[], tuple] | None = None
    metavar: str | None = None
    switch: bool = False  # a flag without a value (store_true)
    keyword: str | None = None  # the keyword it is passed as, when not the flag's name

    @property
    def dest(self) -> str:
        """The keyword this option is passed as: ``--top-k`` -> ``top_k``."""
        return self.keyword or self.flag.lstrip("-").replace("-", "_")

    def add_to(self, parser) -> None:
        """Add this option to an ``argparse`` parser."""
        if self.switch:
            parser.add_argument(self.flag, action="store_true", dest=self.dest, help=self.help)
            return
        parser.add_argument(
            self.flag,
            dest=self.dest,
            type=self.type,
            default=self.default,
            choices=self.choices() if callable(self.choices) else self.choices,
            metavar=self.metavar,
            help=self.help,
        )


@dataclasses.dataclass(frozen=True)
class Family:
    """What one model name is.

    Attributes:
        name: the model name of the command line and the notebooks (``"vae"``).
        module: the module that holds its code (``"tutorial_lib.vae"``).
        title: a short description for tables.
        lesson: the notebook that teaches it (``"02_vae"``).
        samples: ``"images"``, ``"text"`` or ``"none"`` (the autoencoder).
        likelihood: ``"none"``, ``"bound"`` (the VAE's ELBO) or ``"exact"``.
        likelihood_unit: what one likelihood figure is measured per
            (``"nats per image"``), or None.
        data_model: what the likelihood is a likelihood of, one of :data:`DATA_MODELS`
            (``"binary pixels"`` for the VAE), or None.
        dimensions: numbers per item of that unit (784 pixels per image, 1 per
            character), to convert a likelihood to bits per dimension.
        conditional: whether sampling takes a class label.
        latent: its latent space, one of :data:`LATENTS` (``"encoder"`` for the VAE).
        datasets: the data sets it trains on; the first is the default.
        seed_recipe: the key of the seed documents' recipe it is benchmarked
            against (:data:`tutorial_lib.baselines.SEED_RECIPES`), or None.
        improves: for a lesson's recommended recipe, the textbook model it improves on
            (``"vae"`` for ``"vae_mixture_prior"``); the benchmark shows them side by side.
        options: its command-line options beyond the common ones.
    """

    name: str
    module: str
    title: str
    lesson: str
    samples: str
    likelihood: str = "none"
    likelihood_unit: str | None = None
    data_model: str | None = None
    dimensions: int | None = None
    conditional: bool = False
    latent: str = "none"
    datasets: tuple[str, ...] = IMAGE_DATASETS
    seed_recipe: str | None = None
    improves: str | None = None
    options: tuple[Option, ...] = ()

    def __post_init__(self):
        if self.samples not in SAMPLES:
            raise ValueError(f"{self.name}: samples must be one of {SAMPLES}.")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"{self.name}: likelihood must be one of {LIKELIHOODS}.")
        if self.latent not in LATENTS:
            raise ValueError(f"{self.name}: latent must be one of {LATENTS}.")
        if (self.likelihood == "none") != (self.likelihood_unit is None):
            raise ValueError(f"{self.name}: a likelihood needs its unit, and only then.")
        if (self.likelihood == "none") != (self.data_model is None):
            raise ValueError(f"{self.name}: a likelihood needs its data model, and only then.")
        if self.data_model is not None and self.data_model not in DATA_MODELS:
            raise ValueError(f"{self.name}: data_model must be one of {DATA_MODELS}.")

    def load(self) -> ModuleType:
        """The family's module, imported on first use."""
        return importlib.import_module(self.module)

    def contract(self) -> tuple[str, ...]:
        """The names this family's module must define: :data:`CONTRACT`, and those of
        :data:`EXTRA_CONTRACT` its entry calls for."""
        extra = [
            names
            for (field, value), names in EXTRA_CONTRACT.items()
            if getattr(self, field) == value
        ]
        return CONTRACT + tuple(name for names in extra for name in names)

    def options_for(self, command: str) -> tuple[Option, ...]:
        """The family's options of ``train`` or ``sample``."""
        return tuple(option for option in self.options if option.command == command)

    def config(self, profile, **options):
        """``CONFIGS[name][profile]`` of the family's module: the config this model trains
        with under ``profile`` (a :class:`tutorial_lib.profiles.Profile` or its name), with
        ``train`` options such as ``kind="conv"`` applied (fields of the config)."""
        config = self.load().CONFIGS[self.name][getattr(profile, "name", profile)]
        fields = {field.name for field in dataclasses.fields(config)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise TypeError(
                f"{self.name} has no option {', '.join(unknown)}; its config's fields are "
                f"{', '.join(sorted(fields))}."
            )
        return dataclasses.replace(config, **options)


def _binarization_option() -> Option:
    return Option(
        "--binarization",
        "train",
        "binary pixels by a threshold at 0.5, or drawn with the grey value as probability",
        choices=("threshold", "stochastic"),
    )


def _label_option(help_text: str) -> Option:
    return Option(
        "--label",
        "sample",
        help_text,
        type=int,
        choices=tuple(range(NUM_CLASSES)),
        metavar="{0..9}",
        keyword="labels",
    )


# The sampling options every diffusion model takes (the samplers: those of the table).
_SAMPLER_OPTIONS = (
    Option("--sampler", "sample", "sampling loop", choices=lambda: samplers.names("diffusion")),
    Option("--steps", "sample", "DDIM steps (default: the run's)", type=int),
    Option("--eta", "sample", "DDIM noise (0: deterministic)", type=float),
)
_CONDITIONAL = Option(
    "--conditional",
    "train",
    "train the class-conditional model (for classifier-free guidance)",
    switch=True,
)
_GUIDANCE = Option(
    "--guidance",
    "sample",
    "classifier-free guidance scale w (conditional model; default: the run's)",
    type=float,
)

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="autoencoder",
            module="tutorial_lib.autoencoder",
            title="autoencoder (dense or convolutional)",
            lesson="01_autoencoder",
            samples="none",
            latent="encoder",
            seed_recipe="seed002_autoencoder",
            options=(Option("--kind", "train", "network type", choices=("dense", "conv")),),
        ),
        Family(
            name="vae",
            module="tutorial_lib.vae",
            title="variational autoencoder",
            lesson="02_vae",
            samples="images",
            latent="encoder",
            likelihood="bound",
            likelihood_unit="nats per image",
            data_model="binary pixels",
            dimensions=PIXELS,
            seed_recipe="seed000_vae",
            options=(_binarization_option(),),
        ),
        Family(
            name="vae_mixture_prior",
            module="tutorial_lib.vae",
            title="VAE with a Gaussian-mixture prior fitted to its codes",
            lesson="02b_vae_latent_space",
            samples="images",
            latent="encoder",
            likelihood="bound",
            likelihood_unit="nats per image",
            data_model="binary pixels",
            dimensions=PIXELS,
            improves="vae",
            options=(_binarization_option(),),
        ),
        Family(
            name="gan",
            module="tutorial_lib.gan",
            title="DCGAN",
            lesson="03_gan",
            samples="images",
            latent="noise",
            seed_recipe="seed002_gan",
        ),
        Family(
            name="wgan_gp",
            module="tutorial_lib.gan",
            title="WGAN-GP",
            lesson="03b_gan_what_helps",
            samples="images",
            latent="noise",
        ),
        Family(
            name="cgan",
            module="tutorial_lib.gan",
            title="conditional DCGAN",
            lesson="03b_gan_what_helps",
            samples="images",
            latent="noise",
            conditional=True,
            options=(_label_option("class of every sample (default: cycle through 0..9)"),),
        ),
        Family(
            name="cgan_r1_ema",
            module="tutorial_lib.gan",
            title="conditional DCGAN with R1 and a weight average, sampled with uniform labels",
            lesson="03b_gan_what_helps",
            samples="images",
            latent="noise",
            conditional=True,
            improves="gan",
            options=(_label_option("class of every sample (default: drawn uniformly)"),),
        ),
        Family(
            name="transformer",
            module="tutorial_lib.transformer",
            title="character-level GPT",
            lesson="04b_transformer_gpt",
            samples="text",
            likelihood="exact",
            likelihood_unit="nats per character",
            data_model="characters",
            dimensions=1,
            datasets=("tinyshakespeare",),
            options=(
                Option("--prompt", "sample", "text to continue (default: newline)", default="\n"),
                Option("--temperature", "sample", "softmax temperature", type=float, default=1.0),
                Option("--top-k", "sample", "keep the k likeliest characters", type=int),
                Option("--top-p", "sample", "keep the nucleus of probability p", type=float),
            ),
        ),
        Family(
            name="diffusion",
            module="tutorial_lib.diffusion",
            title="denoising diffusion (latent on cpu)",
            lesson="05_diffusion",
            samples="images",
            latent="sampler",
            conditional=True,
            options=(
                _CONDITIONAL,
                Option(
                    "--space",
                    "train",
                    "pixel or latent diffusion (default: the profile's: latent on cpu)",
                    choices=("pixel", "latent"),
                ),
                *_SAMPLER_OPTIONS,
                _label_option("digit of every sample (conditional model; default: 0..9 in turn)"),
                _GUIDANCE,
            ),
        ),
        Family(
            name="latent_diffusion_v",
            module="tutorial_lib.diffusion",
            title="latent diffusion predicting the velocity, a sharper VAE, 25 DDIM steps",
            lesson="05b_diffusion_samplers",
            samples="images",
            latent="sampler",
            conditional=True,
            improves="diffusion",
            options=(
                _CONDITIONAL,
                *_SAMPLER_OPTIONS,
                _label_option("digit of every sample (conditional model; default: 0..9 in turn)"),
                _GUIDANCE,
            ),
        ),
        Family(
            name="realnvp",
            module="tutorial_lib.flows",
            title="RealNVP normalizing flow",
            lesson="06_flows",
            samples="images",
            latent="encoder",
            likelihood="exact",
            likelihood_unit="nats per image",
            data_model="dequantized pixels",
            dimensions=PIXELS,
            options=(
                Option(
                    "--temperature",
                    "sample",
                    "standard deviation of z (below 1: cleaner, less varied)",
                    type=float,
                ),
            ),
        ),
        Family(
            name="flow_matching",
            module="tutorial_lib.flow_matching",
            title="flow matching (latent on cpu)",
            lesson="06b_flow_matching",
            samples="images",
            latent="sampler",
            conditional=True,
            options=(
                _CONDITIONAL,
                Option(
                    "--space",
                    "train",
                    "pixel or latent flow matching (default: the profile's: latent on cpu)",
                    choices=("pixel", "latent"),
                ),
                Option("--sampler", "sample", "ODE solver", choices=lambda: samplers.names("flow")),
                Option("--steps", "sample", "ODE steps (default: the run's)", type=int),
                _label_option("digit of every sample (conditional model; default: 0..9 in turn)"),
                _GUIDANCE,
            ),
        ),
        Family(
            name="text_to_image",
            module="tutorial_lib.text_to_image",
            title="latent diffusion reading a caption (text encoder, cross-attention, guidance)",
            lesson="09_digits_to_prompts",
            samples="images",
            latent="sampler",
            datasets=("mnist",),
            options=(
                *_SAMPLER_OPTIONS,
                Option(
                    "--prompt",
                    "sample",
                    "what every sample should show, e.g. 'a thick seven leaning right' "
                    "(default: the captions of test digits)",
                    keyword="prompts",
                ),
                _GUIDANCE,
            ),
        ),
        Family(
            name="pixelcnn",
            module="tutorial_lib.pixelcnn",
            title="PixelCNN (autoregressive, binary pixels)",
            lesson="07_compare",
            samples="images",
            likelihood="exact",
            likelihood_unit="nats per image",
            data_model="binary pixels",
            dimensions=PIXELS,
            options=(_binarization_option(),),
        ),
    )
}


# One model of every family module, the lesson's recipe where there is one: what the
# backends' check (tests/test_backends.py), their speed table and the GPU check run.
ONE_PER_FAMILY = (
    "autoencoder",
    "vae",
    "cgan_r1_ema",
    "transformer",
    "latent_diffusion_v",
    "flow_matching",
    "realnvp",
    "pixelcnn",
    "text_to_image",
)


def names() -> list[str]:
    """Every model name, in the order of the lessons."""
    return list(FAMILIES)


def get(name: str) -> Family:
    """The family of a model name, with the choices listed if there is none."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(
            f"Unknown model {name!r}; choose one of: {', '.join(FAMILIES)}."
        ) from None


def recommended(name: str) -> list[str]:
    """The lessons' recommended recipes that improve on the textbook model ``name``."""
    return [other for other, family in FAMILIES.items() if family.improves == name]


def image_families() -> list[str]:
    """The model names that sample images (the ones sample quality applies to)."""
    return [name for name, family in FAMILIES.items() if family.samples == "images"]
