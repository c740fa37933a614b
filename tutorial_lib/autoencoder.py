r"""Autoencoders: compression through a bottleneck.

An encoder :math:`f` maps an image :math:`x` to a short code :math:`z = f(x)`,
a decoder :math:`g` maps the code back to an image :math:`\hat x = g(z)`, and
both are trained to make the reconstruction close to the input:

.. math::  \mathcal{L}(x) = \frac{1}{D} \sum_{i=1}^{D} (x_i - \hat x_i)^2

(the mean squared error over the :math:`D = 784` pixels). Because :math:`z` has
far fewer numbers than :math:`x`, the network must keep what matters most.

Two variants share one interface:

* ``dense``: 784 -> 256 -> 128 -> 32 -> 128 -> 256 -> 784, as in seed 002,
  but with a *linear* bottleneck (the seed's ReLU there switches latent units
  off for good once they go negative).
* ``conv``: two strided convolutions down to 7x7, a dense bottleneck, and two
  transposed convolutions back up to 28x28.

Two uses beyond compression, shown in notebook 01:

* **Denoising**: train on corrupted inputs :math:`\tilde x = \mathrm{clip}(x +
  \sigma \epsilon)` with clean targets :math:`x` (:func:`add_noise`).
* **Anomaly detection**: an image unlike the training data is reconstructed
  badly, so its error :math:`e(x) = \frac{1}{D}\lVert x - g(f(x))\rVert^2`
  (:func:`reconstruction_errors`) is high; flag it above a threshold chosen on
  normal validation data (:func:`choose_threshold`).

A plain autoencoder is not a generative model: nothing shapes the code space,
so there is no distribution to sample codes from (``sample autoencoder`` says so).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from tutorial_lib import data
from tutorial_lib.data import IMAGE_SHAPE
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Trained, examples_seen, fit_for_profile

KINDS = ("dense", "conv")


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """Sizes and training settings of an autoencoder.

    Attributes:
        kind: ``"dense"`` or ``"conv"`` networks.
        latent_dim: numbers in the bottleneck code ``z``.
        hidden_units: widths of the dense encoder's hidden layers (the decoder mirrors them).
        filters: channels of the two convolutions of the conv encoder (mirrored likewise).
        train_examples: how many training images (``None``: all 60,000).
        epochs: passes over the training images.
        batch_size: images per gradient step.
        learning_rate: Adam's step size.
    """

    kind: str = "dense"
    latent_dim: int = 32
    hidden_units: tuple[int, int] = (256, 128)
    filters: tuple[int, int] = (32, 64)
    train_examples: int | None = 20_000
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3


# Sizes per profile: the fast profile shrinks the networks and the data for tests;
# the cpu and gpu networks are the same (they train in seconds either way), the gpu
# profile trains on every image for longer.
CONFIGS = {
    "autoencoder": {
        "fast": AutoencoderConfig(
            latent_dim=32,
            hidden_units=(64, 32),
            filters=(8, 16),
            train_examples=512,
            epochs=2,
            batch_size=64,
        ),
        "cpu": AutoencoderConfig(),
        "gpu": AutoencoderConfig(train_examples=None, epochs=30, batch_size=256),
    },
}


def build_dense_encoder(config: AutoencoderConfig) -> keras.Model:
    """(28, 28, 1) image -> flatten -> ReLU layers -> linear code of ``latent_dim``."""
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    h = keras.layers.Flatten()(inputs)
    for units in config.hidden_units:
        h = keras.layers.Dense(units, activation="relu")(h)
    z = keras.layers.Dense(config.latent_dim, name="code")(h)
    return keras.Model(inputs, z, name="encoder")


def build_dense_decoder(config: AutoencoderConfig) -> keras.Model:
    """Code -> ReLU layers (mirrored) -> 784 sigmoid pixels -> (28, 28, 1) image."""
    inputs = keras.Input((config.latent_dim,), name="code")
    h = inputs
    for units in reversed(config.hidden_units):
        h = keras.layers.Dense(units, activation="relu")(h)
    # Outputs stay float32 under mixed precision, so losses are computed in float32.
    h = keras.layers.Dense(int(np.prod(IMAGE_SHAPE)), activation="sigmoid", dtype="float32")(h)
    outputs = keras.layers.Reshape(IMAGE_SHAPE, dtype="float32")(h)
    return keras.Model(inputs, outputs, name="decoder")


def build_conv_encoder(config: AutoencoderConfig) -> keras.Model:
    """Image -> two stride-2 3x3 convolutions (28 -> 14 -> 7) -> linear code."""
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    h = inputs
    for filters in config.filters:
        h = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Flatten()(h)
    z = keras.layers.Dense(config.latent_dim, name="code")(h)
    return keras.Model(inputs, z, name="encoder")


def build_conv_decoder(config: AutoencoderConfig) -> keras.Model:
    """Code -> 7x7 feature map -> two stride-2 transposed convolutions (7 -> 14 -> 28)."""
    inputs = keras.Input((config.latent_dim,), name="code")
    last = config.filters[-1]
    h = keras.layers.Dense(7 * 7 * last, activation="relu")(inputs)
    h = keras.layers.Reshape((7, 7, last))(h)
    h = keras.layers.Conv2DTranspose(
        config.filters[0], 3, strides=2, padding="same", activation="relu"
    )(h)
    outputs = keras.layers.Conv2DTranspose(
        1, 3, strides=2, padding="same", activation="sigmoid", dtype="float32"
    )(h)
    return keras.Model(inputs, outputs, name="decoder")


def build_model(config: AutoencoderConfig | None = None, *, seed: int | None = None) -> keras.Model:
    """Encoder and decoder of ``config.kind`` joined into one compiled model, ``x -> g(f(x))``:
    Adam on the mean squared reconstruction error, with MAE as a second metric.

    The parts stay reachable as ``model.get_layer("encoder")`` and
    ``model.get_layer("decoder")``. (``seed`` is unused: the weights are drawn
    from the global seed, :func:`tutorial_lib.training.set_seed`.)
    """
    config = config or AutoencoderConfig()
    if config.kind not in KINDS:
        raise ValueError(f"Unknown autoencoder kind {config.kind!r}; choose one of {KINDS}.")
    if config.kind == "dense":
        encoder, decoder = build_dense_encoder(config), build_dense_decoder(config)
    else:
        encoder, decoder = build_conv_encoder(config), build_conv_decoder(config)
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    model = keras.Model(inputs, decoder(encoder(inputs)), name=f"{config.kind}_autoencoder")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="mse",
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
    )
    return model


def fit_model(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    config: AutoencoderConfig,
    profile: Profile,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """Train ``model`` to map ``inputs`` to ``targets`` (default: the inputs themselves).

    Epochs and batch size come from ``config``, the cap on steps per epoch from
    ``profile``. Pass noisy inputs and clean targets for a denoising
    autoencoder. With ``run_dir`` the run backs itself up every epoch and
    resumes after an interruption (:func:`tutorial_lib.training.fit_resumable`).
    """
    targets = inputs if targets is None else targets
    train_ds = data.image_dataset(
        inputs,
        targets,
        batch_size=config.batch_size,
        seed=seed,
        repeat=profile.steps_per_epoch is not None,
    )
    return fit_for_profile(
        model,
        train_ds,
        profile=profile,
        epochs=config.epochs,
        validation_data=validation,
        callbacks=callbacks,
        run_dir=run_dir,
    )


def add_noise(x: np.ndarray, noise_factor: float = 0.3, seed: int = 0) -> np.ndarray:
    r"""Corrupt images with Gaussian noise, kept in [0, 1]:
    :math:`\tilde x = \mathrm{clip}(x + \sigma \epsilon, 0, 1)`, :math:`\epsilon \sim N(0, I)`.

    Args:
        x: images in [0, 1] (not modified).
        noise_factor: the noise standard deviation :math:`\sigma`.
        seed: seed of the noise, so the same call gives the same images.
    """
    rng = np.random.default_rng(seed)
    noisy = x + noise_factor * rng.standard_normal(x.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def reconstruction_errors(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    r"""Mean squared error of each image's reconstruction, shape (N,):
    :math:`e(x) = \frac{1}{D} \sum_i (x_i - \hat x_i)^2`."""
    reconstructions = model.predict(x, batch_size=batch_size, verbose=0)
    return np.mean(np.square(x - reconstructions), axis=tuple(range(1, x.ndim)))


def choose_threshold(normal_errors: np.ndarray, false_alarm_rate: float = 0.05) -> float:
    r"""The error above which an image is flagged, chosen on normal validation data.

    The :math:`(1 - r)` quantile of the normal errors flags a fraction :math:`r`
    (the false-alarm rate) of normal images.
    """
    return float(np.quantile(normal_errors, 1.0 - false_alarm_rate))


def anomaly_auc(normal_errors: np.ndarray, anomaly_errors: np.ndarray) -> float:
    """ROC-AUC of the reconstruction error as an anomaly score (1.0 separates
    perfectly, 0.5 is chance): the probability that a random anomaly has a
    higher error than a random normal image."""
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([normal_errors, anomaly_errors])
    labels = np.concatenate([np.zeros(len(normal_errors)), np.ones(len(anomaly_errors))])
    return float(roc_auc_score(labels, scores))


def encode(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The code of each image in [0, 1]: the encoder's output, :math:`z = f(x)`."""
    return model.get_layer("encoder").predict(np.asarray(images, np.float32), verbose=0)


def decode(model: keras.Model, codes: np.ndarray) -> np.ndarray:
    """Images :math:`g(z)` for codes ``z``, clipped to [0, 1]."""
    images = model.get_layer("decoder").predict(np.asarray(codes, np.float32), verbose=0)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def decode_random_codes(decoder: keras.Model, codes: np.ndarray, num: int, seed: int = 0):
    """Decode ``num`` codes drawn from a Gaussian with the per-dimension mean
    and standard deviation of ``codes`` (the codes of real images).

    This is the best a plain autoencoder can do at "generating", and the
    results show why it is not a generative model.
    """
    rng = np.random.default_rng(seed)
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    z = (mean + std * rng.standard_normal((num, codes.shape[1]))).astype(np.float32)
    return np.clip(decoder.predict(z, verbose=0), 0.0, 1.0)


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(
    config: AutoencoderConfig,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Trained:
    """Load ``config.train_examples`` training images, build the autoencoder, train it,
    with the profile's test images as validation data (``val_loss``, to watch for
    overfitting). Returns a :class:`~tutorial_lib.training.Trained`."""
    x_train, _ = data.load_images(dataset, "train", limit=config.train_examples)
    x_test, _ = data.load_images(dataset, "test", limit=profile.test_examples)
    model = build_model(config)
    history = fit_model(
        model,
        x_train,
        config=config,
        profile=profile,
        validation=(x_test, x_test),
        seed=seed,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    seen = examples_seen(len(x_train), config.epochs, config.batch_size, profile)
    return Trained(model, history.history, seen)


def sample(model, num: int, *, seed: int = 0, **options) -> np.ndarray:
    """Refuse, with the reason: a plain autoencoder defines no distribution to sample."""
    raise NotImplementedError(
        "sampling is not defined for a plain autoencoder: its training never shapes the code "
        "space into a distribution, so there is nothing to draw codes from (random codes decode "
        "to smudges; notebook 01 shows it). Train a generative model instead, such as the VAE "
        "of notebook 02."
    )


def evaluate(model, config: AutoencoderConfig, *, dataset: str, profile: Profile) -> dict:
    """The test reconstruction error (MSE per pixel) on the profile's test images."""
    x_test, _ = data.load_images(dataset, "test", limit=profile.test_examples)
    test_mse, _ = model.evaluate(x_test, x_test, batch_size=256, verbose=0)
    return {"test_mse": float(test_mse)}


def preview(model, config: AutoencoderConfig, *, dataset: str, profile: Profile, seed: int = 0):
    """32 test images and their reconstructions, row by row, for the run folder's picture."""
    originals, _ = data.load_images(dataset, "test", limit=32)
    reconstructions = model.predict(originals, verbose=0)
    pairs = np.concatenate(
        [originals.reshape(4, 8, 28, 28, 1), reconstructions.reshape(4, 8, 28, 28, 1)], axis=1
    )
    title = f"{config.kind} autoencoder: test images (rows 1, 3, ...) and reconstructions"
    return pairs.reshape(-1, 28, 28, 1), title
