r"""Normalizing flows: an invertible network, and an exact likelihood by change of variables.

**Change of variables.** If :math:`z = f(x)` is invertible and differentiable and
:math:`z` has a simple density :math:`p_Z` (a standard normal), then

.. math::  \log p_X(x) = \log p_Z\big(f(x)\big) + \log \Big|\det \frac{\partial f}{\partial x}\Big| .

The second term is the change of volume: where :math:`f` stretches space, the
density must thin out. A flow is :math:`f = f_K \circ \dots \circ f_1`, and the
log-determinants of its layers add up. Sampling runs the other way:
:math:`z \sim p_Z`, :math:`x = f^{-1}(z)`, in one pass.

**Affine coupling** (Dinh et al., 2017, RealNVP): a binary mask :math:`m` keeps
half the numbers as they are and transforms the others with a scale and a shift
computed from the kept half,

.. math::  y = m \odot x + (1 - m) \odot \big(x \odot e^{s(m \odot x)} + t(m \odot x)\big),

so the Jacobian is triangular, :math:`\log|\det| = \sum (1 - m) \odot s`, and the
inverse is as cheap: :math:`x = m \odot y + (1 - m) \odot (y - t(m \odot y)) \odot e^{-s(m \odot y)}`.
:math:`s` and :math:`t` can be any networks: they are never inverted.

**Masks and scales.** A *checkerboard* mask alternates pixels; after a *squeeze*
(each 2x2 block of pixels becomes 4 channels: half the resolution, four times
the channels) a *channel* mask keeps half the channels. Couplings alternate the
kept half. After each level, half the numbers are *factored out* (they are part
of :math:`z` from then on), so deeper levels work on fewer numbers (a
multi-scale flow). *Actnorm* (Kingma & Dhariwal, 2018) scales and shifts each
channel, initialised so that the first batch has zero mean and unit variance;
its log-determinant is :math:`H W \sum_c \log|a_c|`.

**Discrete pixels.** A density on 256 grey levels is not a density on real
numbers: a flow would put infinite density on the 256 values. *Uniform
dequantization* trains on :math:`\tilde x = x + u`, :math:`u \sim U[0, 1)^D`, whose
density bounds the discrete likelihood from below (:func:`dequantize`). The
*logit transform* :math:`s = \operatorname{logit}(\alpha + (1 - 2\alpha)\,\tilde x / 256)` maps
:math:`[0, 256)` to the whole real line (:func:`logit_transform`, with its
log-determinant). The likelihood is reported in **bits per dimension**:
:math:`-\log_2 p(\tilde x) / D` (:func:`tutorial_lib.metrics.bits_per_dimension`).

:mod:`tutorial_lib.lessons.plane_flows` is the same idea on points of the plane, for pictures.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import backend, data, metrics
from tutorial_lib.data import IMAGE_SHAPE
from tutorial_lib.gradients import GradientStepModel
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Trained, fit_for_profile

LOG_2PI = math.log(2.0 * math.pi)
PIXEL_LEVELS = 256

# --------------------------------------------------------------------------
# Configuration, per profile
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RealNVPConfig:
    """Sizes and training settings of a RealNVP for 28x28 images.

    Attributes:
        levels: multi-scale levels; each ends with a squeeze and factors out half
            (28x28x1 -> 14x14x2 kept -> 7x7x4 kept for 2 levels).
        checkerboard_couplings: checkerboard couplings at the start of each level.
        channel_couplings: channel couplings after each level's squeeze.
        final_couplings: checkerboard couplings on what is left after the last level.
        hidden_channels: width of every coupling's network.
        blocks: residual blocks in every coupling's network.
        alpha: the logit transform's margin, :math:`\\alpha`.
        batch_size, learning_rate, train_examples: the training run.
        epochs: its epochs; with ``steps_per_epoch`` an "epoch" is that many steps
            over the repeated training images (to measure often), else a full pass.
        validation_examples: test images scored after every epoch (``val_loss``).
    """

    levels: int = 2
    checkerboard_couplings: int = 3
    channel_couplings: int = 3
    final_couplings: int = 4
    hidden_channels: int = 64
    blocks: int = 2
    alpha: float = 1e-5
    batch_size: int = 64
    learning_rate: float = 1e-3
    epochs: int = 30
    steps_per_epoch: int | None = None
    train_examples: int | None = None
    validation_examples: int = 500


CONFIGS = {
    "realnvp": {
        "fast": RealNVPConfig(
            levels=2,
            checkerboard_couplings=1,
            channel_couplings=1,
            final_couplings=1,
            hidden_channels=8,
            blocks=1,
            batch_size=32,
            epochs=2,
            train_examples=512,
            validation_examples=64,
        ),
        "cpu": RealNVPConfig(
            hidden_channels=32,
            blocks=1,
            batch_size=64,
            learning_rate=2e-3,
            epochs=6,
            steps_per_epoch=250,
            train_examples=None,
        ),
        "gpu": RealNVPConfig(hidden_channels=64, blocks=4, batch_size=64, epochs=100),
    },
}


# --------------------------------------------------------------------------
# From discrete pixels to real numbers, and back
# --------------------------------------------------------------------------


def dequantize(images, noise):
    r"""Pixels in [0, 1] (``k / 255``) -> :math:`(k + u) / 256 \in [0, 1)`, with
    ``noise`` :math:`u \in [0, 1)` of the same shape."""
    levels = ops.round(ops.cast(images, "float32") * (PIXEL_LEVELS - 1))
    return (levels + ops.cast(noise, "float32")) / PIXEL_LEVELS


def logit_transform(y, alpha: float):
    r""":math:`s = \operatorname{logit}(p)`, :math:`p = \alpha + (1 - 2\alpha) y`, for
    :math:`y \in [0, 1)`; returns ``(s, log_det)`` with the log-determinant per
    example, :math:`\sum_i \log \frac{1 - 2\alpha}{p_i (1 - p_i)}`."""
    p = alpha + (1.0 - 2.0 * alpha) * y
    s = ops.log(p) - ops.log1p(-p)
    log_det = math.log(1.0 - 2.0 * alpha) - ops.log(p) - ops.log1p(-p)
    return s, ops.sum(log_det, axis=tuple(range(1, len(y.shape))))


def inverse_logit_transform(s, alpha: float):
    r""":math:`y = (\sigma(s) - \alpha) / (1 - 2\alpha)`, clipped to [0, 1]."""
    return ops.clip((ops.sigmoid(s) - alpha) / (1.0 - 2.0 * alpha), 0.0, 1.0)


def squeeze(x):
    """(B, H, W, C) -> (B, H/2, W/2, 4C): each 2x2 block of pixels becomes 4 channels."""
    b, h, w, c = ops.shape(x)
    x = ops.reshape(x, (-1, h // 2, 2, w // 2, 2, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h // 2, w // 2, 4 * c))


def unsqueeze(x):
    """The inverse of :func:`squeeze`: (B, H, W, 4C) -> (B, 2H, 2W, C)."""
    b, h, w, c4 = ops.shape(x)
    c = c4 // 4
    x = ops.reshape(x, (-1, h, w, 2, 2, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, 2 * h, 2 * w, c))


def checkerboard(height: int, width: int, parity: int) -> np.ndarray:
    """A (1, H, W, 1) mask: 1 where (row + column) has the given parity, else 0."""
    rows, cols = np.indices((height, width))
    return (((rows + cols) % 2) == parity).astype(np.float32)[None, :, :, None]


def standard_normal_log_density(z):
    r""":math:`\log \mathcal N(z; 0, I) = -\frac12 \sum_i (z_i^2 + \log 2\pi)` per example."""
    return -0.5 * ops.sum(ops.square(z) + LOG_2PI, axis=tuple(range(1, len(z.shape))))


# --------------------------------------------------------------------------
# Layers: each returns its output and its log-determinant, and can be inverted
# --------------------------------------------------------------------------

_SERIALIZABLE = keras.saving.register_keras_serializable(package="tutorial_lib")


@_SERIALIZABLE
class ActNorm(keras.layers.Layer):
    r"""Per-channel affine map :math:`y = a \odot (x + b)`, log-determinant
    :math:`(\text{numbers per channel}) \sum_c \log|a_c|`.

    :meth:`initialize` sets :math:`b = -\text{mean}` and :math:`a = 1/\text{std}` of a
    batch, so the flow starts with well-scaled activations.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.log_scale = self.add_weight(shape=(channels,), initializer="zeros", name="log_scale")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def initialize(self, x) -> None:
        axes = tuple(range(len(x.shape) - 1))
        mean = ops.mean(x, axis=axes)
        std = ops.std(x, axis=axes)
        self.bias.assign(-mean)
        self.log_scale.assign(-ops.log(std + 1e-6))

    def _per_example_count(self, x) -> int:
        return int(np.prod(x.shape[1:-1]))

    def call(self, x):
        y = (x + self.bias) * ops.exp(self.log_scale)
        log_det = self._per_example_count(x) * ops.sum(self.log_scale)
        return y, ops.ones((ops.shape(x)[0],)) * log_det

    def inverse(self, y):
        return y * ops.exp(-self.log_scale) - self.bias


def _coupling_network(channels_in: int, channels_out: int, hidden: int, blocks: int, dense: bool):
    """s and t from the kept half: (conv or dense) -> ReLU residual blocks -> a zero-initialised
    layer with ``2 * channels_out`` outputs (so every coupling starts as the identity)."""
    layer = (
        (lambda n, **kw: keras.layers.Dense(n, **kw))
        if dense
        else (lambda n, **kw: keras.layers.Conv2D(n, 3, padding="same", **kw))
    )
    inputs = keras.Input((channels_in,) if dense else (None, None, channels_in))
    h = layer(hidden, activation="relu")(inputs)
    for _ in range(blocks):
        r = layer(hidden, activation="relu")(h)
        # No bias before the sum: TensorFlow's graph optimizer fails (harmlessly, but with
        # an error message) to fuse a dense layer's bias, a sum and a ReLU.
        r = layer(hidden, use_bias=False)(r)
        h = keras.layers.Activation("relu")(h + r)
    out = layer(2 * channels_out, kernel_initializer="zeros", dtype="float32")(h)
    return keras.Model(inputs, out)


@_SERIALIZABLE
class AffineCoupling(keras.layers.Layer):
    r"""An affine coupling layer with a checkerboard, channel or (for 2-D points)
    coordinate mask: the masked half is kept, the other half scaled and shifted
    (:math:`s = \gamma \tanh(\hat s)`, a bounded scale, :math:`\gamma` learned per channel).

    Args:
        mask: ``"checkerboard"`` (images), ``"channel"`` (images after a squeeze)
            or ``"coordinate"`` (vectors: the first or second half of the numbers).
        parity: which half is kept (0 or 1); alternate it between couplings.
        hidden, blocks: the width and residual blocks of the network for s and t.
    """

    def __init__(self, mask: str, parity: int, hidden: int = 64, blocks: int = 1, **kwargs):
        super().__init__(**kwargs)
        if mask not in ("checkerboard", "channel", "coordinate"):
            raise ValueError(f"Unknown mask {mask!r}: checkerboard, channel or coordinate.")
        self.mask, self.parity, self.hidden, self.blocks = mask, int(parity), hidden, blocks

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.mask == "checkerboard":
            self.net = _coupling_network(channels + 1, channels, self.hidden, self.blocks, False)
        elif self.mask == "channel":
            half = channels // 2
            self.net = _coupling_network(half, channels - half, self.hidden, self.blocks, False)
        else:
            half = channels // 2
            self.net = _coupling_network(half, channels - half, self.hidden, self.blocks, True)
        changed = channels if self.mask == "checkerboard" else channels - channels // 2
        self.scale = self.add_weight(shape=(changed,), initializer="ones", name="scale")

    # Checkerboard: the mask is spatial; s and t have every channel and are masked out.
    # Channel and coordinate: the input is split into the kept and the changed half.
    def _halves(self, x):
        half = x.shape[-1] // 2
        first, second = x[..., :half], x[..., half:]
        return (first, second) if self.parity == 0 else (second, first)

    def _join(self, kept, changed):
        return ops.concatenate([kept, changed] if self.parity == 0 else [changed, kept], axis=-1)

    def _scale_shift(self, kept_input):
        raw = ops.cast(self.net(kept_input), "float32")
        half = raw.shape[-1] // 2
        return self.scale * ops.tanh(raw[..., :half]), raw[..., half:]

    def _sum(self, x):
        return ops.sum(x, axis=tuple(range(1, len(x.shape))))

    def call(self, x):
        if self.mask == "checkerboard":
            m = ops.convert_to_tensor(checkerboard(x.shape[1], x.shape[2], self.parity))
            mask_channel = ops.ones_like(x[..., :1]) * m
            s, t = self._scale_shift(ops.concatenate([x * m, mask_channel], axis=-1))
            s, t = s * (1.0 - m), t * (1.0 - m)
            return x * ops.exp(s) + t, self._sum(s)
        kept, changed = self._halves(x)
        s, t = self._scale_shift(kept)
        return self._join(kept, changed * ops.exp(s) + t), self._sum(s)

    def inverse(self, y):
        y = ops.convert_to_tensor(y)
        if self.mask == "checkerboard":
            m = ops.convert_to_tensor(checkerboard(y.shape[1], y.shape[2], self.parity))
            mask_channel = ops.ones_like(y[..., :1]) * m
            s, t = self._scale_shift(ops.concatenate([y * m, mask_channel], axis=-1))
            s, t = s * (1.0 - m), t * (1.0 - m)
            return (y - t) * ops.exp(-s)
        kept, changed = self._halves(y)
        s, t = self._scale_shift(kept)
        return self._join(kept, (changed - t) * ops.exp(-s))

    def get_config(self):
        return {
            **super().get_config(),
            "mask": self.mask,
            "parity": self.parity,
            "hidden": self.hidden,
            "blocks": self.blocks,
        }


@_SERIALIZABLE
class FlowSequence(keras.layers.Layer):
    """Flow layers applied in turn: the log-determinants add up; the inverse runs
    the inverses in the opposite order."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = list(steps)

    def call(self, x):
        log_det = ops.zeros((ops.shape(x)[0],))
        for step in self.steps:
            x, step_log_det = step(x)
            log_det = log_det + step_log_det
        return x, log_det

    def inverse(self, y):
        for step in reversed(self.steps):
            y = step.inverse(y)
        return y

    def initialize(self, x) -> None:
        """Run ``x`` through, setting every :class:`ActNorm` from the batch it sees."""
        for step in self.steps:
            if isinstance(step, ActNorm):
                step.initialize(x)
            x, _ = step(x)

    def get_config(self):
        return {
            **super().get_config(),
            "steps": [keras.saving.serialize_keras_object(step) for step in self.steps],
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["steps"] = [keras.saving.deserialize_keras_object(s) for s in config["steps"]]
        return cls(**config)


def _couplings(mask: str, count: int, hidden: int, blocks: int) -> list:
    """``count`` couplings with alternating kept halves, each after an :class:`ActNorm`."""
    steps = []
    for i in range(count):
        steps += [ActNorm(), AffineCoupling(mask, i % 2, hidden, blocks)]
    return steps


# --------------------------------------------------------------------------
# The multi-scale image flow
# --------------------------------------------------------------------------


@_SERIALIZABLE
class RealNVP(GradientStepModel):
    r"""A multi-scale RealNVP for 28x28 grey images, trained by maximum likelihood.

    :meth:`forward` maps logit-space images to the list of :math:`z` parts (one
    factored out per level, then the rest) and the log-determinant;
    :meth:`inverse` maps them back. :meth:`log_likelihood` adds the
    dequantization and the logit transform: the log-density of the dequantized
    pixels :math:`\tilde x \in [0, 256)^D`, in nats per image. Training minimises
    bits per dimension; ``fit`` logs them as ``loss`` (with uniform noise drawn
    afresh for every batch).
    """

    def __init__(
        self,
        levels: int = 2,
        checkerboard_couplings: int = 3,
        channel_couplings: int = 3,
        final_couplings: int = 4,
        hidden_channels: int = 64,
        blocks: int = 2,
        alpha: float = 1e-5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.levels, self.alpha, self.seed = int(levels), float(alpha), seed
        self.sizes = dict(
            checkerboard_couplings=checkerboard_couplings,
            channel_couplings=channel_couplings,
            final_couplings=final_couplings,
            hidden_channels=hidden_channels,
            blocks=blocks,
        )
        self.before_squeeze = [
            FlowSequence(
                _couplings("checkerboard", checkerboard_couplings, hidden_channels, blocks)
            )
            for _ in range(self.levels)
        ]
        self.after_squeeze = [
            FlowSequence(_couplings("channel", channel_couplings, hidden_channels, blocks))
            for _ in range(self.levels)
        ]
        self.final = FlowSequence(
            _couplings("checkerboard", final_couplings, hidden_channels, blocks)
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def build(self, input_shape=(None, *IMAGE_SHAPE)):
        self.forward(ops.zeros((1, *input_shape[1:])))
        self.built = True

    def call(self, x, training=False):
        """The log-likelihood of pixel images ``x`` in [0, 1] (one dequantization), nats."""
        noise = keras.random.uniform(ops.shape(x), seed=self.seed_generator)
        return self.log_likelihood(x, noise)

    def forward(self, s):
        """Logit-space images (B, 28, 28, 1) -> (list of z parts, log-determinant)."""
        zs, log_det = [], ops.zeros((ops.shape(s)[0],))
        h = s
        for before, after in zip(self.before_squeeze, self.after_squeeze, strict=True):
            h, d1 = before(h)
            h, d2 = after(squeeze(h))
            half = h.shape[-1] // 2
            zs.append(h[..., half:])  # factored out: part of z from here on
            h = h[..., :half]
            log_det = log_det + d1 + d2
        h, d3 = self.final(h)
        return [*zs, h], log_det + d3

    def inverse(self, zs):
        """The inverse of :meth:`forward`: z parts -> logit-space images."""
        h = self.final.inverse(zs[-1])
        for level in reversed(range(self.levels)):
            h = ops.concatenate([h, zs[level]], axis=-1)
            h = unsqueeze(self.after_squeeze[level].inverse(h))
            h = self.before_squeeze[level].inverse(h)
        return h

    def initialize(self, images, seed: int = 0) -> None:
        """Data-dependent initialisation of every :class:`ActNorm` from a batch of pixels."""
        noise = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
        h, _ = logit_transform(dequantize(images, noise), self.alpha)
        for before, after in zip(self.before_squeeze, self.after_squeeze, strict=True):
            before.initialize(h)
            h, _ = before(h)
            h = squeeze(h)
            after.initialize(h)
            h, _ = after(h)
            h = h[..., : h.shape[-1] // 2]
        self.final.initialize(h)

    def log_likelihood(self, images, noise):
        r""":math:`\log p(\tilde x)` in nats per image for pixels ``images`` in [0, 1] and
        dequantization ``noise`` :math:`u \in [0, 1)`: the flow's density of the logit
        codes, plus the log-determinants of the flow and the logit transform, minus
        :math:`D \log 256` (the scaling of :math:`\tilde x` to [0, 1))."""
        y = dequantize(images, noise)
        s, log_det_logit = logit_transform(y, self.alpha)
        zs, log_det = self.forward(s)
        log_pz = sum(standard_normal_log_density(z) for z in zs)
        dims = int(np.prod(images.shape[1:]))
        return log_pz + log_det + log_det_logit - dims * math.log(PIXEL_LEVELS)

    def train_step(self, images):
        images = images[0] if isinstance(images, tuple | list) else images
        noise = keras.random.uniform(ops.shape(images), seed=self.seed_generator)
        dims = float(np.prod(images.shape[1:]))

        def loss_fn():
            nll = -ops.mean(self.log_likelihood(images, noise))
            return nll / (dims * math.log(2.0)), ()  # bits per dimension

        loss, _, _ = self.descend(self.optimizer, self.trainable_weights, loss_fn)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, images):
        images = images[0] if isinstance(images, tuple | list) else images
        noise = keras.random.uniform(ops.shape(images), seed=self.seed_generator)
        dims = float(np.prod(images.shape[1:]))
        nll = -ops.mean(self.log_likelihood(images, noise))
        self.loss_tracker.update_state(nll / (dims * math.log(2.0)))
        return {"loss": self.loss_tracker.result()}

    def z_shapes(self) -> list[tuple[int, ...]]:
        """The shapes (without the batch) of the z parts, as :meth:`forward` makes them."""
        shapes, (h, w, c) = [], IMAGE_SHAPE
        for _ in range(self.levels):
            h, w, c = h // 2, w // 2, 2 * c
            shapes.append((h, w, c))
        return [*shapes, (h, w, c)]

    def get_config(self):
        return {
            **super().get_config(),
            "levels": self.levels,
            "alpha": self.alpha,
            "seed": self.seed,
            **self.sizes,
        }


def build_model(config: RealNVPConfig | None = None, *, seed: int | None = None) -> RealNVP:
    """A compiled :class:`RealNVP` of ``config``, built for 28x28x1 images (Adam; its
    ActNorms are initialised from data by :func:`fit_model`)."""
    config = config or RealNVPConfig()
    model = RealNVP(
        levels=config.levels,
        checkerboard_couplings=config.checkerboard_couplings,
        channel_couplings=config.channel_couplings,
        final_couplings=config.final_couplings,
        hidden_channels=config.hidden_channels,
        blocks=config.blocks,
        alpha=config.alpha,
        seed=seed,
        name="realnvp",
    )
    model.build((None, *IMAGE_SHAPE))
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, global_clipnorm=100.0))
    return model


def fit_model(
    model: RealNVP,
    x: np.ndarray,
    *,
    config: RealNVPConfig,
    profile: Profile,
    validation: np.ndarray | None = None,
    seed: int = 0,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """Initialise the ActNorms from the first 512 images, then train on images ``x`` in
    [0, 1] for ``config.epochs`` (of ``config.steps_per_epoch`` steps, if set) in batches
    of ``config.batch_size``; the loss is bits per dimension. ``validation`` images are
    scored after every epoch. With ``run_dir`` the run resumes after an interruption."""
    model.initialize(x[:512], seed=seed)
    dataset = data.image_dataset(
        x,
        batch_size=config.batch_size,
        targets="none",
        seed=seed,
        drop_remainder=True,
        repeat=config.steps_per_epoch is not None or profile.steps_per_epoch is not None,
    )
    return fit_for_profile(
        model,
        dataset,
        profile=profile,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        validation_data=None if validation is None else (validation,),
        callbacks=callbacks,
        run_dir=run_dir,
    )


def _compiled(model: RealNVP, method: str):
    """The model's ``method`` (``"inverse"`` or ``"log_likelihood"``) compiled once for
    scoring and sampling (:func:`tutorial_lib.backend.compiled`: on JAX)."""
    attribute = f"_compiled_{method}"
    if getattr(model, attribute, None) is None:
        setattr(model, attribute, backend.compiled(getattr(model, method), model))
    return getattr(model, attribute)


def bits_per_dimension(model: RealNVP, images: np.ndarray, *, seed: int = 0, batch_size=500):
    """Test bits per dimension: :math:`-\\log_2 p(\\tilde x) / D` averaged over ``images``,
    with one dequantization draw each (``seed``)."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size].astype(np.float32)
        noise = rng.random(chunk.shape, dtype=np.float32)
        total += float(ops.sum(_compiled(model, "log_likelihood")(chunk, noise)))
    return metrics.bits_per_dimension(-total / len(images), int(np.prod(images.shape[1:])))


def sample(model: RealNVP, num: int, *, seed: int = 0, temperature: float = 1.0, batch_size=500):
    """``num`` images in [0, 1], shape (num, 28, 28, 1): :math:`z \\sim \\mathcal N(0, T^2 I)`
    (``temperature`` :math:`T`), through the inverse flow and the inverse logit transform.
    A temperature below 1 trades variety for cleaner digits."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        zs = [
            temperature * rng.standard_normal((n, *shape)).astype(np.float32)
            for shape in model.z_shapes()
        ]
        y = inverse_logit_transform(_compiled(model, "inverse")(zs), model.alpha)
        out.append(ops.convert_to_numpy(y).astype(np.float32))
    return np.concatenate(out)


def encode(model: RealNVP, images: np.ndarray) -> np.ndarray:
    """The code of each image in [0, 1]: :math:`z = f(x)` exactly, for the pixels at the
    centres of their quantisation bins, its parts flattened and joined (784 numbers)."""
    images = np.asarray(images, np.float32)
    y = dequantize(images, np.full(images.shape, 0.5, np.float32))
    parts, _ = model.forward(logit_transform(y, model.alpha)[0])
    return np.concatenate(
        [ops.convert_to_numpy(part).reshape(len(images), -1) for part in parts], axis=1
    )


def decode(model: RealNVP, codes: np.ndarray) -> np.ndarray:
    """Images in [0, 1] for codes of :func:`encode`: the inverse flow, exactly."""
    codes = np.asarray(codes, np.float32)
    parts, start = [], 0
    for shape in model.z_shapes():
        size = int(np.prod(shape))
        parts.append(codes[:, start : start + size].reshape(len(codes), *shape))
        start += size
    inverse = _compiled(model, "inverse")
    return ops.convert_to_numpy(inverse_logit_transform(inverse(parts), model.alpha)).astype(
        np.float32
    )


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(
    config: RealNVPConfig,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Trained:
    """Load ``config.train_examples`` training images, build the flow, train it (the first
    ``config.validation_examples`` test images as validation data). Returns a
    :class:`~tutorial_lib.training.Trained`."""
    x_train, _ = data.load_images(dataset, "train", limit=config.train_examples)
    x_val, _ = data.load_images(dataset, "test", limit=config.validation_examples)
    model = build_model(config, seed=seed)
    history = fit_model(
        model,
        x_train,
        config=config,
        profile=profile,
        validation=x_val,
        seed=seed,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    seen = int(model.optimizer.iterations) * config.batch_size
    return Trained(model, history.history, seen)


def evaluate(model: RealNVP, config: RealNVPConfig, *, dataset: str, profile: Profile) -> dict:
    """The exact negative log-likelihood of the dequantized test images, nats per image."""
    x_test, _ = data.load_images(dataset, "test", limit=profile.test_examples)
    bits = bits_per_dimension(model, x_test)
    nats = metrics.convert(bits, "bits per dimension", "nats per image", dimensions=x_test[0].size)
    return {"nll": nats}
