"""The seed documents' own recipes, built as they give them: the baselines to beat.

``python -m tutorial_lib bench`` trains each of this project's models and the
matching recipe below for the *same wall-clock budget* on the same machine,
and reports both. The recipes keep the seeds' choices, mistakes included,
because those are what a learner following the seeds would get:

* **seed 002's dense autoencoder**: 784-256-128-32-128-256-784 with a ReLU on
  the bottleneck, Adam, MSE, batch 256.
* **seed 000's dense VAE**: one hidden layer each way, sigmoid outputs with
  binary cross-entropy times 784 (a correct sum over pixels) plus a KL that is
  ``reduce_mean``-ed over the batch *and* the latent dimensions, which divides
  it by ``latent_dim``: in effect a beta-VAE with beta = 1 / latent_dim. The
  seed leaves ``hidden_dim``, ``latent_dim`` and the batch size unset; we use
  512, 16 and 128.
* **seed 002's dense GAN**: generator 100-128-256-784 (sigmoid), discriminator
  784-128-64-1 (sigmoid), binary cross-entropy on probabilities, two Adam
  optimizers with Keras's defaults (the seed leaves them unset), batch 128.

Every recipe trains on the same images as the model it is measured against
(``train_examples``) and returns its numbers under the keys of a run's record
(:data:`tutorial_lib.runs.RECORD_KEYS`), so the benchmark table can put them
side by side. :data:`SEED_RECIPES` is keyed by the ``seed_recipe`` of
:mod:`tutorial_lib.families`.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from tutorial_lib import data, vae
from tutorial_lib.profiles import Profile


class TimeBudget(keras.callbacks.Callback):
    """Stop ``fit`` once ``seconds`` of training have passed (checked after each batch)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.examples_seen = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _fit_for_seconds(model, x, y, *, seconds: float, batch_size: int) -> dict:
    """Train in passes over ``x`` until the budget is spent; return seconds and images/s."""
    budget = TimeBudget(seconds)
    steps = 0

    class CountSteps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            nonlocal steps
            steps += 1

    model.fit(
        x, y, epochs=10_000, batch_size=batch_size, verbose=0, callbacks=[budget, CountSteps()]
    )
    return {
        "train_seconds": round(budget.elapsed, 2),
        "train_images_per_second": round(steps * batch_size / budget.elapsed, 1),
    }


# --------------------------------------------------------------------------
# Seed 002: dense autoencoder
# --------------------------------------------------------------------------


def seed002_autoencoder() -> keras.Model:
    """Seed 002's autoencoder, layer for layer (ReLU bottleneck included)."""
    encoder = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
        ],
        name="encoder",
    )
    decoder = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(784, activation="sigmoid"),
        ],
        name="decoder",
    )
    model = keras.Sequential([encoder, decoder], name="seed002_autoencoder")
    model.compile(optimizer="adam", loss="mse")
    return model


def train_seed002_autoencoder(
    dataset: str, profile: Profile, seconds: float, train_examples: int | None
) -> dict:
    """Train seed 002's autoencoder for ``seconds``; report the test MSE."""
    x_train, _ = data.load_images(dataset, "train", limit=train_examples)
    x_test, _ = data.load_images(dataset, "test", limit=profile.test_examples)
    x_train, x_test = x_train.reshape(-1, 784), x_test.reshape(-1, 784)
    model = seed002_autoencoder()
    result = _fit_for_seconds(model, x_train, x_train, seconds=seconds, batch_size=256)
    result["test_mse"] = float(model.evaluate(x_test, x_test, verbose=0))
    return result


# --------------------------------------------------------------------------
# Seed 000: dense VAE
# --------------------------------------------------------------------------


def seed000_vae(latent_dim: int = 16, hidden_dim: int = 512) -> vae.VAE:
    """Seed 000's VAE: one hidden layer each way, and its KL averaged over the latent
    dimensions, i.e. weighted by beta = 1 / latent_dim."""
    config = vae.VAEConfig(
        kind="dense",
        latent_dim=latent_dim,
        hidden_units=(hidden_dim,),
        beta=1.0 / latent_dim,
        learning_rate=1e-3,
    )
    return vae.build_model(config, seed=0)


def train_seed000_vae(
    dataset: str, profile: Profile, seconds: float, train_examples: int | None
) -> dict:
    """Train seed 000's VAE for ``seconds`` on binarised images; report the honest
    (beta = 1) test negative ELBO and its prior samples."""
    x_train, _ = data.load_images(dataset, "train", binarize=True, limit=train_examples)
    x_test, _ = data.load_images(dataset, "test", limit=profile.test_examples, binarize=True)
    model = seed000_vae()
    result = _fit_for_seconds(model, x_train, None, seconds=seconds, batch_size=128)
    result["nll"] = vae.negative_elbo(model, x_test)["negative_elbo"]
    start = time.perf_counter()
    result["samples"] = vae.sample(model, profile.eval_samples, seed=0)
    result["sample_seconds_per_item"] = (time.perf_counter() - start) / profile.eval_samples
    return result


# --------------------------------------------------------------------------
# Seed 002: dense GAN
# --------------------------------------------------------------------------


def seed002_gan() -> tuple[keras.Model, keras.Model]:
    """Seed 002's dense generator and discriminator."""
    generator = keras.Sequential(
        [
            keras.Input((100,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(784, activation="sigmoid"),
        ],
        name="seed002_generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name="seed002_discriminator",
    )
    return generator, discriminator


def train_seed002_gan(
    dataset: str, profile: Profile, seconds: float, train_examples: int | None, seed: int = 0
) -> dict:
    """Seed 002's GAN training step, repeated for ``seconds``; returns its samples."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    x_train, _ = data.load_images(dataset, "train", limit=train_examples)
    x_train = x_train.reshape(-1, 784)
    generator, discriminator = seed002_gan()
    g_opt, d_opt = keras.optimizers.Adam(), keras.optimizers.Adam()
    bce = keras.losses.BinaryCrossentropy()
    batch_size = 128

    @tf.function
    def train_step(real_images):
        noise = tf.random.normal([batch_size, 100])
        with tf.GradientTape() as d_tape:
            real_output = discriminator(real_images, training=True)
            fake_output = discriminator(generator(noise, training=True), training=True)
            d_loss = bce(tf.ones_like(real_output), real_output) + bce(
                tf.zeros_like(fake_output), fake_output
            )
        with tf.GradientTape() as g_tape:
            output = discriminator(generator(tf.random.normal([batch_size, 100]), training=True))
            g_loss = bce(tf.ones_like(output), output)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_opt.apply(d_grads, discriminator.trainable_variables)
        g_opt.apply(g_grads, generator.trainable_variables)

    batches = data.image_dataset(
        x_train, batch_size=batch_size, targets="none", seed=seed, drop_remainder=True, repeat=True
    )
    steps, start = 0, time.perf_counter()
    for real in batches:
        train_step(real)
        steps += 1
        if time.perf_counter() - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    noise = np.random.default_rng(seed).standard_normal((profile.eval_samples, 100))
    samples = generator.predict(noise.astype(np.float32), verbose=0, batch_size=500)
    sample_seconds = (time.perf_counter() - start) / profile.eval_samples
    return {
        "train_seconds": round(elapsed, 2),
        "train_images_per_second": round(steps * batch_size / elapsed, 1),
        "samples": samples.reshape(-1, 28, 28, 1).astype(np.float32),
        "sample_seconds_per_item": sample_seconds,
    }


# Recipe key (a family's `seed_recipe`) -> the recipe's label and its training function.
SEED_RECIPES = {
    "seed002_autoencoder": ("seed 002 dense autoencoder", train_seed002_autoencoder),
    "seed000_vae": ("seed 000 dense VAE", train_seed000_vae),
    "seed002_gan": ("seed 002 dense GAN", train_seed002_gan),
}
