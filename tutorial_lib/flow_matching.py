r"""Flow matching: learn the velocity that carries noise to data along straight lines.

**The path.** Pair a noise draw :math:`x_0 \sim \mathcal N(0, I)` with a data point
:math:`x_1` and walk the straight line between them,

.. math::  x_t = (1 - t)\, x_0 + t\, x_1, \qquad t \in [0, 1],

whose velocity is the same everywhere on it: :math:`\frac{d x_t}{dt} = x_1 - x_0`.

**The loss** (Lipman et al., 2023; Liu et al., 2023, "rectified flow"): a network
:math:`v_\theta(x_t, t)` regresses that velocity at a random time,

.. math::  L = \mathbb E_{t \sim U[0, 1],\, x_0,\, x_1}\,
           \lVert v_\theta(x_t, t) - (x_1 - x_0) \rVert^2 .

Many lines cross every point :math:`x_t`; the minimiser of this loss is their
average velocity there, which defines an ordinary differential equation (ODE),
:math:`\frac{dx}{dt} = v_\theta(x, t)`, whose solutions carry the noise
distribution into the data distribution.

**Sampling** solves the ODE from :math:`t = 0` (noise) to :math:`t = 1` (data) in
a few steps: :class:`tutorial_lib.samplers.EulerSampler` (:math:`x \leftarrow x + h\, v`,
one network evaluation per step) or :class:`~tutorial_lib.samplers.HeunSampler` (Euler's step, then the average of
the slopes at both ends: two evaluations per step, error :math:`O(h^2)` instead
of :math:`O(h)`). Classifier-free guidance mixes the conditional and
unconditional velocities as for diffusion (:func:`tutorial_lib.denoisers.guided`).

The networks, the weight average, the latent codec of a VAE and the sampling
loop are those of diffusion (:mod:`tutorial_lib.denoisers`): only the training
pair and the sampler's step differ. The ``cpu`` profile works on a VAE's codes
(latent flow matching), as notebook 05 does for diffusion.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from tutorial_lib import denoisers, samplers, vae
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Trained


@dataclasses.dataclass(frozen=True)
class FlowMatchingConfig:
    """Sizes and training settings of a flow-matching model.

    Attributes:
        space: ``"pixel"`` (a U-Net on 28x28 images) or ``"latent"`` (an MLP on
            the codes of a VAE, decoded to pixels at the end).
        conditional: whether the network also takes the class label (guidance).
        channels, channel_mults, blocks_per_level, attention_heads, groups: the
            U-Net's sizes (pixel space; see :func:`tutorial_lib.denoisers.build_unet`).
        mlp_width, mlp_blocks: the latent network's width and residual blocks.
        batch_size: examples per gradient step.
        learning_rate: Adam's peak step size (after a linear warm-up).
        epochs: passes over the training images.
        train_examples: how many training images (``None``: all 60,000).
        ema_decay: decay of the weights' exponential moving average.
        label_dropout: fraction of labels replaced by the null class (guided model).
        sampler, sample_steps: the ODE solver and its steps used by default.
        guidance: default guidance scale :math:`w` of the class-conditional model.
        autoencoder: the VAE whose codes a latent model learns.
    """

    space: str = "pixel"
    conditional: bool = False
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
    sampler: str = "euler"
    sample_steps: int = 10
    guidance: float = 1.0
    autoencoder: vae.VAEConfig | None = None


# Sizes by model name, then profile: the same space, network, data and training budget as
# diffusion in each profile (tutorial_lib.denoisers.SHARED_SIZES), so the two families
# compare on equal terms; then the ODE solver and its steps.
_SHARED = denoisers.SHARED_SIZES
CONFIGS = {
    "flow_matching": {
        "fast": FlowMatchingConfig(**_SHARED["fast"], sample_steps=4),
        "cpu": FlowMatchingConfig(**_SHARED["cpu"], sample_steps=10),
        "gpu": FlowMatchingConfig(**_SHARED["gpu"], sampler="heun", sample_steps=25),
    },
}


# --------------------------------------------------------------------------
# The model: straight lines from noise to data, and their velocity
# --------------------------------------------------------------------------


def straight_path(x0, x1, t):
    r""":math:`x_t = (1 - t)\, x_0 + t\, x_1` for one time per example (broadcast over
    the other axes); works on NumPy arrays and backend tensors."""
    t = ops.reshape(ops.cast(t, "float32"), (-1,) + (1,) * (len(ops.shape(x1)) - 1))
    return (1.0 - t) * ops.cast(x0, "float32") + t * ops.cast(x1, "float32")


@keras.saving.register_keras_serializable(package="tutorial_lib")
class FlowMatching(denoisers.DenoisingModel):
    r"""A flow-matching model around a velocity network
    (:class:`tutorial_lib.denoisers.DenoisingModel` does the training and the averaging).

    Its training pair (:meth:`training_pair`): for every example a time
    :math:`t \sim U[0, 1]` and a noise draw :math:`x_0`; the network sees
    :math:`x_t` on the straight line from :math:`x_0` to the data :math:`x_1`
    (:func:`straight_path`) and the time :math:`t`, and its target is the
    line's velocity :math:`x_1 - x_0`.

    Args:
        network: from :func:`tutorial_lib.denoisers.build_network`.
        sampler: the default ODE solver, a name of :func:`tutorial_lib.samplers.names`
            ``("flow")``: ``"euler"`` or ``"heun"``.
        Other arguments: see :class:`~tutorial_lib.denoisers.DenoisingModel`.
    """

    process = "flow"  # sampled by the ODE solvers of tutorial_lib.samplers

    def __init__(self, network: keras.Model, sampler: str = "euler", **kwargs):
        super().__init__(network, **kwargs)
        if sampler not in samplers.names(self.process):
            choices = samplers.names(self.process)
            raise ValueError(f"Unknown sampler {sampler!r}; choose one of {choices}.")
        self.sampler = sampler

    @property
    def default_sampler(self) -> str:
        return self.sampler

    def training_pair(self, x1, labels=None):
        """``([x_t, t(, label)], x_1 - x_0)`` for a batch of data ``x1``."""
        batch_size = ops.shape(x1)[0]
        t = keras.random.uniform((batch_size,), seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x1), seed=self.seed_generator)
        inputs = [straight_path(noise, x1, t), t]
        if self.conditional:
            inputs.append(self.drop_labels(labels))
        return inputs, x1 - noise

    def get_config(self):
        return {**super().get_config(), "sampler": self.sampler}


def build_model(
    config: FlowMatchingConfig, *, decoder: keras.Model | None = None, seed: int | None = None
) -> FlowMatching:
    """A compiled flow-matching model for ``config`` (build it under the strategy scope).

    Pixel space: a U-Net over images in [-1, 1]. Latent space: an MLP over codes of
    the decoder's input size, with ``decoder`` (standardised codes -> pixels in [0, 1],
    from :func:`tutorial_lib.vae.latent_codec`) inside the model. Adam with a linear
    warm-up over the first 500 steps, gradients clipped to norm 1 (as for diffusion).
    """
    if config.space == "latent" and decoder is None:
        raise ValueError(
            "A latent flow-matching model needs the decoder of its autoencoder: "
            "build_model(config, decoder=...) with the decoder of vae.latent_codec."
        )
    data_dim = None if decoder is None else int(decoder.inputs[0].shape[-1])
    model = FlowMatching(
        denoisers.build_network(config, data_dim),
        decoder=decoder if config.space == "latent" else None,
        sampler=config.sampler,
        ema_decay=config.ema_decay,
        label_dropout=config.label_dropout,
        seed=seed,
        sample_steps=config.sample_steps,
        guidance=config.guidance if config.conditional else None,
        name=f"{config.space}_flow_matching",
    )
    warmup = keras.optimizers.schedules.PolynomialDecay(
        config.learning_rate / 500, 500, config.learning_rate, power=1.0
    )
    model.compile(optimizer=keras.optimizers.Adam(warmup, global_clipnorm=1.0))
    model.optimizer.build(model.network.trainable_variables)
    return model


# --------------------------------------------------------------------------
# Sampling: solve dx/dt = v(x, t) from t = 0 to t = 1
# --------------------------------------------------------------------------


def sample_codes(
    model: FlowMatching,
    num: int,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    trajectory_at=None,
    **options,
) -> np.ndarray | tuple[np.ndarray, dict]:
    """Generate ``num`` samples in the model's space (pixels in [-1, 1], or codes):
    noise at t = 0, carried to t = 1 by ``sampler`` with ``steps`` steps.

    ``trajectory_at`` lists times (of the sampler's grid) at which to keep the state;
    then returns ``(samples, {t: state})``. ``options``: ``labels``, ``guidance``,
    ``seed``, ``batch_size``, ``ema`` of
    :meth:`tutorial_lib.denoisers.DenoisingModel.sample_codes`.
    """
    return model.sample_codes(num, sampler=sampler, steps=steps, keep=trajectory_at, **options)


def sample(model: FlowMatching, num: int, *, seed: int = 0, **options):
    """``num`` images in [0, 1], shape (num, 28, 28, 1), drawn by the model
    (:meth:`tutorial_lib.denoisers.DenoisingModel.sample`): decoded (latent models) or
    rescaled (pixel models). A conditional model draws digits 0..9 in turn unless given
    ``labels``, with the model's guidance unless given ``guidance``; ``options``
    (``sampler``, ``steps``, ...) choose the solver."""
    return model.sample(num, seed=seed, **options)


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(config: FlowMatchingConfig, **kwargs) -> Trained:
    """Load the training images (and labels); for a latent model train its VAE (the
    stage ``"autoencoder"``), or take the trained ``autoencoder=`` given; then build the
    flow-matching model and train it (:func:`tutorial_lib.denoisers.train_model`)."""
    return denoisers.train_model(build_model, config, **kwargs)


def evaluate(model, config: FlowMatchingConfig, *, dataset: str, profile: Profile) -> dict:
    """Nothing of its own: the life cycle scores the samples
    (:func:`tutorial_lib.runs.evaluate`). (A flow-matching model has an exact likelihood
    through the ODE's change of volume, but computing it needs the divergence of the
    network at every step; this series measures it for RealNVP, :mod:`tutorial_lib.flows`.)"""
    return {}
