r"""What diffusion and flow matching share: networks that see noisy data at a time
:math:`t \in [0, 1]`, the model that trains one, and sampling with a sampler.

Both families train one network on noisy data :math:`x_t` at a random time
:math:`t` (and, for a class-conditional model, a label :math:`y`), then
generate by starting from pure noise and taking many small steps back to data.
They differ only in what the network predicts (the noise; the velocity) and in
how a step uses it (:mod:`tutorial_lib.diffusion`, :mod:`tutorial_lib.flows`).

**Networks** (:func:`build_unet` for 28x28 images, :func:`build_mlp_denoiser`
for latent codes) take ``[x_t, time]`` or ``[x_t, time, label]``: ``time`` is a
float in [0, 1], ``label`` an int in 0..9, or 10 for the *null* class that
classifier-free guidance trains with. Their output has the shape of ``x_t``.

**The model** (:class:`DenoisingModel`) trains a network on pairs that a family
makes (``training_pair``: the network's inputs, and the target it should
output), keeps an exponential moving average of its weights for sampling, and
for a latent model holds the decoder that turns samples into pixels.

**Samplers** (:mod:`tutorial_lib.samplers`) are small objects: ``times()`` lists
the pairs ``(t, t_next)`` of the path from noise to data, and ``step(predict, x, t,
t_next, rng)`` takes one step, calling ``predict(x, t)`` (the network's output) as
often as it needs. :func:`run_sampler` gives any of them the network (with the
labels and guidance asked for) and runs it, so a new sampler is a new class.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import data, device, samplers, vae
from tutorial_lib.data import IMAGE_SHAPE, NUM_CLASSES
from tutorial_lib.gradients import GradientStepModel
from tutorial_lib.profiles import Profile
from tutorial_lib.training import (
    Timer,
    Trained,
    averaged_copy,
    examples_seen,
    fit_for_profile,
    is_resuming,
    load_run_model,
    update_average,
)

NULL_LABEL = NUM_CLASSES  # the "no class" label of classifier-free guidance
SPACES = ("pixel", "latent")
AUTOENCODER_DIR = "autoencoder"  # where a latent run keeps its VAE


def to_model_space(images) -> np.ndarray:
    """Pixels in [0, 1] -> [-1, 1], the range in which pixel-space models work."""
    return (np.asarray(images, np.float32) * 2.0 - 1.0).astype(np.float32)


def to_unit_range(x) -> np.ndarray:
    """[-1, 1] -> pixels in [0, 1], clipped."""
    return np.clip((np.asarray(x, np.float32) + 1.0) / 2.0, 0.0, 1.0)


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


def build_network(config, data_dim: int | None = None) -> keras.Model:
    """The network of a diffusion or flow-matching ``config``: a :func:`build_unet` over
    28x28 images (``config.space == "pixel"``) or a :func:`build_mlp_denoiser` over codes
    of ``data_dim`` numbers (``"latent"``), with a label input if ``config.conditional``."""
    if config.space not in SPACES:
        raise ValueError(f"Unknown space {config.space!r}; choose one of {SPACES}.")
    if config.space == "pixel":
        return build_unet(
            channels=config.channels,
            channel_mults=config.channel_mults,
            blocks_per_level=config.blocks_per_level,
            attention_heads=config.attention_heads,
            groups=config.groups,
            conditional=config.conditional,
        )
    if data_dim is None:
        raise ValueError("A latent denoiser needs the size of the codes: data_dim=...")
    return build_mlp_denoiser(
        data_dim,
        width=config.mlp_width,
        blocks=config.mlp_blocks,
        conditional=config.conditional,
        name="latent_denoiser",
    )


# --------------------------------------------------------------------------
# The model: a network, its weight average, and (latent models) a decoder
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tutorial_lib")
class DenoisingModel(GradientStepModel):
    r"""A network trained to undo noise: the common part of diffusion and flow matching.

    ``fit`` takes batches of clean data :math:`x_0` in the model's space
    (pixels in [-1, 1], see :func:`to_model_space`, or the standardised codes
    of a VAE), with labels for a class-conditional network. Each
    :meth:`train_step` asks the family for a training pair (:meth:`training_pair`:
    the network's inputs ``[x_t, time(, label)]`` and the target it should
    output) and minimises the mean squared error, in float32. A conditional
    model replaces a fraction ``label_dropout`` of the labels by the null class
    (:meth:`drop_labels`), so it also learns the unconditional output that
    guidance needs. After every step the ``ema_network`` moves towards the
    trained weights (:func:`tutorial_lib.training.update_average`); samplers use it.

    Args:
        network: from :func:`build_unet` or :func:`build_mlp_denoiser`.
        decoder: for a latent model, maps its samples (standardised codes) to
            pixels in [0, 1] (:func:`tutorial_lib.vae.latent_codec`); None for pixels.
        sample_steps, guidance: how the family samples by default (steps; the
            guidance scale of a conditional model).

    A family's subclass says how it is sampled: ``process`` (``"diffusion"`` or
    ``"flow"``: which samplers of :mod:`tutorial_lib.samplers` can carry its noise to
    data) and ``default_sampler`` (the one used when none is named). :meth:`sample`
    and :meth:`sample_codes` then work the same for every family.
    """

    process: str  # "diffusion" or "flow" (tutorial_lib.samplers.PROCESSES)
    default_sampler: str  # a name of tutorial_lib.samplers.names(process)

    def __init__(
        self,
        network: keras.Model,
        decoder: keras.Model | None = None,
        ema_decay: float = 0.999,
        label_dropout: float = 0.1,
        seed: int | None = None,
        sample_steps: int = 50,
        guidance: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1); got {label_dropout}.")
        self.network = network
        self.ema_network = averaged_copy(network)
        self.decoder = decoder
        if decoder is not None:
            decoder.trainable = False
        self.ema_decay, self.label_dropout = float(ema_decay), float(label_dropout)
        self.seed = seed
        self.sample_steps = int(sample_steps)
        self.guidance = guidance
        self.conditional = is_conditional(network)
        self.data_shape = tuple(network.inputs[0].shape[1:])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # the networks were built by the caller

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        """The (trained, not averaged) network's output for ``[x_t, time(, label)]``."""
        return self.network(inputs, training=training)

    def _unpack(self, batch):
        if isinstance(batch, tuple | list):
            x0, labels = batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            x0, labels = batch, None
        if self.conditional and labels is None:
            raise ValueError(
                "A class-conditional model trains on (data, labels) batches; got data only. "
                "Pass the labels to fit_model(model, x, y, ...)."
            )
        return ops.cast(x0, "float32"), labels

    def null_condition(self, num: int) -> np.ndarray:
        """The condition that means "no condition", ``num`` times: :data:`NULL_LABEL`
        (a text-conditioned model: the empty caption)."""
        return np.full((num,), NULL_LABEL, np.int32)

    def condition_for(self, labels, num: int) -> np.ndarray | None:
        """What sampling asks for, as the network's condition input for ``num`` samples
        (:func:`labels_for`; a text-conditioned model: prompts as token ids)."""
        return labels_for(labels, num)

    def drop_labels(self, labels):
        """The labels with a fraction ``label_dropout`` replaced by :data:`NULL_LABEL`."""
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        drop = keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        return ops.where(drop < self.label_dropout, NULL_LABEL, labels)

    def training_pair(self, x0, labels=None):
        """``(inputs, target)`` for one step: what the family trains its network on."""
        raise NotImplementedError("a family's model defines its training pairs")

    def train_step(self, batch):
        inputs, target = self.training_pair(*self._unpack(batch))

        def loss_fn():
            predicted = ops.cast(self.network(inputs, training=True), "float32")
            return ops.mean(ops.square(target - predicted)), ()

        loss, _, _ = self.descend(self.optimizer, self.network.trainable_weights, loss_fn)
        update_average(self.ema_network, self.network, self.ema_decay, self.optimizer.iterations)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, batch):
        inputs, target = self.training_pair(*self._unpack(batch))
        predicted = ops.cast(self.network(inputs, training=False), "float32")
        self.loss_tracker.update_state(ops.mean(ops.square(target - predicted)))
        return {"loss": self.loss_tracker.result()}

    def to_images(self, x) -> np.ndarray:
        """Samples in the model's space -> pixels in [0, 1], shape (N, 28, 28, 1)."""
        if self.decoder is None:
            return to_unit_range(x)
        pixels = self.decoder.predict(np.asarray(x, np.float32), batch_size=1000, verbose=0)
        return np.clip(pixels, 0.0, 1.0)

    def sample_codes(
        self,
        num: int,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        labels=None,
        guidance: float | None = None,
        seed: int = 0,
        batch_size: int = 500,
        ema: bool = True,
        keep=None,
        **sampler_options,
    ) -> np.ndarray | tuple[np.ndarray, dict]:
        """``num`` samples in the model's space (pixels in [-1, 1], or codes): noise carried
        to data by ``sampler`` (default: :attr:`default_sampler`) in ``steps`` steps
        (default: ``sample_steps``), with the sampler's own options (DDIM's ``eta``). The
        other arguments are those of :func:`run_sampler`."""
        chosen = samplers.make(self, sampler, steps, **sampler_options)
        return run_sampler(
            self,
            chosen,
            num,
            labels=labels,
            guidance=guidance,
            seed=seed,
            batch_size=batch_size,
            ema=ema,
            keep=keep,
        )

    def sample(self, num: int, *, labels=None, guidance: float | None = None, **options):
        """``num`` images in [0, 1], shape (num, 28, 28, 1): :meth:`sample_codes`, decoded
        (latent models) or rescaled (pixel models). A conditional model draws digits 0..9
        in turn unless given ``labels``, with the model's guidance unless given
        ``guidance`` (:func:`sampling_condition`)."""
        labels, guidance = sampling_condition(self, num, labels, guidance)
        return self.to_images(self.sample_codes(num, labels=labels, guidance=guidance, **options))

    def get_config(self):
        config = {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "ema_decay": self.ema_decay,
            "label_dropout": self.label_dropout,
            "seed": self.seed,
            "sample_steps": self.sample_steps,
            "guidance": self.guidance,
        }
        if self.decoder is not None:
            config["decoder"] = keras.saving.serialize_keras_object(self.decoder)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("network", "decoder"):
            if config.get(part) is not None:
                config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)


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


def predict(network: keras.Model, x, time, labels=None, guidance: float | None = None, null=None):
    """The network's output for a batch ``x`` at one ``time`` in [0, 1].

    For a conditional network: ``labels`` None asks for the unconditional
    output (``null``, default the null class); labels with ``guidance`` None the
    conditional one; with a ``guidance`` :math:`w`, :func:`guided` of the two, computed
    in one doubled batch.
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
    null = np.full((n,), NULL_LABEL, np.int32) if null is None else null
    if labels is None:
        return network.predict_on_batch([x, times, null])
    if guidance is None:
        return network.predict_on_batch([x, times, labels])
    both = network.predict_on_batch(
        [np.concatenate([x, x]), np.concatenate([times, times]), np.concatenate([labels, null])]
    )
    return guided(both[:n], both[n:], guidance)


# --------------------------------------------------------------------------
# Training: the autoencoder of a latent model, then the denoiser
# --------------------------------------------------------------------------

# The VAE whose codes a latent model learns, by profile: one stage that diffusion and
# flow matching share (their configs' ``autoencoder``), so that notebook 05 trains it
# once and 05b, 06b and 07 reuse it. A 16-number code: small enough for a small
# denoiser, large enough for recognisable digits.
LATENT_STAGE = {
    "fast": vae.CONFIGS["vae"]["fast"],
    "cpu": vae.VAEConfig(kind="conv", latent_dim=16, epochs=5, train_examples=None),
    "gpu": vae.VAEConfig(kind="conv", latent_dim=16, epochs=10, train_examples=None),
}

# The denoiser's space, network, data and training budget by profile: one table that the
# configs of diffusion and of flow matching both start from, so that the two families
# compare on equal terms. The fast and cpu profiles denoise the latent stage's codes with
# an MLP (a pixel U-Net cannot learn recognisable digits in five minutes on two cores,
# notebook 05 shows the measurements); the gpu profile denoises pixels with a U-Net.
SHARED_SIZES = {
    "fast": dict(
        space="latent",
        channels=8,
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
        autoencoder=LATENT_STAGE["fast"],
    ),
    "cpu": dict(
        space="latent",
        mlp_width=256,
        mlp_blocks=3,
        batch_size=256,
        learning_rate=1e-3,
        epochs=15,
        train_examples=None,
        ema_decay=0.999,
        autoencoder=LATENT_STAGE["cpu"],
    ),
    "gpu": dict(
        space="pixel",
        channels=64,
        blocks_per_level=2,
        batch_size=128,
        learning_rate=2e-4,
        epochs=40,
        train_examples=None,
        ema_decay=0.9995,
        autoencoder=LATENT_STAGE["gpu"],
    ),
}


def train_autoencoder(
    x_train: np.ndarray,
    vae_config: vae.VAEConfig,
    profile: Profile,
    *,
    seed: int = 0,
    run_dir=None,
    callbacks: list | None = None,
) -> vae.VAE:
    """Train the VAE whose codes a latent model denoises, on binarised images; build it
    under the strategy scope in force."""
    binary = (x_train > 0.5).astype(np.float32)
    model = vae.build_model(vae_config, seed=seed)
    vae.fit_model(
        model,
        binary,
        config=vae_config,
        profile=profile,
        seed=seed,
        run_dir=run_dir,
        callbacks=callbacks,
    )
    return model


def autoencoder_stage(lesson, config, profile: Profile) -> dict:
    """The VAE whose codes the latent models learn, trained once by notebook 05 and reused
    by 05b, 06b and 07: the experiment ``"autoencoder"`` of ``lesson`` (notebook 05's
    :class:`tutorial_lib.checkpoints.Lesson`), loaded where it is recorded, trained here
    otherwise (``config.autoencoder`` on the first ``config.train_examples`` training
    digits, seed 0). Returns ``{"vae": the model, "seconds": its training time}``."""

    def train_the_vae():
        x_train, _ = data.load_images("mnist", "train", limit=config.train_examples)
        with device.setup(profile).strategy.scope(), Timer() as timer:
            model = train_autoencoder(x_train, config.autoencoder, profile, seed=0)
        return {"vae": model, "seconds": timer.seconds}

    return lesson.experiment("autoencoder", train_the_vae)


def trained_autoencoder(x_train, vae_config, profile, *, seed, run_dir, callbacks) -> vae.VAE:
    """The VAE of a latent run: trained (and saved in ``run_dir/autoencoder``), or the
    one an interrupted run already trained."""
    if run_dir is None:
        return train_autoencoder(x_train, vae_config, profile, seed=seed)
    folder = Path(run_dir) / AUTOENCODER_DIR
    saved = folder / "model.keras"
    if saved.is_file() and is_resuming(run_dir):
        return load_run_model(folder)
    saved.unlink(missing_ok=True)  # a new run: a VAE left by an earlier one is stale
    clocks = [c for c in callbacks or [] if hasattr(c, "legs")]  # time this stage too
    model = train_autoencoder(
        x_train, vae_config, profile, seed=seed, run_dir=folder, callbacks=clocks
    )
    model.save(saved)
    return model


def training_data(config, images: np.ndarray, autoencoder: vae.VAE | None = None):
    """``(x, decoder)``: the training images in the model's space, ready for
    :func:`fit_model`: pixels in [-1, 1] (no decoder) for a pixel model; for a
    latent model, the standardised codes of the trained ``autoencoder`` and
    their decoder (:func:`tutorial_lib.vae.latent_codec`)."""
    if config.space == "pixel":
        return to_model_space(images), None
    if autoencoder is None:
        raise ValueError(
            "A latent model needs its trained autoencoder: "
            "training_data(config, images, train_autoencoder(images, vae_config, profile))."
        )
    return vae.latent_codec(autoencoder, images)


def fit_model(
    model: DenoisingModel,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    config,
    profile: Profile,
    epochs: int | None = None,
    seed: int = 0,
    callbacks: list | None = None,
    run_dir=None,
) -> keras.callbacks.History:
    """Train on data ``x`` in the model's space (labels ``y`` for a conditional model).

    Batch size and epochs come from ``config`` (``epochs`` overrides), the cap
    on steps per epoch and verbosity from the profile. With ``run_dir`` the run
    resumes after an interruption.
    """
    if model.conditional and y is None:
        raise ValueError("A class-conditional model needs the labels: fit_model(model, x, y).")
    if tuple(x.shape[1:]) != model.data_shape:
        raise ValueError(
            f"The model works on data of shape {model.data_shape}; got {tuple(x.shape[1:])}. "
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


def train_model(
    build_model,
    config,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir=None,
    callbacks: list | None = None,
    autoencoder: vae.VAE | None = None,
) -> Trained:
    """A family's ``train_model`` (diffusion's, flow matching's): load the training
    images (and labels); for a latent model train its VAE (kept in the run folder and
    reused by a resumed run), or take the trained ``autoencoder`` given; then build the
    model with ``build_model(config, decoder=..., seed=...)`` and fit it."""
    x_train, y_train = data.load_images(dataset, "train", limit=config.train_examples)
    if config.space == "latent" and autoencoder is None:
        autoencoder = trained_autoencoder(
            x_train, config.autoencoder, profile, seed=seed, run_dir=run_dir, callbacks=callbacks
        )
    x, decoder = training_data(config, x_train, autoencoder)
    model = build_model(config, decoder=decoder, seed=seed)
    history = fit_model(
        model,
        x,
        y_train,
        config=config,
        profile=profile,
        seed=seed,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    seen = examples_seen(len(x), config.epochs, config.batch_size, profile)
    stages = {} if autoencoder is None else {AUTOENCODER_DIR: autoencoder}
    return Trained(model, history.history, seen, stages)


# --------------------------------------------------------------------------
# Sampling: one loop for every sampler
# --------------------------------------------------------------------------


def run_sampler(
    model: DenoisingModel,
    sampler: samplers.Sampler,
    num: int,
    *,
    labels=None,
    guidance: float | None = None,
    seed: int = 0,
    batch_size: int = 500,
    ema: bool = True,
    keep=None,
) -> np.ndarray | tuple[np.ndarray, dict]:
    r"""``num`` samples in the model's space, from :math:`\mathcal N(0, I)` noise taken to
    data by ``sampler`` (:meth:`tutorial_lib.samplers.Sampler.run`), in batches of
    ``batch_size``. The sampler's ``predict(x, t)`` is the network's output at ``x`` and
    the sampler's :meth:`~tutorial_lib.samplers.Sampler.network_time` of ``t``.

    Args:
        labels: a digit or one per sample (conditional models; a text-conditioned model:
            prompts, :meth:`DenoisingModel.condition_for`); None: unconditional.
        guidance: classifier-free guidance scale :math:`w` (None: no guidance).
        seed: seeds the starting noise and every step's noise (NumPy).
        ema: use the averaged weights (default) or the trained ones.
        keep: times at which to keep the state; then returns ``(samples, {t: state})``.
    """
    network = model.ema_network if ema else model.network
    labels = model.condition_for(labels, num)
    rng = np.random.default_rng(seed)
    out, kept = [], {}
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        chunk_labels = None if labels is None else labels[start : start + n]

        null = model.null_condition(n)

        def predict_fn(x, t, chunk_labels=chunk_labels, null=null):
            return predict(network, x, sampler.network_time(t), chunk_labels, guidance, null)

        x = rng.standard_normal((n, *model.data_shape)).astype(np.float32)
        x, states = sampler.run(predict_fn, x, rng, keep=() if keep is None else keep)
        out.append(x)
        for t, state in states.items():
            kept.setdefault(t, []).append(state)
    samples = np.concatenate(out)
    if keep is not None:
        return samples, {t: np.concatenate(v) for t, v in kept.items()}
    return samples


def sampling_condition(model: DenoisingModel, num: int, labels=None, guidance=None) -> tuple:
    """``(labels, guidance)`` for ``num`` samples of ``model``: a conditional model draws
    digits 0..9 in turn unless given ``labels``, with the model's guidance unless given
    ``guidance``; an unconditional one takes neither."""
    if model.conditional:
        labels = np.arange(num) % NUM_CLASSES if labels is None else labels
        guidance = model.guidance if guidance is None else guidance
    elif labels is not None or guidance is not None:
        raise ValueError(
            "Labels and guidance need the class-conditional model: train it with "
            "--conditional (conditional=True)."
        )
    return labels, guidance
