r"""PixelCNN: an autoregressive model of binary images, with an exact likelihood.

An image is a sequence of 784 pixels in raster order (row by row, left to right),
and the chain rule of probability writes its probability *exactly* as a product
of one-pixel conditionals,

.. math::

    p(x) = \prod_{i=1}^{784} p(x_i \mid x_1, \ldots, x_{i-1}),
    \qquad p(x_i = 1 \mid x_{<i}) = \operatorname{sigmoid}(\ell_i(x_{<i})),

so :math:`-\log p(x) = \sum_i \mathrm{BCE}(x_i, \ell_i)`: a **sum over the pixels**
of binary cross-entropies, in nats per image, with no bound and no sampling.

One network computes all 784 logits in one pass (van den Oord et al., 2016): its
convolutions are **masked** so that the output at a pixel sees only the pixels
before it. The first layer (mask **A**) hides the centre pixel itself; every
later layer (mask **B**) may use its centre, which by then holds features of
earlier pixels only. Training is one pass per image; sampling is not: pixel
:math:`i` needs the pixels before it, so it takes 784 passes, one per pixel.

Here the image is padded with zeros once (above and on both sides) and every
masked layer is a "valid" convolution over the kernel's upper rows, so the
logit of a pixel depends on a window of ``(reach + 1) x (2 reach + 1)`` pixels
above and around it (:attr:`PixelCNN.reach`). Sampling runs the network on that
window only, which gives exactly the full pass's logit at a fraction of its cost.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import backend, data
from tutorial_lib.data import IMAGE_SHAPE
from tutorial_lib.gradients import GradientStepModel
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Trained, examples_seen, fit_for_profile
from tutorial_lib.vae import bernoulli_log_likelihood

MASK_TYPES = ("A", "B")


@dataclasses.dataclass(frozen=True)
class PixelCNNConfig:
    """Sizes and training settings of a PixelCNN.

    Attributes:
        filters: channels of every masked convolution.
        first_kernel: kernel size of the first layer (mask A), odd.
        layers: masked 3x3 layers (mask B) after it.
        head_units: channels of the 1x1 layer before the logit.
        binarization: the data model, ``"stochastic"`` (each pixel 1 with probability
            its grey value, drawn afresh for every batch) or ``"threshold"``
            (:func:`tutorial_lib.data.load_images`).
        learning_rate: Adam's step size.
        epochs: passes over the training images.
        train_examples: how many training images (``None``: all 60,000).
        batch_size: images per gradient step.
    """

    filters: int = 32
    first_kernel: int = 7
    layers: int = 5
    head_units: int = 32
    binarization: str = "stochastic"
    learning_rate: float = 2e-3
    epochs: int = 2
    train_examples: int | None = None
    batch_size: int = 128


# cpu: 940 steps, about four minutes on 2 cores (a logit sees 8 rows up: 3 for the 7x7
# mask A, 1 for each mask-B layer); 1,000 samples take about 15 seconds.
CONFIGS = {
    "pixelcnn": {
        "fast": PixelCNNConfig(
            filters=8, first_kernel=5, layers=1, head_units=8, epochs=2, train_examples=256
        ),
        "cpu": PixelCNNConfig(),
        "gpu": PixelCNNConfig(filters=64, layers=7, head_units=128, epochs=20),
    },
}


# --------------------------------------------------------------------------
# Masked convolutions
# --------------------------------------------------------------------------


def causal_mask(kernel_size: int, mask_type: str) -> np.ndarray:
    """The (k, k) mask of a masked convolution: 1 on every row above the centre and left
    of the centre in its row; the centre itself only for mask ``"B"``; 0 below."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"Unknown mask type {mask_type!r}; choose 'A' or 'B'.")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"A masked convolution needs an odd kernel size; got {kernel_size}.")
    centre = kernel_size // 2
    mask = np.zeros((kernel_size, kernel_size), np.float32)
    mask[:centre] = 1.0
    mask[centre, :centre] = 1.0
    mask[centre, centre] = 1.0 if mask_type == "B" else 0.0
    return mask


@keras.saving.register_keras_serializable(package="tutorial_lib")
class MaskedConv2D(keras.layers.Layer):
    """A convolution whose kernel is multiplied by :func:`causal_mask`.

    The rows of the mask below the centre are all zero, so the layer only
    convolves with the upper ``k // 2 + 1`` rows, as a "valid" convolution: an
    input of shape (H, W) gives an output of (H - k // 2, W - 2 (k // 2)), whose
    position (i, j) sits at input position (i + k // 2, j + k // 2). The network
    pads the image once (:class:`PixelCNN`), not every layer.
    """

    def __init__(self, filters: int, kernel_size: int, mask_type: str, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.mask_type = filters, kernel_size, mask_type
        self.mask = causal_mask(kernel_size, mask_type)
        self.reach = kernel_size // 2

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(
            shape=(k, k, input_shape[-1], self.filters),
            initializer="glorot_uniform",
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, x):
        masked = self.kernel * self.mask[:, :, None, None]
        upper = ops.cast(masked[: self.reach + 1], x.dtype)  # the rows the mask keeps
        return ops.conv(x, upper, padding="valid") + ops.cast(self.bias, x.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "mask_type": self.mask_type,
        }


def build_network(config: PixelCNNConfig) -> keras.Model:
    """Padded binary images of any size -> one logit per position (float32): a mask-A
    convolution, ``config.layers`` mask-B 3x3 convolutions (ReLU after each), a 1x1
    layer and the 1x1 logit."""
    inputs = keras.Input((None, None, 1), name="padded_image")
    h = MaskedConv2D(config.filters, config.first_kernel, "A", name="masked_A")(inputs)
    h = keras.layers.Activation("relu")(h)
    for index in range(config.layers):
        h = MaskedConv2D(config.filters, 3, "B", name=f"masked_B{index + 1}")(h)
        h = keras.layers.Activation("relu")(h)
    h = keras.layers.Conv2D(config.head_units, 1, activation="relu", name="head")(h)
    logits = keras.layers.Conv2D(1, 1, dtype="float32", name="logit")(h)
    return keras.Model(inputs, logits, name="pixelcnn_network")


def network_reach(network: keras.Model) -> int:
    """How many rows above (and columns on each side of) a pixel its logit can see."""
    return sum(layer.reach for layer in network.layers if isinstance(layer, MaskedConv2D))


@keras.saving.register_keras_serializable(package="tutorial_lib")
class PixelCNN(GradientStepModel):
    """The masked network on zero-padded images, trained on the exact negative
    log-likelihood, which ``fit`` logs as ``loss`` in nats per image."""

    def __init__(self, network: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.reach = network_reach(network)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def pad(self, x):
        """Zeros above and on both sides: ``reach`` rows and columns."""
        r = self.reach
        return ops.pad(ops.cast(x, "float32"), [[0, 0], [r, 0], [r, r], [0, 0]])

    def call(self, x, training=False):
        """The logit of :math:`p(x_i = 1 \\mid x_{<i})` at every pixel, (N, H, W, 1)."""
        return self.network(self.pad(x), training=training)

    def nll_per_image(self, x, training=False):
        """:math:`-\\log p(x)` of each binary image, nats, shape (N,): the sum over pixels
        of the binary cross-entropies."""
        return -bernoulli_log_likelihood(ops.cast(x, "float32"), self(x, training=training))

    def train_step(self, batch):
        x = batch[0] if isinstance(batch, tuple | list) else batch

        def loss_fn():
            return ops.mean(self.nll_per_image(x, training=True)), ()

        loss, _, _ = self.descend(self.optimizer, self.trainable_weights, loss_fn)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, batch):
        x = batch[0] if isinstance(batch, tuple | list) else batch
        self.loss_tracker.update_state(ops.mean(self.nll_per_image(x)))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
        }

    @classmethod
    def from_config(cls, config):
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def build_model(config: PixelCNNConfig | None = None, *, seed: int | None = None) -> PixelCNN:
    """A compiled PixelCNN (Adam) for 28x28 binary images, built so it can be saved at once.
    (``seed`` is unused: the weights are drawn from the global seed.)"""
    config = config or PixelCNNConfig()
    model = PixelCNN(build_network(config))
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    model(np.zeros((1, *IMAGE_SHAPE), np.float32))  # build the weights
    return model


# --------------------------------------------------------------------------
# Likelihood and sampling
# --------------------------------------------------------------------------


def negative_log_likelihood(model: PixelCNN, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The exact :math:`-\\log p(x)` of each binary image, nats, float64 (N,)."""
    values = [
        ops.convert_to_numpy(model.nll_per_image(x[start : start + batch_size]))
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(values).astype(np.float64)


def pixel_probabilities(model: PixelCNN, x: np.ndarray) -> np.ndarray:
    """:math:`p(x_i = 1 \\mid x_{<i})` at every pixel of binary images ``x``, (N, 28, 28, 1):
    what the model expected each pixel to be, given the pixels before it."""
    from scipy.special import expit

    return expit(ops.convert_to_numpy(model(np.asarray(x, np.float32)))).astype(np.float32)


def _sampler(model: PixelCNN):
    """A compiled loop that draws pixels ``start``, ``start + 1``, ..., 783 in raster
    order, each from the network run on that pixel's window of the canvas."""
    import tensorflow as tf

    if getattr(model, "_sampling_loop", None) is not None:
        return model._sampling_loop
    reach, network = model.reach, model.network
    height, width = IMAGE_SHAPE[0], IMAGE_SHAPE[1]

    @tf.function(reduce_retracing=True)
    def loop(canvas, uniforms, start):
        n = tf.shape(canvas)[0]
        batch = tf.range(n)
        zeros = tf.zeros_like(batch)

        def draw(i, canvas):
            row, col = i // width, i % width
            window = tf.slice(canvas, [0, row, col, 0], [n, reach + 1, 2 * reach + 1, 1])
            logit = network(window)[:, 0, 0, 0]
            pixel = tf.cast(uniforms[:, i] < tf.sigmoid(logit), canvas.dtype)
            where = tf.stack([batch, zeros + row + reach, zeros + col + reach, zeros], axis=1)
            return i + 1, tf.tensor_scatter_nd_update(canvas, where, pixel)

        _, canvas = tf.while_loop(lambda i, _: i < height * width, draw, [start, canvas])
        return canvas

    model._sampling_loop = loop
    return loop


def complete(model: PixelCNN, images: np.ndarray, rows: int, *, seed: int = 0) -> np.ndarray:
    """Keep the first ``rows`` rows of each binary image and draw the rest, pixel by
    pixel: (N, 28, 28, 1) in {0, 1}, float32. ``rows = 0`` draws whole images."""
    images = np.asarray(images, np.float32)
    height, width = IMAGE_SHAPE[0], IMAGE_SHAPE[1]
    if not 0 <= rows <= height:
        raise ValueError(f"rows must lie in [0, {height}]; got {rows}.")
    r = model.reach
    canvas = np.zeros((len(images), height + r, width + 2 * r, 1), np.float32)
    canvas[:, r : r + rows, r : r + width] = images[:, :rows]  # the rest: drawn below
    uniforms = np.random.default_rng(seed).random((len(images), height * width), np.float32)
    if keras.backend.backend() != "tensorflow":
        return _draw_pixels(model, canvas, uniforms, rows * width)[:, r:, r : r + width]
    import tensorflow as tf

    out = _sampler(model)(
        tf.constant(canvas), tf.constant(uniforms), tf.constant(rows * width, tf.int32)
    )
    return np.asarray(out)[:, r:, r : r + width]


def _draw_pixels(model: PixelCNN, canvas: np.ndarray, uniforms: np.ndarray, start: int):
    r"""The loop of :func:`_sampler` in plain Python (JAX and PyTorch): pixel ``i`` is 1
    where its uniform number lies below the network's :math:`p(x_i = 1 \mid x_{<i})`."""
    from scipy.special import expit

    if getattr(model, "_pixel_network", None) is None:
        model._pixel_network = backend.compiled(model.network, model.network)
    reach, width = model.reach, IMAGE_SHAPE[1]
    for i in range(start, IMAGE_SHAPE[0] * width):
        row, col = divmod(i, width)
        window = canvas[:, row : row + reach + 1, col : col + 2 * reach + 1]
        logit = ops.convert_to_numpy(model._pixel_network(window))[:, 0, 0, 0]
        canvas[:, row + reach, col + reach, 0] = uniforms[:, i] < expit(logit)
    return canvas


def sample(model: PixelCNN, num: int, *, seed: int = 0) -> np.ndarray:
    """``num`` binary images (N, 28, 28, 1), float32 in {0, 1}, drawn pixel by pixel:
    784 passes of the network, each over its pixel's window."""
    return complete(model, np.zeros((num, *IMAGE_SHAPE), np.float32), 0, seed=seed)


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(
    config: PixelCNNConfig,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Trained:
    """Load ``config.train_examples`` training images (binarised per batch as the config
    says), build the PixelCNN and train it, with the profile's test images (binarised
    the same way, one fixed draw) as validation data."""
    threshold = config.binarization == "threshold"  # else grey: every batch is drawn afresh
    x_train, _ = data.load_images(dataset, "train", limit=config.train_examples, binarize=threshold)
    x_test, _ = data.load_images(
        dataset, "test", limit=profile.test_examples, binarize=config.binarization
    )
    model = build_model(config, seed=seed)
    train_ds = data.image_dataset(
        x_train,
        batch_size=config.batch_size,
        targets="none",
        seed=seed,
        repeat=profile.steps_per_epoch is not None,
        binarize=config.binarization,
    )
    history = fit_for_profile(
        model,
        train_ds,
        profile=profile,
        epochs=config.epochs,
        validation_data=(x_test,),
        callbacks=callbacks,
        run_dir=run_dir,
    )
    round_to_half_precision(model)
    seen = examples_seen(len(x_train), config.epochs, config.batch_size, profile)
    return Trained(model, history.history, seen)


def round_to_half_precision(model: keras.Model) -> None:
    """Round every weight to the nearest float16 value (kept as float32).

    A shipped checkpoint keeps its weights in half precision
    (:func:`tutorial_lib.checkpoints.save_model`). For most models that moves their
    figures a little; an autoregressive sampler turns the slightest change of one
    probability into another pixel, and every pixel after it into others. Rounded once
    trained, the model that is scored is the model that ships, and draws the same images.
    """
    model.set_weights(
        [np.asarray(w).astype(np.float16).astype(w.dtype) for w in model.get_weights()]
    )


def evaluate(model: PixelCNN, config: PixelCNNConfig, *, dataset: str, profile: Profile) -> dict:
    """The exact test negative log-likelihood, nats per image, on the profile's test
    images binarised as the config says."""
    x_test, _ = data.load_images(
        dataset, "test", limit=profile.test_examples, binarize=config.binarization
    )
    return {"nll": float(np.mean(negative_log_likelihood(model, x_test)))}
