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

**Sampling.** *Ancestral DDPM* (:func:`ddpm_step`) walks back all :math:`T`
steps through the posterior :math:`q(x_{t-1} \mid x_t, \hat x_0)`. *DDIM*
(:func:`ddim_step`, Song et al., 2021) jumps between any increasing subset of
steps; with :math:`\eta = 0` it is deterministic, with :math:`\eta = 1` and
every step it is DDPM.

**Classifier-free guidance** (Ho & Salimans, 2022): one network learns both
:math:`\epsilon_\theta(x_t, t, y)` and, with the label replaced by a "null"
class for a fraction of training images, :math:`\epsilon_\theta(x_t, t, \varnothing)`.
At sampling, :math:`\tilde\epsilon = (1 + w)\,\epsilon_\theta(x_t, t, y) - w\,\epsilon_\theta(x_t, t, \varnothing)`
(:func:`guided_epsilon`); :math:`w = 0` is the plain conditional model.

**Latent diffusion** (Rombach et al., 2022, the idea behind Stable Diffusion):
the same process on the codes of an autoencoder, decoded to pixels at the end
(:class:`LatentDiffusion`): far fewer numbers to denoise, so far cheaper. The
``cpu`` profile uses it; the ``gpu`` profile diffuses pixels with a U-Net.

Indices: the code counts steps ``t = 0 .. T-1`` (array positions); step ``t``
here is step :math:`t + 1` of the papers, so ``alpha_bars[0]`` is
:math:`\bar\alpha_1 = 1 - \beta_1`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import data, device, vae
from tutorial_lib.data import IMAGE_SHAPE, NUM_CLASSES
from tutorial_lib.profiles import Profile
from tutorial_lib.training import (
    Timer,
    fit_for_profile,
    images_seen,
    load_run_model,
    save_run,
    set_seed,
)

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")
SPACES = ("pixel", "latent")


# --------------------------------------------------------------------------
# Configuration, per profile
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Sizes and training settings of a diffusion model.

    Attributes:
        space: ``"pixel"`` (a U-Net denoises 28x28 images) or ``"latent"`` (an
            MLP denoises the codes of a VAE, decoded to pixels at the end).
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
    """

    space: str = "pixel"
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


# The cpu profile diffuses VAE codes (latent diffusion): a pixel U-Net cannot learn
# recognisable digits in five minutes on two cores (notebook 05 shows the measurements).
# The fast profile does the same with tiny sizes, for tests; the gpu profile diffuses
# pixels. Every profile names the VAE that notebook 05 trains (for its latent section).
CONFIGS = {
    "fast": DiffusionConfig(
        space="latent",
        timesteps=50,
        channels=8,
        channel_mults=(1, 2, 2),
        blocks_per_level=1,
        attention_heads=2,
        groups=4,
        mlp_width=32,
        mlp_blocks=1,
        batch_size=64,
        learning_rate=1e-3,
        epochs=2,
        train_examples=512,
        ema_decay=0.9,
        sample_steps=10,
        autoencoder=vae.CONFIGS["fast"],
    ),
    "cpu": DiffusionConfig(
        space="latent",
        timesteps=1000,
        mlp_width=256,
        mlp_blocks=3,
        batch_size=256,
        learning_rate=1e-3,
        epochs=15,
        train_examples=None,
        ema_decay=0.999,
        sample_steps=50,
        autoencoder=vae.VAEConfig(kind="conv", latent_dim=16, epochs=5, train_examples=None),
    ),
    "gpu": DiffusionConfig(
        space="pixel",
        timesteps=1000,
        channels=64,
        channel_mults=(1, 2, 2),
        blocks_per_level=2,
        batch_size=128,
        learning_rate=2e-4,
        epochs=40,
        train_examples=None,
        ema_decay=0.9995,
        sample_steps=50,
        autoencoder=vae.VAEConfig(kind="conv", latent_dim=16, epochs=10, train_examples=None),
    ),
}


# --------------------------------------------------------------------------
# Noise schedules and the forward process
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseSchedule:
    r"""A noise schedule with everything the model and the samplers need, precomputed.

    All arrays have shape ``(T,)`` (float64), indexed by ``t = 0 .. T-1``:

    * ``betas`` :math:`\beta_t`, ``alphas`` :math:`\alpha_t = 1 - \beta_t`;
    * ``alpha_bars`` :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` and
      ``alpha_bars_prev`` :math:`\bar\alpha_{t-1}` (1 before the first step);
    * ``posterior_variances`` :math:`\tilde\beta_t = \beta_t (1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)`,
      the variance of :math:`q(x_{t-1} \mid x_t, x_0)`, and its mean's coefficients
      ``posterior_mean_x0`` :math:`\beta_t \sqrt{\bar\alpha_{t-1}} / (1 - \bar\alpha_t)` and
      ``posterior_mean_xt`` :math:`(1 - \bar\alpha_{t-1}) \sqrt{\alpha_t} / (1 - \bar\alpha_t)`.
    """

    kind: str
    betas: np.ndarray
    alphas: np.ndarray
    alpha_bars: np.ndarray
    alpha_bars_prev: np.ndarray
    posterior_variances: np.ndarray
    posterior_mean_x0: np.ndarray
    posterior_mean_xt: np.ndarray

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    def snr(self) -> np.ndarray:
        r"""Signal-to-noise ratio :math:`\bar\alpha_t / (1 - \bar\alpha_t)` of every step."""
        return self.alpha_bars / (1.0 - self.alpha_bars)


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    r"""DDPM's linear schedule, :math:`\beta` from ``start`` to ``end`` for :math:`T = 1000`.

    For another :math:`T` both ends are scaled by :math:`1000 / T` (Nichol &
    Dhariwal, 2021), so the chain still ends in almost pure noise.
    """
    scale = 1000.0 / timesteps
    return np.linspace(scale * start, min(scale * end, 0.999), timesteps, dtype=np.float64)


def cosine_betas(timesteps: int, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    r"""The cosine schedule (Nichol & Dhariwal, 2021):
    :math:`\bar\alpha(t) = f(t) / f(0)`, :math:`f(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\,\frac{\pi}{2}\big)`,
    and :math:`\beta_t = 1 - \bar\alpha(t) / \bar\alpha(t-1)`, capped at ``max_beta``.

    :math:`\bar\alpha` falls slowly at both ends and about linearly in between,
    so fewer steps are wasted on nearly pure noise than with the linear schedule.
    """
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + offset) / (1.0 + offset) * math.pi / 2.0) ** 2
    alpha_bars = f / f[0]
    return np.clip(1.0 - alpha_bars[1:] / alpha_bars[:-1], 0.0, max_beta)


def make_schedule(kind: str = "cosine", timesteps: int = 1000) -> NoiseSchedule:
    """The ``linear`` or ``cosine`` schedule of ``timesteps`` steps, every quantity precomputed."""
    if kind not in SCHEDULES:
        raise ValueError(f"Unknown noise schedule {kind!r}; choose one of {SCHEDULES}.")
    if timesteps < 2:
        raise ValueError(f"A schedule needs at least 2 steps; got timesteps={timesteps}.")
    betas = linear_betas(timesteps) if kind == "linear" else cosine_betas(timesteps)
    alphas = 1.0 - betas
    alpha_bars = np.cumprod(alphas)
    alpha_bars_prev = np.concatenate([[1.0], alpha_bars[:-1]])
    return NoiseSchedule(
        kind=kind,
        betas=betas,
        alphas=alphas,
        alpha_bars=alpha_bars,
        alpha_bars_prev=alpha_bars_prev,
        posterior_variances=betas * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars),
        posterior_mean_x0=betas * np.sqrt(alpha_bars_prev) / (1.0 - alpha_bars),
        posterior_mean_xt=(1.0 - alpha_bars_prev) * np.sqrt(alphas) / (1.0 - alpha_bars),
    )


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


def to_model_space(images) -> np.ndarray:
    """Pixels in [0, 1] -> [-1, 1], the range the pixel-space model diffuses."""
    return (np.asarray(images, np.float32) * 2.0 - 1.0).astype(np.float32)


def to_unit_range(x) -> np.ndarray:
    """[-1, 1] -> pixels in [0, 1], clipped."""
    return np.clip((np.asarray(x, np.float32) + 1.0) / 2.0, 0.0, 1.0)


# --------------------------------------------------------------------------
# Networks: a U-Net for images, an MLP for latent codes
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tutorial_lib")
class SinusoidalEmbedding(keras.layers.Layer):
    r"""Step indices -> sinusoidal features (as the transformer's positions):
    :math:`[\sin(t \omega_0), \ldots, \sin(t \omega_{k-1}), \cos(t \omega_0), \ldots]`,
    :math:`\omega_i = 10000^{-i/(k-1)}`, :math:`k = ` ``dim / 2``.

    Kept in float32 under mixed precision: 16-bit floats cannot tell step 1000
    from step 1004.
    """

    def __init__(self, dim: int, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"The embedding size must be even and >= 2; got {dim}.")
        self.dim = dim

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(
            -math.log(10000.0) * ops.arange(half, dtype="float32") / max(half - 1, 1)
        )
        angles = ops.reshape(ops.cast(t, "float32"), (-1, 1)) * frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


def _conditioning(config: DiffusionConfig, width: int, conditional: bool):
    """Inputs for the step (and the label) and their embedding, of size ``width``.

    Labels run 0..9; label 10 is the *null* class that classifier-free
    guidance trains on and samples with.
    """
    t_in = keras.Input((), dtype="int32", name="t")
    h = SinusoidalEmbedding(width)(t_in)
    h = keras.layers.Dense(width, activation="swish")(h)
    emb = keras.layers.Dense(width)(h)
    inputs = [t_in]
    if conditional:
        y_in = keras.Input((), dtype="int32", name="label")
        emb = emb + keras.layers.Embedding(NUM_CLASSES + 1, width, name="label_embedding")(y_in)
        inputs.append(y_in)
    return inputs, emb


def _residual_block(h, emb, channels: int, groups: int):
    """GroupNorm-swish-conv, plus the projected step/label embedding, then again; plus a skip."""
    skip = h if h.shape[-1] == channels else keras.layers.Conv2D(channels, 1)(h)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(groups)(h))
    h = keras.layers.Conv2D(channels, 3, padding="same")(h)
    e = keras.layers.Dense(channels)(keras.layers.Activation("swish")(emb))
    h = h + keras.layers.Reshape((1, 1, channels))(e)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(groups)(h))
    h = keras.layers.Conv2D(channels, 3, padding="same")(h)
    return skip + h


def _attention_block(h, heads: int, groups: int):
    """Self-attention over the pixels of a (small) feature map, with a residual connection."""
    size, channels = h.shape[1], h.shape[-1]
    tokens = keras.layers.Reshape((size * size, channels))(
        keras.layers.GroupNormalization(groups)(h)
    )
    attended = keras.layers.MultiHeadAttention(heads, key_dim=max(channels // heads, 1))(
        tokens, tokens
    )
    return h + keras.layers.Reshape((size, size, channels))(attended)


def build_unet(config: DiffusionConfig, conditional: bool = False) -> keras.Model:
    r"""The noise predictor :math:`\epsilon_\theta(x_t, t[, y])` for 28x28x1 images.

    Three levels (28, 14, 7 pixels) of ``blocks_per_level`` residual blocks
    with group normalisation; strided convolutions down, nearest upsampling and
    a convolution up, with skip connections across; self-attention at 7x7.
    Every block adds the sinusoidal step embedding (plus the label embedding,
    for a conditional model). The last convolution (float32) starts at zero,
    so training starts from "predict no noise".
    """
    widths = [config.channels * m for m in config.channel_mults]
    emb_width = 4 * config.channels
    x_in = keras.Input(IMAGE_SHAPE, name="x_t")
    cond_inputs, emb = _conditioning(config, emb_width, conditional)
    h = keras.layers.Conv2D(widths[0], 3, padding="same")(x_in)
    skips = [h]
    for level, width in enumerate(widths):
        for _ in range(config.blocks_per_level):
            h = _residual_block(h, emb, width, config.groups)
            skips.append(h)
        if level < len(widths) - 1:
            h = keras.layers.Conv2D(width, 3, strides=2, padding="same")(h)
            skips.append(h)
    h = _residual_block(h, emb, widths[-1], config.groups)
    h = _attention_block(h, config.attention_heads, config.groups)
    h = _residual_block(h, emb, widths[-1], config.groups)
    for level, width in reversed(list(enumerate(widths))):
        for _ in range(config.blocks_per_level + 1):
            h = keras.layers.Concatenate()([h, skips.pop()])
            h = _residual_block(h, emb, width, config.groups)
        if level > 0:
            h = keras.layers.UpSampling2D(2)(h)
            h = keras.layers.Conv2D(width, 3, padding="same")(h)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(config.groups)(h))
    eps = keras.layers.Conv2D(
        IMAGE_SHAPE[-1], 3, padding="same", kernel_initializer="zeros", dtype="float32"
    )(h)
    return keras.Model([x_in, *cond_inputs], eps, name="unet")


def build_latent_denoiser(
    config: DiffusionConfig, latent_dim: int, conditional: bool = False
) -> keras.Model:
    r"""The noise predictor for latent codes of size ``latent_dim``: an MLP of
    ``mlp_blocks`` residual blocks (LayerNorm, swish, dense, plus the step and
    label embedding, swish, dense), ``mlp_width`` wide. A code has no pixel
    grid, so convolutions have nothing to work on."""
    width = config.mlp_width
    x_in = keras.Input((latent_dim,), name="x_t")
    cond_inputs, emb = _conditioning(config, width, conditional)
    h = keras.layers.Dense(width)(x_in)
    for _ in range(config.mlp_blocks):
        r = keras.layers.Activation("swish")(keras.layers.LayerNormalization()(h))
        r = keras.layers.Dense(width)(r)
        r = r + keras.layers.Dense(width)(keras.layers.Activation("swish")(emb))
        r = keras.layers.Dense(width)(keras.layers.Activation("swish")(r))
        h = h + r
    h = keras.layers.Activation("swish")(keras.layers.LayerNormalization()(h))
    eps = keras.layers.Dense(latent_dim, kernel_initializer="zeros", dtype="float32")(h)
    return keras.Model([x_in, *cond_inputs], eps, name="latent_denoiser")


# --------------------------------------------------------------------------
# The model: training step and weight averaging
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tutorial_lib")
class Diffusion(keras.Model):
    r"""A denoising diffusion model around a noise-predicting ``network``.

    ``fit`` takes batches of clean data :math:`x_0` in the model's space
    (pixels in [-1, 1], see :func:`to_model_space`), with labels for a
    class-conditional network (one with a ``label`` input). Each
    :meth:`train_step` draws one step :math:`t` and one noise :math:`\epsilon`
    per example, noises :math:`x_0` to :math:`x_t` (:func:`q_sample`), and
    minimises the mean squared error between :math:`\epsilon` and the
    prediction, in float32. A conditional model replaces a fraction
    ``label_dropout`` of the labels by the null class 10, so it also learns the
    unconditional prediction that guidance needs. After every step the
    ``ema_network`` moves towards the trained weights,
    :math:`\bar\theta \leftarrow d\, \bar\theta + (1 - d)\, \theta`, with
    :math:`d = \min(\text{ema\_decay}, \frac{1 + n}{10 + n})` after :math:`n`
    steps; samplers use the EMA weights.

    Args:
        network: from :func:`build_unet` or :func:`build_latent_denoiser`.
        schedule: ``"linear"`` or ``"cosine"``; timesteps: :math:`T`.
        clip_range: samplers clip their estimate of :math:`x_0` to
            ``[-clip_range, clip_range]`` (1 for pixels; ``None`` for codes).
    """

    def __init__(
        self,
        network: keras.Model,
        schedule: str = "cosine",
        timesteps: int = 1000,
        ema_decay: float = 0.999,
        label_dropout: float = 0.1,
        clip_range: float | None = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1); got {label_dropout}.")
        self.network = network
        self.ema_network = keras.models.clone_model(network)
        self.ema_network.set_weights(network.get_weights())
        self.ema_network.trainable = False
        self.schedule_kind, self.timesteps = schedule, int(timesteps)
        self.schedule = make_schedule(schedule, self.timesteps)
        self.ema_decay, self.label_dropout = float(ema_decay), float(label_dropout)
        self.clip_range = clip_range
        self.seed = seed
        self.conditional = len(network.inputs) == 3
        self.data_shape = tuple(network.inputs[0].shape[1:])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # the networks were built by the caller

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        """The (trained, not averaged) network's noise prediction for ``[x_t, t(, label)]``."""
        return self.network(inputs, training=training)

    def _unpack(self, batch):
        if isinstance(batch, tuple | list):
            x0, labels = batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            x0, labels = batch, None
        if self.conditional and labels is None:
            raise ValueError(
                "A class-conditional diffusion model trains on (data, labels) batches; got "
                "data only. Pass the labels to fit_diffusion(model, x, y, ...)."
            )
        return ops.cast(x0, "float32"), labels

    def noisy_batch(self, x0, labels=None):
        """``(inputs, noise)`` for one training step: ``inputs = [x_t, t(, label)]``."""
        batch_size = ops.shape(x0)[0]
        t = keras.random.randint(
            (batch_size,), 0, self.timesteps, dtype="int32", seed=self.seed_generator
        )
        noise = keras.random.normal(ops.shape(x0), seed=self.seed_generator)
        inputs = [q_sample(self.schedule, x0, t, noise), t]
        if self.conditional:
            labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
            drop = keras.random.uniform((batch_size,), seed=self.seed_generator)
            inputs.append(ops.where(drop < self.label_dropout, NUM_CLASSES, labels))
        return inputs, noise

    def train_step(self, batch):
        import tensorflow as tf

        x0, labels = self._unpack(batch)
        inputs, noise = self.noisy_batch(x0, labels)
        with tf.GradientTape() as tape:
            predicted = ops.cast(self.network(inputs, training=True), "float32")
            loss = ops.mean(ops.square(noise - predicted))
            scaled = self.optimizer.scale_loss(loss / device.replicas_in_sync())
        gradients = tape.gradient(scaled, self.network.trainable_weights)
        self.optimizer.apply(gradients, self.network.trainable_weights)
        self.update_ema()
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, batch):
        x0, labels = self._unpack(batch)
        inputs, noise = self.noisy_batch(x0, labels)
        predicted = ops.cast(self.network(inputs, training=False), "float32")
        self.loss_tracker.update_state(ops.mean(ops.square(noise - predicted)))
        return {"loss": self.loss_tracker.result()}

    def update_ema(self):
        """Move every EMA weight a step towards the trained weight (warm-up early on)."""
        steps = ops.cast(self.optimizer.iterations, "float32")
        decay = ops.minimum(self.ema_decay, (1.0 + steps) / (10.0 + steps))
        for averaged, weight in zip(self.ema_network.weights, self.network.weights, strict=True):
            value = ops.cast(weight, "float32")
            averaged.assign(decay * averaged + (1.0 - decay) * value)

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "schedule": self.schedule_kind,
            "timesteps": self.timesteps,
            "ema_decay": self.ema_decay,
            "label_dropout": self.label_dropout,
            "clip_range": self.clip_range,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)

    def to_images(self, x) -> np.ndarray:
        """Samples in the model's space -> pixels in [0, 1], shape (N, 28, 28, 1)."""
        return to_unit_range(x)


@keras.saving.register_keras_serializable(package="tutorial_lib")
class LatentDiffusion(Diffusion):
    r"""Diffusion on autoencoder codes, decoded to pixels: the idea of Stable Diffusion.

    The network denoises standardised codes :math:`(z - \text{shift}) / \text{scale}`
    (unit variance, so the schedule's noise levels mean the same as for pixels in
    [-1, 1]); :meth:`to_images` undoes the scaling and runs ``decoder``, which maps
    codes to pixels in [0, 1].
    """

    def __init__(self, network, decoder, shift=None, scale: float = 1.0, **kwargs):
        kwargs.setdefault("clip_range", None)
        super().__init__(network, **kwargs)
        self.decoder = decoder
        self.decoder.trainable = False
        self.shift = np.zeros(self.data_shape, np.float32) if shift is None else np.asarray(shift)
        self.shift = self.shift.astype(np.float32)
        self.scale = float(scale)

    def to_images(self, x) -> np.ndarray:
        codes = np.asarray(x, np.float32) * self.scale + self.shift
        return np.clip(self.decoder.predict(codes, batch_size=1000, verbose=0), 0.0, 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "shift": self.shift.tolist(),
            "scale": self.scale,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return super().from_config(config)


def build_model(
    config: DiffusionConfig,
    *,
    conditional: bool = False,
    decoder: keras.Model | None = None,
    shift=None,
    scale: float = 1.0,
    seed: int | None = None,
) -> Diffusion:
    """A compiled diffusion model for ``config`` (build it under ``setup.strategy.scope()``).

    Pixel space: a :func:`build_unet` in a :class:`Diffusion`. Latent space: a
    :func:`build_latent_denoiser` over codes of the decoder's input size, in a
    :class:`LatentDiffusion` with ``decoder`` (codes -> pixels in [0, 1]) and the
    codes' ``shift`` and ``scale``. Adam with a linear warm-up over the first
    500 steps, gradients clipped to norm 1.
    """
    if config.space not in SPACES:
        raise ValueError(f"Unknown space {config.space!r}; choose one of {SPACES}.")
    common = dict(
        schedule=config.schedule,
        timesteps=config.timesteps,
        ema_decay=config.ema_decay,
        label_dropout=config.label_dropout,
        seed=seed,
    )
    if config.space == "pixel":
        model = Diffusion(build_unet(config, conditional), name="diffusion", **common)
    else:
        if decoder is None:
            raise ValueError(
                "A latent diffusion model needs the decoder of its autoencoder: "
                "build_model(config, decoder=..., shift=..., scale=...) (see latent_codec)."
            )
        latent_dim = int(decoder.inputs[0].shape[-1])
        network = build_latent_denoiser(config, latent_dim, conditional)
        model = LatentDiffusion(
            network, decoder, shift=shift, scale=scale, name="latent_diffusion", **common
        )
    warmup = keras.optimizers.schedules.PolynomialDecay(
        config.learning_rate / 500, 500, config.learning_rate, power=1.0
    )
    model.compile(optimizer=keras.optimizers.Adam(warmup, global_clipnorm=1.0))
    model.optimizer.build(model.network.trainable_variables)
    return model


# --------------------------------------------------------------------------
# The autoencoder of latent diffusion
# --------------------------------------------------------------------------


def train_autoencoder(
    x_train: np.ndarray, config: DiffusionConfig, profile: Profile, *, seed: int = 0, run_dir=None
) -> vae.VAE:
    """Train the VAE whose codes a latent model diffuses (``config.autoencoder``)
    on binarised images; build it under the strategy scope in force."""
    vae_config = config.autoencoder or vae.VAEConfig()
    binary = (x_train > 0.5).astype(np.float32)
    model = vae.build_vae(vae_config, seed=seed)
    vae.fit_vae(model, binary, config=vae_config, profile=profile, seed=seed, run_dir=run_dir)
    return model


def latent_codec(autoencoder: vae.VAE, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    r"""``(codes, shift, scale)``: standardised posterior means of ``x`` and the
    shift (per-dimension mean) and scale (one overall standard deviation) used.

    Stable Diffusion does the same with one constant (0.18215): the noise
    schedule assumes data of about unit variance.
    """
    z_mean, _ = vae.encode(autoencoder, (np.asarray(x) > 0.5).astype(np.float32))
    shift = z_mean.mean(axis=0)
    scale = float(np.std(z_mean - shift))
    return ((z_mean - shift) / scale).astype(np.float32), shift.astype(np.float32), scale


def pixel_decoder(autoencoder: vae.VAE) -> keras.Model:
    """The VAE's decoder followed by a sigmoid: codes -> pixel probabilities in [0, 1]."""
    codes = keras.Input(autoencoder.decoder.inputs[0].shape[1:], name="z")
    pixels = keras.layers.Activation("sigmoid", dtype="float32")(autoencoder.decoder(codes))
    return keras.Model(codes, pixels, name="pixel_decoder")


def build_for_data(
    config: DiffusionConfig,
    images: np.ndarray,
    *,
    conditional: bool = False,
    autoencoder: vae.VAE | None = None,
    seed: int | None = None,
) -> tuple[Diffusion, np.ndarray]:
    """The model of ``config`` and the training ``images`` in its space, ready for
    :func:`fit_diffusion`: pixels in [-1, 1] for a pixel model; for a latent model,
    the standardised codes of the trained ``autoencoder`` (:func:`latent_codec`),
    with its decoder inside the model. Call it under the strategy scope."""
    if config.space == "pixel":
        return build_model(config, conditional=conditional, seed=seed), to_model_space(images)
    if autoencoder is None:
        raise ValueError(
            "Latent diffusion needs its trained autoencoder: "
            "build_for_data(config, images, autoencoder=train_autoencoder(images, config, profile))."
        )
    codes, shift, scale = latent_codec(autoencoder, images)
    model = build_model(
        config,
        conditional=conditional,
        decoder=pixel_decoder(autoencoder),
        shift=shift,
        scale=scale,
        seed=seed,
    )
    return model, codes


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def fit_diffusion(
    model: Diffusion,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    config: DiffusionConfig,
    profile: Profile,
    epochs: int | None = None,
    seed: int = 0,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """Train on data ``x`` in the model's space (labels ``y`` for a conditional model).

    Batch size and epochs come from ``config`` (``epochs`` overrides), the
    steps per epoch and verbosity from the profile. With ``run_dir`` the run
    resumes after an interruption.
    """
    if model.conditional and y is None:
        raise ValueError("A class-conditional model needs the labels: fit_diffusion(model, x, y).")
    if tuple(x.shape[1:]) != model.data_shape:
        raise ValueError(
            f"The model diffuses data of shape {model.data_shape}; got {tuple(x.shape[1:])}. "
            "Pixel models take to_model_space(images); latent models take latent_codec codes."
        )
    dataset = data.image_dataset(
        x.astype(np.float32),
        y if model.conditional else None,
        batch_size=config.batch_size,
        seed=seed,
        targets="labels" if model.conditional else "none",
        drop_remainder=True,
        repeat=profile.steps_per_epoch is not None,
    )
    return fit_for_profile(
        model,
        dataset,
        profile=profile,
        epochs=epochs or config.epochs,
        callbacks=callbacks,
        run_dir=run_dir,
    )


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def sampling_steps(timesteps: int, steps: int) -> np.ndarray:
    """``steps`` step indices from ``T - 1`` down to 0, evenly spaced (DDIM's subsequence)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must lie in [1, {timesteps}] (the model's T); got {steps}.")
    return np.unique(np.linspace(0, timesteps - 1, steps).round().astype(np.int64))[::-1]


def guided_epsilon(eps_conditional, eps_unconditional, guidance: float):
    r"""Classifier-free guidance: :math:`(1 + w)\,\epsilon(x_t, y) - w\,\epsilon(x_t, \varnothing)`.

    :math:`w = 0` gives the conditional prediction, larger :math:`w` pushes
    samples further from "any digit" towards "this digit".
    """
    return (1.0 + guidance) * eps_conditional - guidance * eps_unconditional


def predict_x0(schedule: NoiseSchedule, xt, eps, t: int) -> np.ndarray:
    r"""Invert the forward process with predicted noise:
    :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\, \hat\epsilon) / \sqrt{\bar\alpha_t}`."""
    ab = schedule.alpha_bars[t]
    return (xt - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)


def ddpm_step(schedule: NoiseSchedule, xt, eps, t: int, noise, clip_range=None) -> np.ndarray:
    r"""One ancestral step :math:`x_t \to x_{t-1}`: estimate :math:`\hat x_0` (clipped
    to ``clip_range``), then draw from :math:`q(x_{t-1} \mid x_t, \hat x_0)`, i.e.
    its mean plus :math:`\sqrt{\tilde\beta_t}` times ``noise``. At ``t = 0`` the
    variance is 0: the result is the mean."""
    x0 = predict_x0(schedule, xt, eps, t)
    if clip_range is not None:
        x0 = np.clip(x0, -clip_range, clip_range)
    mean = schedule.posterior_mean_x0[t] * x0 + schedule.posterior_mean_xt[t] * xt
    return (mean + np.sqrt(schedule.posterior_variances[t]) * noise).astype(np.float32)


def ddim_step(
    schedule: NoiseSchedule,
    xt,
    eps,
    t: int,
    t_next: int,
    eta: float = 0.0,
    noise=None,
    clip_range=None,
) -> np.ndarray:
    r"""One DDIM step from step ``t`` to an earlier ``t_next`` (``-1``: to clean data).

    .. math::  x_{s} = \sqrt{\bar\alpha_s}\, \hat x_0
               + \sqrt{1 - \bar\alpha_s - \sigma^2}\; \hat\epsilon + \sigma z,
               \quad \sigma = \eta \sqrt{\tfrac{1 - \bar\alpha_s}{1 - \bar\alpha_t}}
               \sqrt{1 - \tfrac{\bar\alpha_t}{\bar\alpha_s}}

    with :math:`\bar\alpha_{-1} = 1`. :math:`\eta = 0` is deterministic. If
    :math:`\hat x_0` is clipped, :math:`\hat\epsilon` is recomputed from it.
    """
    ab_t = schedule.alpha_bars[t]
    ab_s = schedule.alpha_bars[t_next] if t_next >= 0 else 1.0
    x0 = predict_x0(schedule, xt, eps, t)
    if clip_range is not None:
        x0 = np.clip(x0, -clip_range, clip_range)
        eps = (xt - np.sqrt(ab_t) * x0) / np.sqrt(1.0 - ab_t)
    sigma = eta * np.sqrt((1.0 - ab_s) / (1.0 - ab_t)) * np.sqrt(1.0 - ab_t / ab_s)
    x_next = np.sqrt(ab_s) * x0 + np.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * eps
    if sigma > 0:
        x_next = x_next + sigma * noise
    return x_next.astype(np.float32)


def _labels_for(labels, num: int) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.broadcast_to(np.asarray(labels, np.int64), (num,)).astype(np.int32)
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(
            f"Labels must be digits 0..{NUM_CLASSES - 1}; got {labels.min()}..{labels.max()}."
        )
    return labels


def predict_noise(model: Diffusion, xt, t: int, labels=None, guidance=None, *, ema=True):
    """The (EMA) network's noise prediction at step ``t`` for a batch ``xt``.

    For a conditional model: ``labels`` None samples unconditionally (null
    class); with labels and ``guidance`` None, the conditional prediction; with a
    ``guidance`` :math:`w`, :func:`guided_epsilon` of the conditional and the
    unconditional prediction, computed in one doubled batch.
    """
    network = model.ema_network if ema else model.network
    n = len(xt)
    steps = np.full((n,), t, np.int32)
    if not model.conditional:
        if labels is not None:
            raise ValueError(
                "This model is unconditional: train it with conditional=True "
                "to sample digits of a chosen class."
            )
        return network.predict_on_batch([xt, steps])
    null = np.full((n,), NUM_CLASSES, np.int32)
    if labels is None:
        return network.predict_on_batch([xt, steps, null])
    if guidance is None:
        return network.predict_on_batch([xt, steps, labels])
    both = network.predict_on_batch(
        [np.concatenate([xt, xt]), np.concatenate([steps, steps]), np.concatenate([labels, null])]
    )
    return guided_epsilon(both[:n], both[n:], guidance)


def sample(
    model: Diffusion,
    num: int,
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    labels=None,
    guidance: float | None = None,
    seed: int = 0,
    batch_size: int = 500,
    ema: bool = True,
    trajectory_at=None,
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Generate ``num`` samples in the model's space, starting from :math:`x_T \\sim N(0, I)`.

    Args:
        sampler: ``"ddpm"`` (every one of the T steps; ``steps`` must be None or T)
            or ``"ddim"`` (``steps`` of them, default 50, with noise level ``eta``).
        labels: a digit or one per sample (conditional models); None: unconditional.
        guidance: classifier-free guidance scale :math:`w` (None: no guidance).
        seed: seeds the starting noise and every step's noise (NumPy), so the
            same call gives the same samples.
        ema: use the averaged weights (default) or the trained ones.
        trajectory_at: step indices at which to keep :math:`x_t`; then returns
            ``(samples, {t: x_t})`` (for pictures of the reverse process).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
    schedule = model.schedule
    if sampler == "ddpm":
        if steps not in (None, model.timesteps):
            raise ValueError(
                f"DDPM takes every one of the model's {model.timesteps} steps; got steps={steps}. "
                "Use sampler='ddim' to sample with fewer steps."
            )
        path = np.arange(model.timesteps)[::-1]
    else:
        path = sampling_steps(model.timesteps, steps or 50)
    labels = _labels_for(labels, num)
    keep = set() if trajectory_at is None else {int(t) for t in trajectory_at}
    rng = np.random.default_rng(seed)
    out, kept = [], {t: [] for t in keep}
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        chunk_labels = None if labels is None else labels[start : start + n]
        x = rng.standard_normal((n, *model.data_shape)).astype(np.float32)
        for i, t in enumerate(path):
            if t in keep:
                kept[t].append(x)
            eps = predict_noise(model, x, int(t), chunk_labels, guidance, ema=ema)
            if sampler == "ddpm":
                noise = rng.standard_normal(x.shape) if t > 0 else 0.0
                x = ddpm_step(schedule, x, eps, int(t), noise, model.clip_range)
            else:
                t_next = int(path[i + 1]) if i + 1 < len(path) else -1
                noise = rng.standard_normal(x.shape) if eta > 0 and t_next >= 0 else None
                x = ddim_step(schedule, x, eps, int(t), t_next, eta, noise, model.clip_range)
        out.append(x)
    samples = np.concatenate(out)
    if trajectory_at is not None:
        return samples, {t: np.concatenate(v) for t, v in kept.items()}
    return samples


def sample_images(model: Diffusion, num: int, **kwargs) -> np.ndarray:
    """:func:`sample`, returned as pixels in [0, 1] of shape (num, 28, 28, 1) (latent
    models decode their codes)."""
    return model.to_images(sample(model, num, **kwargs))


def timed_samples(model: Diffusion, num: int, **kwargs) -> tuple[np.ndarray, float]:
    """``(images, seconds per image)`` of :func:`sample_images`."""
    start = time.perf_counter()
    images = sample_images(model, num, **kwargs)
    return images, (time.perf_counter() - start) / num


# --------------------------------------------------------------------------
# Command line: `python -m tutorial_lib train|sample diffusion`
# --------------------------------------------------------------------------


def add_cli_arguments(command: str, parser) -> None:
    """``train diffusion [--conditional] [--space S]``; ``sample diffusion --steps S
    --sampler {ddpm,ddim} [--eta E] [--label L --guidance W]``."""
    if command == "train":
        parser.add_argument(
            "--conditional",
            action="store_true",
            help="train the class-conditional model (for classifier-free guidance)",
        )
        parser.add_argument(
            "--space",
            choices=SPACES,
            default=None,
            help="pixel or latent diffusion (default: the profile's: latent on cpu)",
        )
    else:
        parser.add_argument("--sampler", choices=SAMPLERS, default="ddim")
        parser.add_argument(
            "--steps", type=int, default=None, help="DDIM steps (default: the profile's)"
        )
        parser.add_argument("--eta", type=float, default=0.0, help="DDIM noise (0: deterministic)")
        parser.add_argument(
            "--label",
            type=int,
            default=None,
            choices=range(NUM_CLASSES),
            metavar="{0..9}",
            help="digit of every sample (conditional model; default: cycle through 0..9)",
        )
        parser.add_argument(
            "--guidance",
            type=float,
            default=None,
            help="classifier-free guidance scale w (conditional model; default: the profile's)",
        )


def _run_config(profile: Profile, space: str | None) -> DiffusionConfig:
    config = CONFIGS[profile.name]
    if space is not None and space != config.space:
        config = dataclasses.replace(
            config, space=space, autoencoder=config.autoencoder or vae.CONFIGS[profile.name]
        )
    return config


def train_run(
    name: str,
    *,
    dataset: str,
    profile: Profile,
    out_dir: Path,
    seed: int = 0,
    conditional: bool = False,
    space: str | None = None,
) -> dict:
    """Train the profile's diffusion model (latent diffusion in the ``fast`` and ``cpu``
    profiles, with its VAE trained first); write a run folder.

    ``train_seconds`` counts everything trained (the VAE included);
    ``train_images_per_second`` is the diffusion model's own throughput.
    ``metrics.json`` holds :func:`tutorial_lib.metrics.image_quality` of
    ``profile.eval_samples`` DDIM samples (for a conditional model: guided,
    digits 0..9 in turn) and the sampling defaults of :func:`sample_run`.
    """
    from tutorial_lib import metrics as quality_metrics

    setup = device.setup(profile)
    set_seed(seed)
    config = _run_config(profile, space)
    x_train, y_train = data.load_images(dataset, "train", limit=config.train_examples)
    out_dir = Path(out_dir)
    extra = {}
    with Timer() as total:
        with setup.strategy.scope():
            autoencoder = None
            if config.space == "latent":
                with Timer() as ae_timer:
                    autoencoder = train_autoencoder(
                        x_train, config, profile, seed=seed, run_dir=out_dir / "autoencoder"
                    )
                extra["autoencoder_seconds"] = round(ae_timer.seconds, 2)
            model, inputs = build_for_data(
                config, x_train, conditional=conditional, autoencoder=autoencoder, seed=seed
            )
        with Timer() as timer:
            history = fit_diffusion(
                model, inputs, y_train, config=config, profile=profile, seed=seed, run_dir=out_dir
            )
    num = max(profile.eval_samples, quality_metrics.MIN_FD_SAMPLES)
    labels = np.arange(num) % NUM_CLASSES if conditional else None
    guidance = config.guidance if conditional else None
    kwargs = dict(steps=config.sample_steps, guidance=guidance, seed=seed)
    samples, seconds = timed_samples(model, num, labels=labels, **kwargs)
    run_metrics = {
        "model": name,
        "dataset": dataset,
        "profile": profile.name,
        "space": config.space,
        "conditional": conditional,
        "schedule": config.schedule,
        "timesteps": config.timesteps,
        "epochs": config.epochs,
        "train_seconds": round(total.seconds, 2),
        "diffusion_seconds": round(timer.seconds, 2),
        "train_images_per_second": round(
            images_seen(len(inputs), config.epochs, profile) / timer.seconds, 1
        ),
        "parameters": model.network.count_params(),
        "final_loss": history.history["loss"][-1],
        "sample_steps": config.sample_steps,
        "guidance": guidance,
        "sample_seconds_per_image": seconds,
        **extra,
        **quality_metrics.image_quality(samples, dataset),
    }
    if conditional:
        grid = sample_images(model, 64, labels=np.repeat(np.arange(8), 8), **kwargs)
        title = f"{name} on {dataset}: guided DDIM samples, one row per digit 0..7"
    else:
        grid = samples[:64]
        title = f"{name} on {dataset}: DDIM samples ({config.sample_steps} steps)"
    save_run(out_dir, model, run_metrics, grid, title=title)
    return run_metrics


def sample_run(
    name: str,
    *,
    run_dir: Path,
    num: int,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    label: int | None = None,
    guidance: float | None = None,
) -> np.ndarray:
    """``num`` images in [0, 1] from a run folder's model: DDIM with the run's
    number of steps unless told otherwise. A conditional model draws digit
    ``label`` (default: 0..9 in turn) with guidance ``guidance`` (default: the run's)."""
    from tutorial_lib.training import METRICS_FILE, load_run_metrics

    model = load_run_model(run_dir)
    if not isinstance(model, Diffusion):
        raise ValueError(f"{run_dir} holds a {type(model).__name__}, not a diffusion model.")
    if not model.conditional and (label is not None or guidance is not None):
        raise ValueError(
            "--label and --guidance need the class-conditional model: train it with "
            "`train diffusion --conditional`."
        )
    saved = load_run_metrics(run_dir) if (Path(run_dir) / METRICS_FILE).is_file() else {}
    labels = None
    if model.conditional:
        labels = np.arange(num) % NUM_CLASSES if label is None else label
        if guidance is None:
            guidance = saved.get("guidance")
            guidance = DiffusionConfig.guidance if guidance is None else guidance
    if sampler == "ddim" and steps is None:
        steps = min(saved.get("sample_steps", DiffusionConfig.sample_steps), model.timesteps)
    return sample_images(
        model,
        num,
        sampler=sampler,
        steps=steps,
        eta=eta,
        labels=labels,
        guidance=guidance,
        seed=seed,
    )
