"""Autoencoders: compression through a bottleneck.

An encoder :math:`f` maps an image :math:`x` to a short code :math:`z = f(x)`,
a decoder :math:`g` maps the code back to an image :math:`\\hat x = g(z)`, and
both are trained to make the reconstruction close to the input:

.. math::  \\mathcal{L}(x) = \\frac{1}{D} \\sum_{i=1}^{D} (x_i - \\hat x_i)^2

(the mean squared error over the :math:`D = 784` pixels). Because :math:`z` has
far fewer numbers than :math:`x`, the network must keep what matters most.

Two variants share one interface:

* ``dense``: 784 -> 256 -> 128 -> 32 -> 128 -> 256 -> 784, as in seed 002,
  but with a *linear* bottleneck (the seed's ReLU there switches latent units
  off for good once they go negative).
* ``conv``: two strided convolutions down to 7x7, a dense bottleneck, and two
  transposed convolutions back up to 28x28.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np

from tutorial_lib import data, device
from tutorial_lib.profiles import Profile
from tutorial_lib.training import (
    Timer,
    fit_resumable,
    load_run_model,
    progress_verbosity,
    save_run,
    set_seed,
)

KINDS = ("dense", "conv")
IMAGE_SHAPE = (28, 28, 1)


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """Sizes of an autoencoder.

    Attributes:
        latent_dim: numbers in the bottleneck code ``z``.
        hidden_units: widths of the dense encoder's hidden layers (the decoder mirrors them).
        filters: channels of the two convolutions of the conv encoder (mirrored likewise).
    """

    latent_dim: int = 32
    hidden_units: tuple[int, int] = (256, 128)
    filters: tuple[int, int] = (32, 64)


# Sizes per profile: the fast profile shrinks the networks for tests.
CONFIGS = {
    "fast": AutoencoderConfig(latent_dim=32, hidden_units=(64, 32), filters=(8, 16)),
    "cpu": AutoencoderConfig(),
    "gpu": AutoencoderConfig(),
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


def build_autoencoder(kind: str = "dense", config: AutoencoderConfig | None = None) -> keras.Model:
    """Encoder and decoder joined into one model, ``x -> g(f(x))``.

    The parts stay reachable as ``model.get_layer("encoder")`` and
    ``model.get_layer("decoder")``.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown autoencoder kind {kind!r}; choose one of {KINDS}.")
    config = config or AutoencoderConfig()
    if kind == "dense":
        encoder, decoder = build_dense_encoder(config), build_dense_decoder(config)
    else:
        encoder, decoder = build_conv_encoder(config), build_conv_decoder(config)
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    outputs = decoder(encoder(inputs))
    return keras.Model(inputs, outputs, name=f"{kind}_autoencoder")


def compile_autoencoder(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Adam on the mean squared reconstruction error, with MAE as a second metric."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="mse",
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
    )
    return model


def latent_statistics(encoder: keras.Model, x: np.ndarray, batch_size: int = 256) -> dict:
    """Mean and standard deviation of each code dimension over the images ``x``."""
    codes = encoder.predict(x, batch_size=batch_size, verbose=0)
    return {"mean": codes.mean(axis=0).tolist(), "std": codes.std(axis=0).tolist()}


def decode_random_codes(decoder: keras.Model, stats: dict, num: int, seed: int = 0) -> np.ndarray:
    """Decode codes drawn from a Gaussian fitted to the training codes.

    This is the best a plain autoencoder can do at "generating": its code space
    was never asked to be filled, so many of these decode to blurry non-digits
    -- the motivation for the VAE.
    """
    rng = np.random.default_rng(seed)
    mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
    z = (mean + std * rng.standard_normal((num, len(mean)))).astype(np.float32)
    images = decoder.predict(z, verbose=0)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------
# Command line: `python -m tutorial_lib train|sample autoencoder`
# --------------------------------------------------------------------------

LATENT_STATS_FILE = "latent_stats.json"


def add_cli_arguments(command: str, parser) -> None:
    """Options of ``train autoencoder`` beyond the common ones."""
    if command == "train":
        parser.add_argument("--kind", choices=KINDS, default="dense", help="network type")


def train_run(
    name: str,
    *,
    dataset: str,
    profile: Profile,
    out_dir: Path,
    seed: int = 0,
    kind: str = "dense",
) -> dict:
    """Train an autoencoder under ``profile`` and write a run folder to ``out_dir``."""
    setup = device.setup(profile)
    set_seed(seed)
    x_train, _ = data.load_images(dataset, "train", limit=profile.train_examples)
    x_test, _ = data.load_images(dataset, "test", limit=profile.test_examples)
    with setup.strategy.scope():
        model = compile_autoencoder(build_autoencoder(kind, CONFIGS[profile.name]))
    train_ds = data.image_dataset(
        x_train,
        batch_size=profile.batch_size,
        targets="inputs",
        seed=seed,
        repeat=profile.steps_per_epoch is not None,
    )
    with Timer() as timer:
        history = fit_resumable(
            model,
            train_ds,
            run_dir=out_dir,
            epochs=profile.epochs,
            steps_per_epoch=profile.steps_per_epoch,
            verbose=progress_verbosity(profile),
        )
    test_mse, test_mae = model.evaluate(x_test, x_test, batch_size=256, verbose=0)
    stats = latent_statistics(model.get_layer("encoder"), x_train)
    Path(out_dir, LATENT_STATS_FILE).write_text(json.dumps(stats))
    samples = decode_random_codes(model.get_layer("decoder"), stats, num=64, seed=seed)
    metrics = {
        "model": name,
        "kind": kind,
        "dataset": dataset,
        "profile": profile.name,
        "epochs": profile.epochs,
        "train_seconds": round(timer.seconds, 2),
        "parameters": model.count_params(),
        "final_train_loss": history.history["loss"][-1],
        "test_mse": float(test_mse),
        "test_mae": float(test_mae),
    }
    save_run(out_dir, model, metrics, samples, title=f"{kind} autoencoder: decoded random codes")
    return metrics


def sample_run(name: str, *, run_dir: Path, num: int, seed: int = 0) -> np.ndarray:
    """Decode ``num`` random codes with the decoder of a trained run."""
    model = load_run_model(run_dir)
    stats = json.loads(Path(run_dir, LATENT_STATS_FILE).read_text())
    return decode_random_codes(model.get_layer("decoder"), stats, num=num, seed=seed)
