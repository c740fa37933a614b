r"""What diffusion and flow matching share: networks that see noisy data at a time
:math:`t \in [0, 1]`, and the loop that runs a sampler.

Both families train one network on noisy data :math:`x_t` at a random time
:math:`t` (and, for a class-conditional model, a label :math:`y`), then
generate by starting from pure noise and taking many small steps back to data.
They differ only in what the network predicts (the noise; the velocity) and in
how a step uses it (:mod:`tutorial_lib.diffusion`, :mod:`tutorial_lib.flows`).

**Networks** (:func:`build_unet` for 28x28 images, :func:`build_mlp_denoiser`
for latent codes) take ``[x_t, time]`` or ``[x_t, time, label]``: ``time`` is a
float in [0, 1], ``label`` an int in 0..9, or 10 for the *null* class that
classifier-free guidance trains with. Their output has the shape of ``x_t``.

**Samplers** are small objects with two methods: ``times()`` lists the pairs
``(t, t_next)`` of the path from noise to data, and ``step(predict, x, t,
t_next, rng)`` takes one step, calling ``predict(x, t)`` (the network's output)
as often as it needs. :func:`run_sampler` is the one loop that drives any of
them, so a new sampler is a new class.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tutorial_lib.data import IMAGE_SHAPE, NUM_CLASSES

NULL_LABEL = NUM_CLASSES  # the "no class" label of classifier-free guidance


@keras.saving.register_keras_serializable(package="tutorial_lib")
class TimeEmbedding(keras.layers.Layer):
    r"""Times :math:`t \in [0, 1]` -> sinusoidal features (as the transformer's positions):
    :math:`[\sin(s t \omega_0), \ldots, \sin(s t \omega_{k-1}), \cos(s t \omega_0), \ldots]`,
    :math:`\omega_i = 10000^{-i/(k-1)}`, :math:`k = ` ``dim / 2``, with ``scale`` :math:`s`
    (1000: a time step of 1/1000 moves the fastest feature by one radian).

    Kept in float32 under mixed precision: 16-bit floats cannot tell t = 0.500
    from t = 0.502.
    """

    def __init__(self, dim: int, scale: float = 1000.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"The embedding size must be even and >= 2; got {dim}.")
        self.dim, self.scale = dim, float(scale)

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(
            -math.log(10000.0) * ops.arange(half, dtype="float32") / max(half - 1, 1)
        )
        angles = ops.reshape(ops.cast(t, "float32") * self.scale, (-1, 1)) * frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale}


def conditioning(width: int, *, conditional: bool):
    """Inputs for the time (and the label) and their joint embedding, of size ``width``.

    The time goes through :class:`TimeEmbedding` and a small MLP; a label
    (0..9, or :data:`NULL_LABEL`) adds a learned vector. Returns ``(inputs, embedding)``.
    """
    time_in = keras.Input((), dtype="float32", name="time")
    h = TimeEmbedding(width)(time_in)
    h = keras.layers.Dense(width, activation="swish")(h)
    embedding = keras.layers.Dense(width)(h)
    inputs = [time_in]
    if conditional:
        label_in = keras.Input((), dtype="int32", name="label")
        embedding = embedding + keras.layers.Embedding(
            NUM_CLASSES + 1, width, name="label_embedding"
        )(label_in)
        inputs.append(label_in)
    return inputs, embedding


def _residual_block(h, embedding, channels: int, groups: int):
    """GroupNorm-swish-conv, plus the projected time/label embedding, then again; plus a skip."""
    skip = h if h.shape[-1] == channels else keras.layers.Conv2D(channels, 1)(h)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(groups)(h))
    h = keras.layers.Conv2D(channels, 3, padding="same")(h)
    e = keras.layers.Dense(channels)(keras.layers.Activation("swish")(embedding))
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


def build_unet(
    *,
    channels: int = 64,
    channel_mults: tuple[int, ...] = (1, 2, 2),
    blocks_per_level: int = 2,
    attention_heads: int = 4,
    groups: int = 8,
    conditional: bool = False,
    image_shape: tuple[int, int, int] = IMAGE_SHAPE,
    name: str = "unet",
) -> keras.Model:
    r"""A U-Net for 28x28 images: ``[x_t, time(, label)]`` -> an image-sized output.

    Three levels (28, 14, 7 pixels) of ``blocks_per_level`` residual blocks
    (width ``channels`` times each of ``channel_mults``) with group
    normalisation (``groups`` must divide the widths); strided convolutions
    down, nearest upsampling and a convolution up, with skip connections
    across; self-attention at 7x7. Every block adds the time (and label)
    embedding. The last convolution (float32) starts at zero, so training
    starts from "predict nothing".
    """
    widths = [channels * m for m in channel_mults]
    x_in = keras.Input(image_shape, name="x_t")
    cond_inputs, emb = conditioning(4 * channels, conditional=conditional)
    h = keras.layers.Conv2D(widths[0], 3, padding="same")(x_in)
    skips = [h]
    for level, width in enumerate(widths):
        for _ in range(blocks_per_level):
            h = _residual_block(h, emb, width, groups)
            skips.append(h)
        if level < len(widths) - 1:
            h = keras.layers.Conv2D(width, 3, strides=2, padding="same")(h)
            skips.append(h)
    h = _residual_block(h, emb, widths[-1], groups)
    h = _attention_block(h, attention_heads, groups)
    h = _residual_block(h, emb, widths[-1], groups)
    for level, width in reversed(list(enumerate(widths))):
        for _ in range(blocks_per_level + 1):
            h = keras.layers.Concatenate()([h, skips.pop()])
            h = _residual_block(h, emb, width, groups)
        if level > 0:
            h = keras.layers.UpSampling2D(2)(h)
            h = keras.layers.Conv2D(width, 3, padding="same")(h)
    h = keras.layers.Activation("swish")(keras.layers.GroupNormalization(groups)(h))
    out = keras.layers.Conv2D(
        image_shape[-1], 3, padding="same", kernel_initializer="zeros", dtype="float32"
    )(h)
    return keras.Model([x_in, *cond_inputs], out, name=name)


def build_mlp_denoiser(
    data_dim: int,
    *,
    width: int = 512,
    blocks: int = 4,
    conditional: bool = False,
    name: str = "mlp_denoiser",
) -> keras.Model:
    r"""An MLP for flat data such as latent codes: ``[x_t, time(, label)]`` -> ``data_dim``
    numbers.

    ``blocks`` residual blocks of width ``width`` (LayerNorm, swish, dense, plus
    the time and label embedding, swish, dense). A code has no pixel grid, so
    convolutions have nothing to work on. The output layer starts at zero.
    """
    x_in = keras.Input((data_dim,), name="x_t")
    cond_inputs, emb = conditioning(width, conditional=conditional)
    h = keras.layers.Dense(width)(x_in)
    for _ in range(blocks):
        r = keras.layers.Activation("swish")(keras.layers.LayerNormalization()(h))
        r = keras.layers.Dense(width)(r)
        r = r + keras.layers.Dense(width)(keras.layers.Activation("swish")(emb))
        r = keras.layers.Dense(width)(keras.layers.Activation("swish")(r))
        h = h + r
    h = keras.layers.Activation("swish")(keras.layers.LayerNormalization()(h))
    out = keras.layers.Dense(data_dim, kernel_initializer="zeros", dtype="float32")(h)
    return keras.Model([x_in, *cond_inputs], out, name=name)


def is_conditional(network: keras.Model) -> bool:
    """Whether a denoiser takes a label (three inputs: data, time, label)."""
    return len(network.inputs) == 3


def labels_for(labels, num: int) -> np.ndarray | None:
    """``labels`` (None, one digit, or one per sample) as ``num`` int32 digits."""
    if labels is None:
        return None
    labels = np.broadcast_to(np.asarray(labels, np.int64), (num,)).astype(np.int32)
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(
            f"Labels must be digits 0..{NUM_CLASSES - 1}; got {labels.min()}..{labels.max()}."
        )
    return labels


def guided(eps_conditional, eps_unconditional, guidance: float):
    r"""Classifier-free guidance: :math:`(1 + w)\, f(x_t, y) - w\, f(x_t, \varnothing)`.

    :math:`w = 0` gives the conditional prediction; larger :math:`w` pushes
    samples further from "any digit" towards "this digit".
    """
    return (1.0 + guidance) * eps_conditional - guidance * eps_unconditional


def predict(network: keras.Model, x, time, labels=None, guidance: float | None = None):
    """The network's output for a batch ``x`` at one ``time`` in [0, 1].

    For a conditional network: ``labels`` None asks for the unconditional
    output (the null class); labels with ``guidance`` None the conditional
    one; with a ``guidance`` :math:`w`, :func:`guided` of the two, computed in
    one doubled batch.
    """
    n = len(x)
    times = np.full((n,), time, np.float32)
    if not is_conditional(network):
        if labels is not None:
            raise ValueError(
                "This model is unconditional: train it with conditional=True "
                "to sample digits of a chosen class."
            )
        return network.predict_on_batch([x, times])
    null = np.full((n,), NULL_LABEL, np.int32)
    if labels is None:
        return network.predict_on_batch([x, times, null])
    if guidance is None:
        return network.predict_on_batch([x, times, labels])
    both = network.predict_on_batch(
        [np.concatenate([x, x]), np.concatenate([times, times]), np.concatenate([labels, null])]
    )
    return guided(both[:n], both[n:], guidance)


def run_sampler(sampler, predict_fn, x, rng: np.random.Generator, keep=()) -> tuple:
    """Drive ``sampler`` from the noise ``x`` to data: for each ``(t, t_next)`` of
    ``sampler.times()``, ``x = sampler.step(predict_fn, x, t, t_next, rng)``.

    ``keep`` lists times at which to keep the state (for pictures of the path).
    Returns ``(x, {t: state})``.
    """
    kept = {}
    keep = {float(t) for t in keep}
    for t, t_next in sampler.times():
        if t in keep:
            kept[t] = x
        x = sampler.step(predict_fn, x, t, t_next, rng)
    return x, kept
