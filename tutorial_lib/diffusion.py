r"""Denoising diffusion models: DDPM training, DDPM and DDIM sampling, guidance.

**Forward process.** A fixed Markov chain adds Gaussian noise in :math:`T`
small steps, :math:`q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{\alpha_t}\, x_{t-1},
\beta_t I)` with :math:`\alpha_t = 1 - \beta_t`. With
:math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` it has a closed form at every
step (:func:`q_sample`):

.. math::  q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\; (1 - \bar\alpha_t) I\big),
           \qquad x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon.

The noise schedule (:func:`make_schedule`, ``linear`` or ``cosine``) sets the
:math:`\beta_t`; the signal-to-noise ratio is
:math:`\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)`.

**Training** (Ho et al., 2020, the "simplified" objective): a network
:math:`\epsilon_\theta(x_t, t)` predicts the noise that was added,

.. math::  L = \mathbb E_{x_0, t, \epsilon}\,
           \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon,\; t) \rVert^2

with :math:`t` uniform and :math:`\epsilon \sim \mathcal N(0, I)`: one random
step per image, a mean squared error (:meth:`Diffusion.train_step`). Sampling
uses an exponential moving average (EMA) of the weights.

**Sampling** (:mod:`tutorial_lib.samplers`). *Ancestral DDPM* walks back all
:math:`T` steps through the posterior :math:`q(x_{t-1} \mid x_t, \hat x_0)`. *DDIM*
(Song et al., 2021) jumps between any decreasing subset of steps; with
:math:`\eta = 0` it is deterministic, with :math:`\eta = 1` and every step it is DDPM.

**Classifier-free guidance** (Ho & Salimans, 2022): one network learns both
:math:`\epsilon_\theta(x_t, t, y)` and, with the label replaced by a "null"
class for a fraction of training images, :math:`\epsilon_\theta(x_t, t, \varnothing)`.
At sampling, :math:`\tilde\epsilon = (1 + w)\,\epsilon_\theta(x_t, t, y) - w\,\epsilon_\theta(x_t, t, \varnothing)`
(:func:`guided_epsilon`); :math:`w = 0` is the plain conditional model.

**Latent diffusion** (Rombach et al., 2022, the idea behind Stable Diffusion):
the same process on the codes of an autoencoder, decoded to pixels at the end
(:class:`LatentDiffusion`): far fewer numbers to denoise, so far cheaper. The
``cpu`` profile uses it; the ``gpu`` profile diffuses pixels with a U-Net.

**Samplers** are small step objects (:class:`tutorial_lib.samplers.DDPMSampler`,
:class:`~tutorial_lib.samplers.DDIMSampler`) driven by one loop: a lesson shows one
``step``, and a new sampler is a new class.

Indices: the code counts steps ``t = 0 .. T-1`` (array positions); step ``t``
here is step :math:`t + 1` of the papers, so ``alpha_bars[0]`` is
:math:`\bar\alpha_1 = 1 - \beta_1`. The network sees the step as a time in
[0, 1], :math:`(t + 1) / T` (:func:`tutorial_lib.samplers.time_of`), so the networks of
:mod:`tutorial_lib.denoisers` serve diffusion and flow matching alike.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from tutorial_lib import denoisers, vae
from tutorial_lib.denoisers import to_model_space, to_unit_range  # noqa: F401 (lessons use both)
from tutorial_lib.profiles import Profile
from tutorial_lib.samplers import (
    PREDICTIONS,
    SCHEDULES,  # noqa: F401 (the forward process's: lessons use it)
    NoiseSchedule,
    make_schedule,
    time_of,
)
from tutorial_lib.training import Trained

# --------------------------------------------------------------------------
# Configuration, per profile
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Sizes and training settings of a diffusion model.

    Attributes:
        space: ``"pixel"`` (a U-Net denoises 28x28 images) or ``"latent"`` (an
            MLP denoises the codes of a VAE, decoded to pixels at the end).
        conditional: whether the network also takes the class label (for
            classifier-free guidance).
        schedule: ``"linear"`` or ``"cosine"`` noise schedule.
        timesteps: number of diffusion steps :math:`T`.
        channels: U-Net width at 28x28 (pixel space).
        channel_mults: width multipliers of the U-Net levels 28, 14, 7.
        blocks_per_level: residual blocks per U-Net level.
        attention_heads: heads of the self-attention at the lowest resolution.
        groups: groups of the group normalisations (must divide the widths).
        mlp_width, mlp_blocks: the latent denoiser's width and residual blocks.
        batch_size: images per gradient step.
        learning_rate: Adam's peak step size (after a linear warm-up).
        epochs: passes over the training images.
        train_examples: how many training images (``None``: all 60,000).
        ema_decay: decay of the weights' exponential moving average.
        label_dropout: fraction of labels replaced by the null class (guided model).
        sample_steps: DDIM steps used by default when sampling.
        guidance: default guidance scale :math:`w` of the class-conditional model.
        autoencoder: the VAE whose codes a latent model diffuses.
        prediction: what the network learns to output: ``"epsilon"`` (the noise) or
            ``"v"`` (the velocity, :class:`VPredictionDiffusion`).
    """

    space: str = "pixel"
    conditional: bool = False
    schedule: str = "cosine"
    timesteps: int = 1000
    channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    blocks_per_level: int = 2
    attention_heads: int = 4
    groups: int = 8
    mlp_width: int = 512
    mlp_blocks: int = 4
    batch_size: int = 128
    learning_rate: float = 2e-4
    epochs: int = 30
    train_examples: int | None = None
    ema_decay: float = 0.999
    label_dropout: float = 0.1
    sample_steps: int = 50
    guidance: float = 1.0
    autoencoder: vae.VAEConfig | None = None
    prediction: str = "epsilon"


# Sizes by model name, then profile: the space, network, data and training budget that
# diffusion shares with flow matching (tutorial_lib.denoisers.SHARED_SIZES: latent codes of
# notebook 05's VAE on fast and cpu, pixels on gpu), and diffusion's own steps.
_SHARED = denoisers.SHARED_SIZES
CONFIGS = {
    "diffusion": {
        "fast": DiffusionConfig(**_SHARED["fast"], timesteps=50, sample_steps=10),
        "cpu": DiffusionConfig(**_SHARED["cpu"], timesteps=1000, sample_steps=50),
        "gpu": DiffusionConfig(**_SHARED["gpu"], timesteps=1000, sample_steps=50),
    },
}

# The recommended recipe of notebook 05 ("What helps, measured"): latent diffusion in every
# profile, with a network that predicts the velocity (no blow-up at the noisiest step), a
# VAE trained 8 epochs instead of 5 (its reconstructions cap the samples' quality) and 25
# DDIM steps. The gpu sizes are scaled up, not measured.
_TEXTBOOK = CONFIGS["diffusion"]
CONFIGS["latent_diffusion_v"] = {
    "fast": dataclasses.replace(_TEXTBOOK["fast"], prediction="v"),
    "cpu": dataclasses.replace(
        _TEXTBOOK["cpu"],
        prediction="v",
        sample_steps=25,
        autoencoder=dataclasses.replace(_TEXTBOOK["cpu"].autoencoder, epochs=8),
    ),
    "gpu": dataclasses.replace(
        _TEXTBOOK["cpu"],
        prediction="v",
        mlp_width=512,
        mlp_blocks=4,
        epochs=60,
        ema_decay=0.9995,
        sample_steps=25,
        autoencoder=vae.CONFIGS["vae"]["gpu"],
    ),
}


# --------------------------------------------------------------------------
# Noise schedules and the forward process
# --------------------------------------------------------------------------


def _per_example(values: np.ndarray, t, ndim: int):
    """``values[t]`` as a float32 tensor shaped to broadcast over examples of ``ndim`` axes."""
    picked = ops.take(ops.convert_to_tensor(values.astype(np.float32)), ops.cast(t, "int32"))
    return ops.reshape(picked, (-1,) + (1,) * (ndim - 1))


def q_sample(schedule: NoiseSchedule, x0, t, noise):
    r"""Noise clean data to step ``t`` in one go:
    :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon`.

    ``x0`` and ``noise`` have the same shape (batch first), ``t`` holds one step
    index per example. Works on NumPy arrays and backend tensors (returns a tensor).
    """
    x0 = ops.convert_to_tensor(x0, "float32")
    ndim = len(x0.shape)
    signal = _per_example(np.sqrt(schedule.alpha_bars), t, ndim)
    noise_scale = _per_example(np.sqrt(1.0 - schedule.alpha_bars), t, ndim)
    return signal * x0 + noise_scale * ops.convert_to_tensor(noise, "float32")


def q_posterior(schedule: NoiseSchedule, x0, xt, t) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and variance of :math:`q(x_{t-1} \mid x_t, x_0)`, the step back a sampler imitates:
    mean :math:`\frac{\beta_t \sqrt{\bar\alpha_{t-1}}}{1 - \bar\alpha_t} x_0
    + \frac{(1 - \bar\alpha_{t-1}) \sqrt{\alpha_t}}{1 - \bar\alpha_t} x_t`, variance :math:`\tilde\beta_t`.

    NumPy in, NumPy out; ``t`` is one step index per example.
    """
    x0, xt = np.asarray(x0, np.float64), np.asarray(xt, np.float64)
    t = np.asarray(t).reshape((-1,) + (1,) * (x0.ndim - 1))
    mean = schedule.posterior_mean_x0[t] * x0 + schedule.posterior_mean_xt[t] * xt
    return mean, np.broadcast_to(schedule.posterior_variances[t], mean.shape)


# --------------------------------------------------------------------------
# The model: training step and weight averaging
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tutorial_lib")
class Diffusion(denoisers.DenoisingModel):
    r"""A denoising diffusion model around a noise-predicting ``network``
    (:class:`tutorial_lib.denoisers.DenoisingModel` does the training and the averaging).

    Its training pair (:meth:`training_pair`): one step :math:`t` and one noise
    :math:`\epsilon` per example, :math:`x_0` noised to :math:`x_t` in one jump
    (:func:`q_sample`); the network sees :math:`x_t` and the time
    :math:`(t + 1) / T`, and its target is :math:`\epsilon`.

    Args:
        network: from :func:`tutorial_lib.denoisers.build_network`.
        decoder: a latent model's decoder (codes -> pixels); None for pixels.
        schedule: ``"linear"`` or ``"cosine"``; timesteps: :math:`T`.
        clip_range: samplers clip their estimate of :math:`x_0` to
            ``[-clip_range, clip_range]`` (1 for pixels; ``None`` for codes).
        Other arguments: see :class:`~tutorial_lib.denoisers.DenoisingModel`.
    """

    process = "diffusion"  # sampled by the samplers of a noise schedule
    default_sampler = "ddim"
    prediction = "epsilon"  # what the network predicts: the noise

    def __init__(
        self,
        network: keras.Model,
        schedule: str = "cosine",
        timesteps: int = 1000,
        clip_range: float | None = 1.0,
        **kwargs,
    ):
        super().__init__(network, **kwargs)
        self.schedule_kind, self.timesteps = schedule, int(timesteps)
        self.schedule = make_schedule(schedule, self.timesteps)
        self.clip_range = None if self.decoder is not None else clip_range

    def noisy_batch(self, x0, labels=None):
        """``(inputs, noise)``: ``inputs = [x_t, time(, label)]`` with one random step per
        example, and the noise that made ``x_t`` (the network's target)."""
        batch_size = ops.shape(x0)[0]
        t = keras.random.randint(
            (batch_size,), 0, self.timesteps, dtype="int32", seed=self.seed_generator
        )
        noise = keras.random.normal(ops.shape(x0), seed=self.seed_generator)
        inputs = [q_sample(self.schedule, x0, t, noise), time_of(t, self.timesteps)]
        if self.conditional:
            inputs.append(self.drop_labels(labels))
        return inputs, noise

    def training_pair(self, x0, labels=None):
        return self.noisy_batch(x0, labels)

    def get_config(self):
        return {
            **super().get_config(),
            "schedule": self.schedule_kind,
            "timesteps": self.timesteps,
            "clip_range": self.clip_range,
        }


@keras.saving.register_keras_serializable(package="tutorial_lib")
class VPredictionDiffusion(Diffusion):
    r"""A diffusion model whose network predicts the **velocity** (Salimans & Ho, 2022)

    .. math::  v = \sqrt{\bar\alpha_t}\, \epsilon - \sqrt{1 - \bar\alpha_t}\, x_0

    instead of the noise :math:`\epsilon`. From :math:`x_t` and :math:`\hat v` both
    estimates follow without dividing by a vanishing number:
    :math:`\hat x_0 = \sqrt{\bar\alpha_t}\, x_t - \sqrt{1 - \bar\alpha_t}\, \hat v` and
    :math:`\hat\epsilon = \sqrt{1 - \bar\alpha_t}\, x_t + \sqrt{\bar\alpha_t}\, \hat v`.
    An :math:`\epsilon`-network's :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon)
    / \sqrt{\bar\alpha_t}` multiplies the network's error by :math:`1/\sqrt{\bar\alpha_t}`,
    about 20,000 at the noisiest step of the cosine schedule. The samplers are
    unchanged: they turn :math:`\hat v` into :math:`\hat\epsilon`
    (:meth:`tutorial_lib.samplers.DiffusionSampler.epsilon`).
    """

    prediction = "v"

    def training_pair(self, x0, labels=None):
        """:meth:`Diffusion.noisy_batch`, with the velocity as the target instead of the noise."""
        inputs, noise = self.noisy_batch(x0, labels)
        t = ops.cast(ops.round(inputs[1] * self.timesteps), "int32") - 1  # time = (t + 1) / T
        x0 = ops.convert_to_tensor(x0, "float32")
        ndim = len(x0.shape)
        signal = _per_example(np.sqrt(self.schedule.alpha_bars), t, ndim)
        noise_scale = _per_example(np.sqrt(1.0 - self.schedule.alpha_bars), t, ndim)
        return inputs, signal * noise - noise_scale * x0


def build_model(
    config: DiffusionConfig,
    *,
    decoder: keras.Model | None = None,
    seed: int | None = None,
) -> Diffusion:
    """A compiled diffusion model for ``config`` (build it under ``setup.strategy.scope()``).

    Pixel space: a U-Net over images. Latent space: an MLP over codes of the
    decoder's input size, with ``decoder`` (standardised codes -> pixels in [0, 1],
    from :func:`tutorial_lib.vae.latent_codec`) inside the model. A
    :class:`VPredictionDiffusion` for ``prediction="v"``.
    Adam with a linear warm-up over the first 500 steps, gradients clipped to norm 1.
    """
    if config.space not in denoisers.SPACES:
        raise ValueError(f"Unknown space {config.space!r}; choose one of {denoisers.SPACES}.")
    if config.prediction not in PREDICTIONS:
        raise ValueError(f"Unknown prediction {config.prediction!r}; choose one of {PREDICTIONS}.")
    kind = VPredictionDiffusion if config.prediction == "v" else Diffusion
    common = model_options(config, seed)
    if config.space == "pixel":
        model = kind(denoisers.build_network(config), name="diffusion", **common)
    else:
        if decoder is None:
            raise ValueError(
                "A latent diffusion model needs the decoder of its autoencoder: "
                "build_model(config, decoder=...) with the decoder of vae.latent_codec."
            )
        network = denoisers.build_network(config, int(decoder.inputs[0].shape[-1]))
        model = kind(network, decoder=decoder, name="latent_diffusion", **common)
    return compile_model(model, config)


def model_options(config: DiffusionConfig, seed: int | None = None) -> dict:
    """The keyword arguments a diffusion model takes from its ``config``: the schedule, the
    weight average, the label dropout, how it samples by default (the guidance scale only
    for a conditional model)."""
    return dict(
        schedule=config.schedule,
        timesteps=config.timesteps,
        ema_decay=config.ema_decay,
        label_dropout=config.label_dropout,
        seed=seed,
        sample_steps=min(config.sample_steps, config.timesteps),
        guidance=config.guidance if config.conditional else None,
    )


def compile_model(model: Diffusion, config: DiffusionConfig) -> Diffusion:
    """Compile with Adam: a linear warm-up over the first 500 steps to
    ``config.learning_rate``, gradients clipped to norm 1; returns the model."""
    warmup = keras.optimizers.schedules.PolynomialDecay(
        config.learning_rate / 500, 500, config.learning_rate, power=1.0
    )
    model.compile(optimizer=keras.optimizers.Adam(warmup, global_clipnorm=1.0))
    model.optimizer.build(model.network.trainable_variables)
    return model


# --------------------------------------------------------------------------
# Sampling, with a sampler of tutorial_lib.samplers
# --------------------------------------------------------------------------


def code_range(codes: np.ndarray) -> float:
    r"""The largest :math:`|z_i|` among a latent model's training codes: a range its
    samplers' estimate :math:`\hat x_0` can be clipped to (``model.clip_range``).

    A pixel model clips :math:`\hat x_0` to [-1, 1], the range of its data. Codes have
    no fixed range, so a latent model does not clip at all, and one bad estimate at the
    noisiest step (where :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon)
    / \sqrt{\bar\alpha_t}` divides by :math:`\sqrt{\bar\alpha_t} \approx 5 \cdot 10^{-5}`
    with the cosine schedule) throws DDIM's codes far outside anything the decoder saw.
    """
    return float(np.max(np.abs(codes)))


def sample_codes(
    model: Diffusion,
    num: int,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float | None = None,
    trajectory_at=None,
    **options,
) -> np.ndarray | tuple[np.ndarray, dict]:
    r"""Generate ``num`` samples in the model's space (pixels in [-1, 1], or codes),
    starting from :math:`x_T \sim N(0, I)`.

    Args:
        sampler: a name of :func:`tutorial_lib.samplers.names` ``("diffusion")``:
            ``"ddpm"`` (every one of the T steps; ``steps`` must be None or T) or
            ``"ddim"`` (the default: ``steps`` of them, default the model's
            ``sample_steps``, with noise level ``eta``).
        trajectory_at: step indices at which to keep :math:`x_t`; then returns
            ``(samples, {t: x_t})`` (for pictures of the reverse process).
        options: ``labels``, ``guidance``, ``seed``, ``batch_size``, ``ema`` of
            :meth:`tutorial_lib.denoisers.DenoisingModel.sample_codes`.
    """
    return model.sample_codes(
        num, sampler=sampler, steps=steps, eta=eta, keep=trajectory_at, **options
    )


def sample(model: Diffusion, num: int, *, seed: int = 0, **options):
    """``num`` images in [0, 1], shape (num, 28, 28, 1), drawn by the model
    (:meth:`tutorial_lib.denoisers.DenoisingModel.sample`): decoded (latent models) or
    rescaled (pixel models). A conditional model draws digits 0..9 in turn unless given
    ``labels``, with the model's guidance unless given ``guidance``; ``options``
    (``sampler``, ``steps``, ``eta``, ...) choose the sampler."""
    return model.sample(num, seed=seed, **options)


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(config: DiffusionConfig, **kwargs) -> Trained:
    """Load the training images (and labels); for a latent model train its VAE (kept in
    the run folder as the stage ``"autoencoder"``), or take the trained ``autoencoder=``
    given; then build the diffusion model and train it
    (:func:`tutorial_lib.denoisers.train_model`; keywords as there)."""
    return denoisers.train_model(build_model, config, **kwargs)


def evaluate(model: Diffusion, config: DiffusionConfig, *, dataset: str, profile: Profile) -> dict:
    """Nothing of its own: the life cycle scores the samples
    (:func:`tutorial_lib.runs.evaluate`); a diffusion model's likelihood bound is not
    computed in this series."""
    return {}
