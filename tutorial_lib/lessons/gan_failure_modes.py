"""Notebook 03's experiments (GANs): what goes wrong, measured.

Not part of the GAN family itself (:mod:`tutorial_lib.gan`): these are the
lesson's demonstrations of two failure modes.

* **Mode collapse**: continue a trained DCGAN with its discriminator frozen
  (:func:`rewrap` with learning rate 0 for D) and watch the class coverage.
* **The discriminator wins**: train D alone for a while
  (:func:`discriminator_head_start`) and measure the generator's learning
  signal under both losses (:func:`generator_gradient_norm`).

:data:`DEMO_SIZES` holds the sizes of these demonstrations per profile.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tutorial_lib import data, gan
from tutorial_lib.data import NUM_CLASSES
from tutorial_lib.gradients import value_and_gradients
from tutorial_lib.training import steps_per_call

# Per profile: the demos train on the first `examples` images for `epochs` short
# epochs of `steps` steps; the "D wins" demo trains D alone for `head_start_steps`.
DEMO_SIZES = {
    "fast": {"examples": 512, "epochs": 2, "steps": 4, "head_start_steps": 8},
    "cpu": {"examples": 5_000, "epochs": 10, "steps": 100, "head_start_steps": 200},
    "gpu": {"examples": 10_000, "epochs": 10, "steps": 100, "head_start_steps": 400},
}


def rewrap(
    model: gan.GAN,
    config: gan.GANConfig,
    *,
    generator_loss: str = "non_saturating",
    g_steps: int = 1,
    learning_rates: tuple[float, float] | None = None,
) -> gan.GAN:
    """A new, compiled DCGAN around *copies* of ``model``'s two networks.

    The copies start from the same weights, so several training variants can
    continue from one state. Fresh Adam optimizers with the config's settings,
    or ``learning_rates`` = (discriminator, generator).
    """

    def copy(network):
        clone = keras.models.clone_model(network)
        clone.set_weights(network.get_weights())
        return clone

    d_lr, g_lr = learning_rates or (config.learning_rate, config.learning_rate)
    new = gan.GAN(
        copy(model.generator),
        copy(model.discriminator),
        generator_loss=generator_loss,
        g_steps=g_steps,
        name=model.name,
    )
    new.compile(
        d_optimizer=gan.make_optimizer(d_lr, config.beta_1, config.beta_2),
        g_optimizer=gan.make_optimizer(g_lr, config.beta_1, config.beta_2),
        steps_per_execution=steps_per_call(config.steps_per_execution),
    )
    return new


def generator_gradient_norm(
    model: gan.GAN, kind: str = "non_saturating", num: int = 256, seed: int = 0
) -> float:
    """The norm of the generator loss's gradient w.r.t. the generator's weights, now.

    Measured on ``num`` fresh fakes against the current discriminator; shows
    the saturating loss going flat when the discriminator wins.
    """
    z = gan.latent_vectors(num, model.latent_dim, seed)
    labels = gan._check_labels(np.arange(num) % NUM_CLASSES, num) if model.conditional else None

    def loss_fn():
        logits = model._discriminate(model._generate(z, labels, training=True), labels)
        return gan.generator_loss(logits, kind), ()

    _, grads = value_and_gradients(loss_fn, model.generator.trainable_variables)
    return float(ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads)))


def discriminator_head_start(
    model: gan.GAN,
    x: np.ndarray,
    *,
    config: gan.GANConfig,
    steps: int,
    measure_every: int,
    seed: int = 0,
) -> dict:
    """Train only the discriminator of ``model`` for ``steps`` steps (its generator stays
    as it is) and measure, every ``measure_every`` steps, the generator's gradient norm
    under both losses and the discriminator's accuracy on fakes.

    Returns a dict of lists: ``steps``, ``saturating``, ``non_saturating``, ``fake_acc``.
    """
    if model.conditional:
        raise ValueError("discriminator_head_start takes an unconditional GAN.")
    if measure_every < 1:
        raise ValueError(f"measure_every must be a positive number of steps; got {measure_every}.")
    trainer = gan.GAN(model.generator, model.discriminator, g_steps=0, name="head_start")
    trainer.compile(
        d_optimizer=gan.make_optimizer(config.learning_rate, config.beta_1),
        g_optimizer=gan.make_optimizer(config.learning_rate, config.beta_1),
        steps_per_execution=steps_per_call(config.steps_per_execution),
    )
    batches = data.image_dataset(
        x, batch_size=config.batch_size, seed=seed, targets="none", drop_remainder=True, repeat=True
    )
    results = {"steps": [], "saturating": [], "non_saturating": [], "fake_acc": []}
    done = 0
    while True:
        results["steps"].append(done)
        for kind in gan.GENERATOR_LOSSES:
            results[kind].append(generator_gradient_norm(model, kind, seed=seed))
        logits = model._discriminate(
            model._generate(gan.latent_vectors(256, model.latent_dim, seed), None), None
        )
        results["fake_acc"].append(float(ops.mean(ops.cast(logits < 0, "float32"))))
        if done >= steps:
            return results
        trainer.fit(batches, epochs=1, steps_per_epoch=measure_every, verbose=0)
        done += measure_every
