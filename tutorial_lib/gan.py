r"""Generative adversarial networks: DCGAN, WGAN-GP and a conditional GAN.

A **generator** :math:`G` turns noise :math:`z \sim \mathcal N(0, I)` into an
image; a **discriminator** :math:`D` outputs a logit :math:`D(x)`, and
:math:`\sigma(D(x))` is its probability that :math:`x` is real. They play

.. math::  \min_G \max_D\; \mathbb E_{x}\big[\log \sigma(D(x))\big]
           + \mathbb E_{z}\big[\log\big(1 - \sigma(D(G(z)))\big)\big].

* :func:`discriminator_loss`: binary cross-entropy with label 1 for real
  images and 0 for fakes, summed over the two halves:
  :math:`L_D = -\mathbb E \log \sigma(D(x)) - \mathbb E \log(1 - \sigma(D(G(z))))`.
* :func:`generator_loss`: the **non-saturating** loss
  :math:`L_G = -\mathbb E \log \sigma(D(G(z)))` (cross-entropy with label 1 on
  the fakes). The minimax form :math:`\mathbb E \log(1 - \sigma(D(G(z))))`
  ("saturating") has a gradient that vanishes exactly when :math:`D` rejects the
  fakes confidently, i.e. at the start of training; notebook 03 measures it.

**WGAN-GP** replaces the classifier by a critic :math:`f` (any real score)
and minimises an estimate of the Wasserstein-1 distance:
:math:`L_f = \mathbb E f(G(z)) - \mathbb E f(x) + \lambda\, \mathrm{GP}`,
:math:`L_G = -\mathbb E f(G(z))`, with the :func:`gradient_penalty`
:math:`\mathrm{GP} = \mathbb E_{\hat x}(\lVert \nabla_{\hat x} f(\hat x) \rVert_2 - 1)^2`
on random interpolates :math:`\hat x = \epsilon x + (1 - \epsilon) G(z)`,
:math:`\epsilon \sim U[0, 1]`, and ``n_critic`` critic steps per generator step.

The **conditional GAN** gives the class label to both networks, so
:math:`G(z, y)` draws a digit of the class asked for.

All three share the network builders :func:`build_generator` (DCGAN:
transposed strided convolutions, batch norm, ReLU, tanh output) and
:func:`build_discriminator` (strided convolutions, LeakyReLU, no batch norm, a
linear logit). Images are in [0, 1] outside this module and in [-1, 1] inside
(the tanh range); :func:`generate` returns [0, 1].
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import data, device
from tutorial_lib.data import IMAGE_SHAPE, NUM_CLASSES
from tutorial_lib.gradients import GradientStepModel, input_gradient
from tutorial_lib.profiles import Profile
from tutorial_lib.training import (
    Trained,
    averaged_copy,
    fit_for_profile,
    steps_per_call,
    update_average,
)

MODELS = ("gan", "wgan_gp", "cgan")
GENERATOR_LOSSES = ("non_saturating", "saturating")


@dataclasses.dataclass(frozen=True)
class GANConfig:
    """Sizes and training settings of one GAN.

    Attributes:
        kind: which GAN: ``"gan"`` (DCGAN), ``"wgan_gp"`` or ``"cgan"`` (conditional).
        latent_dim: numbers in the noise vector ``z``.
        generator_filters: channels of the generator's 14x14 and 7x7 feature maps.
        discriminator_filters: channels of the discriminator's two convolutions
            (14x14, then 7x7).
        kernel_size: of every (transposed) convolution.
        label_dim: size of the learned label embedding of the conditional generator.
        learning_rate, beta_1, beta_2: Adam settings of both optimizers
            (the DCGAN paper's 2e-4 and 0.5; WGAN-GP's paper uses beta_2 0.9).
        n_critic: critic steps per generator step (WGAN-GP).
        gp_weight: the penalty weight lambda (WGAN-GP).
        train_examples: how many training images (``None``: all 60,000).
        batch_size: images per step. Small batches give more steps for the same
            compute, which is what a GAN on a CPU needs most.
        epochs: passes over the training images.
        steps_per_execution: training steps Keras runs per call into the
            compiled graph. The same training with fewer trips through Python
            in between: with networks this small, those trips cost about 15% of
            a cpu-profile step.
    """

    kind: str = "gan"
    latent_dim: int = 64
    generator_filters: tuple[int, int] = (64, 128)
    discriminator_filters: tuple[int, int] = (64, 128)
    kernel_size: int = 4
    label_dim: int = 16
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    n_critic: int = 5
    gp_weight: float = 10.0
    train_examples: int | None = None
    batch_size: int = 64
    epochs: int = 30
    steps_per_execution: int = 25


# Every size each GAN trains with, by model name and profile. The DCGAN: the fast
# profile shrinks everything for tests; the cpu profile trains its three GANs in about
# five minutes in all on two cores (notebook 03).
CONFIGS = {
    "gan": {
        "fast": GANConfig(
            latent_dim=16,
            generator_filters=(8, 16),
            discriminator_filters=(8, 16),
            label_dim=4,
            n_critic=2,
            train_examples=512,
            batch_size=32,
            epochs=2,
            steps_per_execution=2,
        ),
        "cpu": GANConfig(
            generator_filters=(32, 64),
            discriminator_filters=(32, 64),
            train_examples=20_000,
            batch_size=16,
            epochs=10,
        ),
        "gpu": GANConfig(),
    },
}

# WGAN-GP and the conditional GAN share the DCGAN's networks and data; WGAN-GP takes its
# paper's Adam beta_2, and both train fewer epochs on a cpu than the DCGAN.
_DCGAN = CONFIGS["gan"]
CONFIGS["wgan_gp"] = {
    "fast": dataclasses.replace(_DCGAN["fast"], kind="wgan_gp", beta_2=0.9, epochs=1),
    "cpu": dataclasses.replace(_DCGAN["cpu"], kind="wgan_gp", beta_2=0.9, epochs=2),
    "gpu": dataclasses.replace(_DCGAN["gpu"], kind="wgan_gp", beta_2=0.9, epochs=30),
}
CONFIGS["cgan"] = {
    "fast": dataclasses.replace(_DCGAN["fast"], kind="cgan", epochs=1),
    "cpu": dataclasses.replace(_DCGAN["cpu"], kind="cgan", epochs=3),
    "gpu": dataclasses.replace(_DCGAN["gpu"], kind="cgan", epochs=30),
}


@dataclasses.dataclass(frozen=True)
class RegularizedGANConfig(GANConfig):
    """A :class:`GANConfig` for a :class:`RegularizedGAN`.

    Attributes (beyond :class:`GANConfig`'s):
        r1_weight: :math:`\\gamma`; D's loss adds :math:`\\gamma / 2` times the R1
            penalty (0: none).
        ema_decay: decay of the generator's weight average (0: none).
    """

    r1_weight: float = 10.0
    ema_decay: float = 0.999


# The recommended recipe of notebook 03 ("What helps, measured"): the conditional DCGAN's
# networks and data, R1 on D (gamma 10), a weight average of G, both learning rates
# doubled to 4e-4 (R1 keeps D stable at that rate), sampled with uniformly drawn labels.
# cpu: 8 epochs, about 150 CPU-seconds on the 2-core machine it was measured on.
CONFIGS["cgan_r1_ema"] = {
    profile: RegularizedGANConfig(
        **{**dataclasses.asdict(config), "kind": "cgan", "learning_rate": 4e-4, "epochs": epochs},
        ema_decay=ema_decay,
    )
    for (profile, config), epochs, ema_decay in zip(
        _DCGAN.items(), (1, 8, 30), (0.9, 0.999, 0.999), strict=True
    )
}


def to_tanh_range(images):
    """Images in [0, 1] -> [-1, 1], the range of the generator's tanh output."""
    return ops.cast(images, "float32") * 2.0 - 1.0


def to_unit_range(images):
    """Images in [-1, 1] -> [0, 1], clipped (what the metrics and plots expect)."""
    return ops.clip((ops.cast(images, "float32") + 1.0) / 2.0, 0.0, 1.0)


# --------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------


def build_generator(config: GANConfig, conditional: bool = False) -> keras.Model:
    """DCGAN generator: z (and a label) -> 7x7 map -> 14x14 -> 28x28 image in [-1, 1].

    Dense projection to 7x7xF, then a stride-2 4x4 transposed convolution, each
    followed by batch norm and ReLU, and a last stride-2 transposed
    convolution with tanh (float32 under mixed precision). With
    ``conditional``, a second input takes the class label (int), embedded and
    concatenated to ``z``.
    """
    small, large = config.generator_filters
    z = keras.Input((config.latent_dim,), name="z")
    inputs, h = [z], z
    if conditional:
        label = keras.Input((1,), dtype="int32", name="label")
        embedded = keras.layers.Embedding(NUM_CLASSES, config.label_dim)(label)
        h = keras.layers.Concatenate()([z, keras.layers.Flatten()(embedded)])
        inputs.append(label)
    h = keras.layers.Dense(7 * 7 * large, use_bias=False)(h)
    h = keras.layers.BatchNormalization(momentum=0.9)(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Reshape((7, 7, large))(h)
    h = keras.layers.Conv2DTranspose(
        small, config.kernel_size, strides=2, padding="same", use_bias=False
    )(h)
    h = keras.layers.BatchNormalization(momentum=0.9)(h)
    h = keras.layers.ReLU()(h)
    image = keras.layers.Conv2DTranspose(
        1,
        config.kernel_size,
        strides=2,
        padding="same",
        activation="tanh",
        dtype="float32",
        name="image",
    )(h)
    return keras.Model(inputs if conditional else z, image, name="generator")


def build_discriminator(
    config: GANConfig, conditional: bool = False, name: str = "discriminator"
) -> keras.Model:
    """DCGAN discriminator (also the WGAN-GP critic): image (and label) -> one logit.

    Two stride-2 4x4 convolutions (28 -> 14 -> 7) with LeakyReLU(0.2), no batch
    norm (it would couple the examples of a batch, which the gradient penalty
    must not), then a linear float32 output: a logit for the GAN, a score for
    the critic. With ``conditional``, the label is embedded as a 28x28 map and
    stacked on the image as a second channel.
    """
    small, large = config.discriminator_filters
    image = keras.Input(IMAGE_SHAPE, name="image")
    inputs, h = [image], image
    if conditional:
        label = keras.Input((1,), dtype="int32", name="label")
        plane = keras.layers.Embedding(NUM_CLASSES, 28 * 28)(label)
        plane = keras.layers.Reshape(IMAGE_SHAPE)(plane)
        h = keras.layers.Concatenate()([image, plane])
        inputs.append(label)
    for filters in (small, large):
        # No bias, as in the reference DCGAN (it also keeps TensorFlow's graph
        # optimizer from logging a harmless error about fusing bias and LeakyReLU).
        h = keras.layers.Conv2D(
            filters, config.kernel_size, strides=2, padding="same", use_bias=False
        )(h)
        h = keras.layers.LeakyReLU(0.2)(h)
    h = keras.layers.Flatten()(h)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(h)
    return keras.Model(inputs if conditional else image, logit, name=name)


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------


def _bce_with_logits(labels, logits):
    """Mean binary cross-entropy of logits against 0/1 labels, in float32.

    Written with softplus, ``-log sigmoid(l) = softplus(-l)``, which is exact
    for large logits where ``log(sigmoid(l))`` would round to ``log(0)``.
    """
    logits = ops.cast(logits, "float32")
    return ops.mean(
        ops.binary_crossentropy(ops.full_like(logits, labels), logits, from_logits=True)
    )


def discriminator_loss(real_logits, fake_logits):
    r"""The discriminator's cross-entropy: label 1 for real, 0 for fake, the two means summed.

    :math:`L_D = -\frac1N\sum_i \log \sigma(D(x_i)) - \frac1N\sum_i \log(1 - \sigma(D(G(z_i))))`.
    About :math:`2 \log 2 = 1.39` when D cannot tell (D outputs 1/2 everywhere),
    0 when it separates them perfectly.
    """
    return _bce_with_logits(1.0, real_logits) + _bce_with_logits(0.0, fake_logits)


def generator_loss(fake_logits, kind: str = "non_saturating"):
    r"""The generator's loss on the discriminator's logits for its fakes.

    * ``"non_saturating"``: :math:`-\frac1N\sum_i \log \sigma(D(G(z_i)))`,
      cross-entropy with label 1 ("make D call the fakes real"). Its gradient
      with respect to a logit is :math:`\sigma(l) - 1`: large when D rejects.
    * ``"saturating"``: :math:`\frac1N\sum_i \log(1 - \sigma(D(G(z_i))))`,
      the minimax objective, minus the cross-entropy with label 0. Its
      gradient is :math:`-\sigma(l)`: it vanishes when D rejects the fakes.
    """
    if kind == "non_saturating":
        return _bce_with_logits(1.0, fake_logits)
    if kind == "saturating":
        return -_bce_with_logits(0.0, fake_logits)
    raise ValueError(f"Unknown generator loss {kind!r}; choose one of {GENERATOR_LOSSES}.")


def gradient_penalty(critic, real, fake, epsilon=None, seed=None):
    r"""WGAN-GP's penalty :math:`\frac1N\sum_i (\lVert \nabla_{\hat x} f(\hat x_i) \rVert_2 - 1)^2`.

    The gradient of the critic ``f`` is taken at random points on the lines
    between real and fake images, :math:`\hat x_i = \epsilon_i x_i + (1 -
    \epsilon_i) \tilde x_i` with :math:`\epsilon_i \sim U[0, 1]` (or the given
    ``epsilon``, shape (N, 1, 1, 1)), and its norm over each image's pixels is
    pushed towards 1: a soft version of "f is 1-Lipschitz".

    Args:
        critic: callable, images (N, 28, 28, 1) -> scores (N, 1).
        real, fake: images of the same shape.
        epsilon: interpolation weights; drawn uniformly when None.
        seed: seed (int or ``keras.random.SeedGenerator``) of epsilon.
    """
    real = ops.cast(real, "float32")
    fake = ops.cast(fake, "float32")
    if epsilon is None:
        epsilon = keras.random.uniform((ops.shape(real)[0], 1, 1, 1), seed=seed)
    epsilon = ops.cast(epsilon, "float32")
    interpolates = epsilon * real + (1.0 - epsilon) * fake
    grads = input_gradient(critic, interpolates)  # of the sum: each score depends on its image
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-12)
    return ops.mean(ops.square(norms - 1.0))


def r1_penalty(discriminator, real):
    r"""R1 (Mescheder et al., 2018): the squared gradient norm of the discriminator
    at **real** images, :math:`\frac1N\sum_i \lVert \nabla_x D(x_i) \rVert_2^2`.

    Added to D's loss with weight :math:`\gamma / 2`, it flattens D around the data:
    where the real images are, D may not change fast, so its gradient cannot
    push the generator back and forth (the oscillation that keeps a plain GAN from
    converging). Unlike WGAN-GP's penalty it needs no fakes and no interpolates.

    Args:
        discriminator: callable, images (N, 28, 28, 1) -> logits (N, 1).
        real: real images.
    """
    grads = input_gradient(discriminator, real)  # of the sum: each logit depends on its image
    return ops.mean(ops.sum(ops.square(grads), axis=(1, 2, 3)))


# --------------------------------------------------------------------------
# The models: a keras.Model with its own train_step
# --------------------------------------------------------------------------


def make_optimizer(learning_rate: float, beta_1: float, beta_2: float = 0.999):
    """Adam; under the ``mixed_float16`` policy wrapped in a ``LossScaleOptimizer``.

    float16 gradients underflow without loss scaling; a custom ``train_step``
    scales the loss with ``optimizer.scale_loss`` and the wrapper unscales the
    gradients (and skips steps whose gradients overflowed).
    """
    optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _global_norm(grads, optimizer):
    """The L2 norm of all gradients together, with loss scaling undone."""
    norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads))
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        norm = norm / ops.cast(optimizer.dynamic_scale, "float32")
    return norm


@keras.saving.register_keras_serializable(package="tutorial_lib")
class GAN(GradientStepModel):
    """A DCGAN (or, with a two-input generator and discriminator, a conditional GAN).

    Each ``train_step`` takes one batch of real images (in [0, 1], with labels
    for a conditional GAN) and makes one discriminator step, then
    ``g_steps`` generator steps, each with its own optimizer and
    ``tf.GradientTape``. Logged: ``d_loss``, ``g_loss``, the discriminator's
    accuracy on real (``real_acc``) and fake (``fake_acc``) images, and the
    norm of the generator's gradient (``g_grad_norm``).

    Args:
        generator, discriminator: from :func:`build_generator` and
            :func:`build_discriminator` (both conditional or neither).
        generator_loss: ``"non_saturating"`` (default) or ``"saturating"``.
        g_steps: generator steps per discriminator step; 0 trains the
            discriminator alone (a head start: notebook 03's "D wins" demo).
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        generator_loss: str = "non_saturating",
        g_steps: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"Unknown generator loss {generator_loss!r}; choose one of {GENERATOR_LOSSES}."
            )
        if len(generator.inputs) != len(discriminator.inputs):
            raise ValueError(
                "Build the generator and the discriminator both conditional or both not: "
                f"the generator takes {len(generator.inputs)} input(s), the discriminator "
                f"{len(discriminator.inputs)}."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.generator_loss = generator_loss
        if g_steps < 0:
            raise ValueError(f"g_steps must be 0 or more; got {g_steps}.")
        self.g_steps = int(g_steps)
        self.conditional = len(generator.inputs) == 2
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.seed_generator = keras.random.SeedGenerator(0)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self._metric_names()}
        self.d_optimizer = self.g_optimizer = None
        self.built = True

    def _metric_names(self) -> tuple[str, ...]:
        names = ("d_loss", "real_acc", "fake_acc")
        return (*names, "g_loss", "g_grad_norm") if self.g_steps else names

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Set the two optimizers (default: Adam(2e-4, beta_1=0.5) each) and build them.

        Other keyword arguments (``steps_per_execution``) go to ``keras.Model.compile``."""
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer or make_optimizer(2e-4, 0.5)
        self.g_optimizer = g_optimizer or make_optimizer(2e-4, 0.5)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        if self.d_optimizer is None:
            return None
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
        )

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator :func:`sample` draws from: the trained one."""
        return self.generator

    def default_labels(self, num: int, seed: int = 0) -> np.ndarray:
        """The classes a conditional GAN draws when none are asked for: 0, 1, ..., 9 in turn."""
        return np.arange(num) % NUM_CLASSES

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "generator_loss": self.generator_loss,
            "g_steps": self.g_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for part in ("generator", "discriminator"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)

    # -- pieces of a step ---------------------------------------------------

    def _unpack(self, batch):
        """(images in [-1, 1], labels or None) from a batch of the training data."""
        if isinstance(batch, tuple | list):
            images = batch[0]
            labels = batch[1] if len(batch) > 1 else None
        else:
            images, labels = batch, None
        if self.conditional and labels is None:
            raise ValueError(
                "A conditional GAN trains on (images, labels) batches; got images only. "
                "Pass the labels to fit_gan (y=...)."
            )
        if self.conditional:
            labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
        return to_tanh_range(images), labels if self.conditional else None

    def _noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def _generate(self, z, labels, training=True):
        return self.generator([z, labels] if self.conditional else z, training=training)

    def _discriminate(self, images, labels, training=True):
        inputs = [images, labels] if self.conditional else images
        return ops.cast(self.discriminator(inputs, training=training), "float32")

    def _log(self, values: dict) -> dict:
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    # -- the losses (methods, so a subclass can swap in its own) ------------

    def compute_d_loss(self, real_logits, fake_logits):
        """The discriminator's loss: :func:`discriminator_loss`."""
        return discriminator_loss(real_logits, fake_logits)

    def compute_g_loss(self, fake_logits):
        """The generator's loss: :func:`generator_loss` of the kind chosen."""
        return generator_loss(fake_logits, self.generator_loss)

    # -- one training step ----------------------------------------------------

    def step_optimizers(self) -> list:
        """The two optimizers a step uses: D's, then G's."""
        return [self.d_optimizer, self.g_optimizer]

    def discriminator_step(self, real, labels):
        """One update of D on real images and fresh fakes; returns (loss, real, fake logits)."""
        n = ops.shape(real)[0]
        fake = self._generate(self._noise(n), labels)
        both = ops.concatenate([real, ops.cast(fake, real.dtype)], axis=0)  # one pass for both
        both_labels = None if labels is None else ops.concatenate([labels, labels], axis=0)

        def loss_fn():
            logits = self._discriminate(both, both_labels)
            real_logits, fake_logits = logits[:n], logits[n:]
            return self.compute_d_loss(real_logits, fake_logits), (real_logits, fake_logits)

        variables = self.discriminator.trainable_variables
        d_loss, (real_logits, fake_logits), _ = self.descend(self.d_optimizer, variables, loss_fn)
        return d_loss, real_logits, fake_logits

    def generator_step(self, batch_size, labels):
        """One update of G through D (only G's variables change); returns (loss, grad norm)."""
        z = self._noise(batch_size)

        def loss_fn():
            fake_logits = self._discriminate(self._generate(z, labels), labels)
            return self.compute_g_loss(fake_logits), ()

        variables = self.generator.trainable_variables
        g_loss, _, grads = self.descend(self.g_optimizer, variables, loss_fn)
        return g_loss, _global_norm(grads, self.g_optimizer) * device.replicas_in_sync()

    def train_step(self, batch):
        """One discriminator step, then ``g_steps`` generator steps, on one batch."""
        real, labels = self._unpack(batch)
        d_loss, real_logits, fake_logits = self.discriminator_step(real, labels)
        values = {
            "d_loss": d_loss,
            "real_acc": ops.mean(ops.cast(real_logits > 0, "float32")),
            "fake_acc": ops.mean(ops.cast(fake_logits < 0, "float32")),
        }
        for _ in range(self.g_steps):
            values["g_loss"], values["g_grad_norm"] = self.generator_step(
                ops.shape(real)[0], labels
            )
        return self._log(values)


@keras.saving.register_keras_serializable(package="tutorial_lib")
class WGANGP(GAN):
    """WGAN-GP: a critic trained ``n_critic`` times per generator step, with a gradient penalty.

    Each ``train_step`` takes ``n_critic`` batches of real images at once
    (:func:`fit_gan` makes its batches ``n_critic`` times larger), makes one
    critic step on each, with fresh noise, then one generator step: the
    critic sees as many real images per epoch as a DCGAN's discriminator, the
    generator takes ``n_critic`` times fewer steps. Logged: ``d_loss`` (the critic's loss with the
    penalty), ``g_loss``, ``w_distance`` (the critic's estimate
    :math:`\\mathbb E f(x) - \\mathbb E f(G(z))`), ``gp`` and ``g_grad_norm``.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        **kwargs,
    ):
        kwargs.pop("generator_loss", None)
        super().__init__(generator, discriminator, **kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be at least 1; got {n_critic}.")
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)

    def _metric_names(self) -> tuple[str, ...]:
        return ("d_loss", "g_loss", "w_distance", "gp", "g_grad_norm")

    def get_config(self):
        config = super().get_config()
        config.pop("generator_loss")
        return {**config, "n_critic": self.n_critic, "gp_weight": self.gp_weight}

    def compute_d_loss(self, real_scores, fake_scores):
        """The critic's loss without the penalty: E f(G(z)) - E f(x)."""
        return ops.mean(fake_scores) - ops.mean(real_scores)

    def compute_g_loss(self, fake_scores):
        """The generator's loss: -E f(G(z))."""
        return -ops.mean(fake_scores)

    def compute_penalty(self, critic, real, fake):
        """:func:`gradient_penalty` at random interpolates."""
        return gradient_penalty(critic, real, fake, seed=self.seed_generator)

    def discriminator_step(self, real, labels):
        """One critic update with the penalty; returns (loss, penalty, Wasserstein estimate)."""

        def critic(images):
            return self._discriminate(images, labels)

        fake = self._generate(self._noise(ops.shape(real)[0]), labels)

        def loss_fn():
            wasserstein = -self.compute_d_loss(critic(real), critic(fake))
            gp = self.compute_penalty(critic, real, fake)
            return -wasserstein + self.gp_weight * gp, (gp, wasserstein)

        variables = self.discriminator.trainable_variables
        d_loss, (gp, wasserstein), _ = self.descend(self.d_optimizer, variables, loss_fn)
        return d_loss, gp, wasserstein

    def train_step(self, batch):
        """``n_critic`` critic steps, one per slice of the batch, then one generator step."""
        real, labels = self._unpack(batch)
        size = ops.shape(real)[0] // self.n_critic
        for i in range(self.n_critic):
            part = slice(i * size, (i + 1) * size)
            d_loss, gp, wasserstein = self.discriminator_step(
                real[part], None if labels is None else labels[part]
            )
        g_loss, g_grad_norm = self.generator_step(size, labels if labels is None else labels[:size])
        return self._log(
            {
                "d_loss": d_loss,
                "g_loss": g_loss,
                "w_distance": wasserstein,
                "gp": gp,
                "g_grad_norm": g_grad_norm,
            }
        )


@keras.saving.register_keras_serializable(package="tutorial_lib")
class RegularizedGAN(GAN):
    r"""A GAN (DCGAN or conditional) with two well-known additions, each of which can be
    switched off with a weight of 0:

    * the **R1 penalty** on D (:func:`r1_penalty`): D's loss becomes
      :math:`L_D + \frac\gamma2\, \mathbb E_x \lVert \nabla_x D(x) \rVert^2` with
      :math:`\gamma` = ``r1_weight``;
    * an **exponential moving average of G's weights** (``ema_decay``), updated after
      every generator step (:func:`tutorial_lib.training.update_average`) and used by
      :func:`sample`: the average of the last few thousand generators is smoother
      than any one of them.

    A conditional model drawn without labels draws them uniformly at random: a model
    of all digits, :math:`p(x) = \frac1{10} \sum_y p_G(x \mid y)`. Logs what
    :class:`GAN` logs, plus ``r1`` (the penalty, before its weight).
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        r1_weight: float = 10.0,
        ema_decay: float = 0.999,
        **kwargs,
    ):
        super().__init__(generator, discriminator, **kwargs)
        if r1_weight < 0 or not 0.0 <= ema_decay < 1.0:
            raise ValueError(
                f"r1_weight must be >= 0 and ema_decay in [0, 1); got {r1_weight}, {ema_decay}."
            )
        self.r1_weight, self.ema_decay = float(r1_weight), float(ema_decay)
        self.ema_generator = averaged_copy(generator) if self.ema_decay > 0 else None
        self.trackers["r1"] = keras.metrics.Mean(name="r1")
        self._real_batch = None  # (real, labels) of the discriminator step being traced

    def get_config(self):
        return {**super().get_config(), "r1_weight": self.r1_weight, "ema_decay": self.ema_decay}

    def discriminator_step(self, real, labels):
        """:meth:`GAN.discriminator_step`, with the R1 penalty in D's loss."""
        self._real_batch = (real, labels)
        return super().discriminator_step(real, labels)

    def compute_d_loss(self, real_logits, fake_logits):
        """:func:`discriminator_loss` plus :math:`\\frac\\gamma2` times :func:`r1_penalty`."""
        loss = super().compute_d_loss(real_logits, fake_logits)
        real, labels = self._real_batch
        penalty = r1_penalty(lambda images: self._discriminate(images, labels), real)
        self.trackers["r1"].update_state(penalty)
        return loss + 0.5 * self.r1_weight * penalty

    def generator_step(self, batch_size, labels):
        """:meth:`GAN.generator_step`, then the weight average moves towards G."""
        result = super().generator_step(batch_size, labels)
        if self.ema_generator is not None:
            update_average(
                self.ema_generator, self.generator, self.ema_decay, self.g_optimizer.iterations
            )
        return result

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator :func:`sample` draws from: the averaged one, if there is one."""
        return self.generator if self.ema_generator is None else self.ema_generator

    def default_labels(self, num: int, seed: int = 0) -> np.ndarray:
        """Classes drawn from :math:`p(y) = 1/10` with ``seed`` (a stream apart from z's):
        what the recipe is measured with."""
        return np.random.default_rng([seed, 1]).integers(0, NUM_CLASSES, num)


def build_model(
    config: GANConfig | None = None,
    *,
    seed: int | None = None,
    generator_loss: str = "non_saturating",
    g_steps: int = 1,
) -> GAN:
    """The compiled GAN of ``config.kind``: ``"gan"`` (DCGAN), ``"wgan_gp"`` or
    ``"cgan"`` (conditional DCGAN); a :class:`RegularizedGAN` for a
    :class:`RegularizedGANConfig`.

    Build it under ``setup.strategy.scope()``. ``generator_loss`` and ``g_steps`` go to
    :class:`GAN` (notebook 03's failure modes change the learning rates of a trained GAN
    with :func:`tutorial_lib.lessons.gan_failure_modes.rewrap`).
    (``seed`` is unused: the weights are drawn from the global seed.)
    """
    config = config or GANConfig()
    if config.kind not in MODELS:
        raise ValueError(f"Unknown GAN {config.kind!r}; choose one of {MODELS}.")
    conditional = config.kind == "cgan"
    generator = build_generator(config, conditional)
    if config.kind == "wgan_gp":
        model = WGANGP(
            generator,
            build_discriminator(config, name="critic"),
            n_critic=config.n_critic,
            gp_weight=config.gp_weight,
            name=config.kind,
        )
    elif isinstance(config, RegularizedGANConfig):
        model = RegularizedGAN(
            generator,
            build_discriminator(config, conditional),
            r1_weight=config.r1_weight,
            ema_decay=config.ema_decay,
            generator_loss=generator_loss,
            g_steps=g_steps,
            name=config.kind,
        )
    else:
        model = GAN(
            generator,
            build_discriminator(config, conditional),
            generator_loss=generator_loss,
            g_steps=g_steps,
            name=config.kind,
        )
    model.compile(
        d_optimizer=make_optimizer(config.learning_rate, config.beta_1, config.beta_2),
        g_optimizer=make_optimizer(config.learning_rate, config.beta_1, config.beta_2),
        steps_per_execution=steps_per_call(config.steps_per_execution),
    )
    return model


def fit_model(
    model: GAN,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    config: GANConfig,
    profile: Profile,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """Train a GAN on images ``x`` in [0, 1] (and labels ``y`` for a conditional GAN).

    Batch size and epochs come from ``config`` (``epochs`` overrides; a WGAN-GP
    step takes ``n_critic`` batches); ``steps_per_epoch`` makes short "epochs"
    over a repeated data set (to measure often), capped by the profile's
    (:func:`tutorial_lib.training.fit_for_profile`). Batches are full (the last partial
    one is dropped). With ``run_dir`` the run resumes after an interruption
    (:func:`tutorial_lib.training.fit_resumable`).
    """
    if model.conditional and y is None:
        raise ValueError("A conditional GAN needs the labels: fit_model(model, x, y, ...).")
    # WGAN-GP takes the real images of its n_critic critic steps in one batch.
    batch_size = config.batch_size * getattr(model, "n_critic", 1)
    if len(x) < batch_size:
        raise ValueError(f"Need at least one full batch of {batch_size} images; got {len(x)}.")
    dataset = data.image_dataset(
        x,
        y if model.conditional else None,
        batch_size=batch_size,
        seed=seed,
        targets="labels" if model.conditional else "none",
        drop_remainder=True,
        repeat=steps_per_epoch is not None or profile.steps_per_epoch is not None,
    )
    return fit_for_profile(
        model,
        dataset,
        profile=profile,
        epochs=epochs or config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        run_dir=run_dir,
    )


# --------------------------------------------------------------------------
# Sampling and measuring
# --------------------------------------------------------------------------


def latent_vectors(num: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """``num`` standard normal vectors, the same for the same seed."""
    return np.random.default_rng(seed).standard_normal((num, latent_dim)).astype(np.float32)


def _check_labels(labels, num: int) -> np.ndarray:
    labels = np.broadcast_to(np.asarray(labels), (num,)) if np.ndim(labels) == 0 else labels
    labels = np.asarray(labels)
    if labels.shape != (num,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {num} integers (or one); got {labels!r:.80}.")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(
            f"Labels must be class indices 0..{NUM_CLASSES - 1}; got {labels.min()}..{labels.max()}."
        )
    return labels.astype(np.int32).reshape(-1, 1)


def sample(
    model, num: int | None = None, *, seed: int = 0, labels=None, z=None, batch_size: int = 500
) -> np.ndarray:
    """Images in [0, 1], float32 of shape (num, 28, 28, 1), from a GAN or its generator.

    ``z`` (num, latent_dim) gives the noise; otherwise it is drawn with
    ``seed``. A conditional generator needs ``labels`` (one int for all, or
    one per image); without them it cycles through the classes 0, 1, ..., 9
    (a :class:`RegularizedGAN` draws them uniformly at random with ``seed``).
    A :class:`RegularizedGAN` samples from its averaged generator.
    """
    generator = model.sampling_generator if isinstance(model, GAN) else model  # or a generator
    conditional = len(generator.inputs) == 2
    latent_dim = int(generator.inputs[0].shape[-1])
    if z is None:
        if num is None:
            raise ValueError("Give num (how many images) or z (the noise vectors).")
        z = latent_vectors(num, latent_dim, seed)
    z = np.asarray(z, dtype=np.float32)
    num = len(z)
    if conditional and labels is None:
        labels = model.default_labels(num, seed) if isinstance(model, GAN) else None
        labels = np.arange(num) % NUM_CLASSES if labels is None else labels
    if conditional:
        labels = _check_labels(labels, num)
    elif labels is not None:
        raise ValueError(
            "This generator is unconditional: it takes no labels. Train a conditional GAN "
            "(build_model('cgan')) to choose the class."
        )
    images = []
    for start in range(0, num, batch_size):
        chunk = z[start : start + batch_size]
        inputs = [chunk, labels[start : start + batch_size]] if conditional else chunk
        images.append(ops.convert_to_numpy(to_unit_range(generator(inputs, training=False))))
    return np.concatenate(images).astype(np.float32)


def interpolate(generator, z_start, z_end, steps: int = 10, label=None) -> np.ndarray:
    """Images along the straight line from ``z_start`` to ``z_end`` (with a fixed label)."""
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    z = (1.0 - weights) * np.asarray(z_start)[None] + weights * np.asarray(z_end)[None]
    return sample(generator, z=z, labels=label)


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(
    config: GANConfig,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Trained:
    """Load ``config.train_examples`` training images (and labels), build the GAN of
    ``config.kind``, train it. Returns the model, its per-epoch logs and how many real
    images its discriminator (critic) steps saw."""
    x_train, y_train = data.load_images(dataset, "train", limit=config.train_examples)
    model = build_model(config, seed=seed)
    history = fit_model(
        model,
        x_train,
        y_train,
        config=config,
        profile=profile,
        seed=seed,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    return Trained(model, history.history, int(model.d_optimizer.iterations) * config.batch_size)


def evaluate(model: GAN, config: GANConfig, *, dataset: str, profile: Profile) -> dict:
    """Nothing of its own: a GAN defines no likelihood (its samples are scored by the
    life cycle, :func:`tutorial_lib.runs.evaluate`)."""
    return {}
