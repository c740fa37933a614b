"""Probes: the code that exercises a learner's class or function where it lives and
returns what happened as arrays (weights before and after, the noise each network saw,
which optimizer updated which variables). The checks judge these arrays against their own
references; a probe holds no reference and decides nothing.

In the learner's notebook a probe runs in the notebook's process; while grading it runs in
the learner's own process (:mod:`tutorial_lib.grading.worker`), and only its arrays cross.
:data:`SPECS` rebuilds the stand-ins a check hands to a learner's function (a toy critic, a
tensor) from their plain description.
"""

from __future__ import annotations

import types

import keras
import numpy as np

from tutorial_lib.grading import (
    probes_autoencoder,
    probes_compare,
    probes_diffusion,
    probes_flows,
    probes_vae,
)
from tutorial_lib.grading.probe_tools import Recorder, flat, functions_from, own_task_only

# --------------------------------------------------------------------------
# Stand-ins a check hands to a learner's function
# --------------------------------------------------------------------------


class QuadraticCritic:
    """f(x) = sum(w * x^2) per example: its gradient 2 w x depends on where it is taken."""

    def __init__(self, w):
        self.w = np.asarray(w, np.float32)

    def grading_spec(self) -> dict:
        return {"w": self.w}

    def __call__(self, x):
        axes = tuple(range(1, len(self.w.shape)))
        return keras.ops.sum(self.w * keras.ops.square(x), axis=axes)[:, None]


class LinearCritic(QuadraticCritic):
    """f(x) = sum(w * x) per example: the same gradient w everywhere."""

    def __call__(self, x):
        axes = tuple(range(1, len(self.w.shape)))
        return keras.ops.sum(self.w * x, axis=axes)[:, None]


def _tensor(value):
    import tensorflow as tf

    return tf.constant(value)


SPECS = {"tensor": _tensor, "QuadraticCritic": QuadraticCritic, "LinearCritic": LinearCritic}


def penalty_trains_critic(gradient_penalty, *, real, fake, epsilon) -> dict:
    """Does ``gradient_penalty`` on a small critic have a gradient w.r.t. its kernels?"""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(real.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(4, "tanh"),
            keras.layers.Dense(1),
        ]
    )
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(model, _tensor(real), _tensor(fake), _tensor(epsilon))
    kernels = [v for v in model.trainable_variables if "kernel" in v.path]
    grads = tape.gradient(penalty, kernels)  # (the last bias never changes a gradient)
    return {"has_gradients": all(g is not None for g in grads)}


# --------------------------------------------------------------------------
# A GAN's train_step: what each sub-step did
# --------------------------------------------------------------------------


def gan_weights(seed: int, latent: int, data: int) -> dict:
    """The stand-ins' weights: a linear generator z -> z K, a linear discriminator
    x -> x w + b (the check recomputes them to know where the step started)."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 1.0, (latent, data)).astype(np.float32)
    w = rng.normal(0, 1.0, (data, 1)).astype(np.float32)
    return {"kernel": kernel, "w": w, "b": np.array([0.3], np.float32)}


def _stand_ins(seed: int, latent: int, data: int):
    weights = gan_weights(seed, latent, data)
    generator = keras.Sequential(
        [keras.Input((latent,)), keras.layers.Dense(data, use_bias=False)], name="generator"
    )
    generator.set_weights([weights["kernel"]])
    discriminator = keras.Sequential(
        [keras.Input((data,)), keras.layers.Dense(1)], name="discriminator"
    )
    discriminator.set_weights([weights["w"], weights["b"]])
    return generator, discriminator


class _LoggedSGD(keras.optimizers.SGD):
    """SGD that logs, for every ``apply``, whose variables it updated and the weights of
    both networks just before and just after."""

    def __init__(self, name, networks, log, **kwargs):
        super().__init__(name=name, **kwargs)
        self.logged = types.SimpleNamespace(networks=networks, log=log)  # (untracked by Keras)

    def apply(self, grads, trainable_variables=None):
        import tensorflow as tf

        if not tf.executing_eagerly():  # inside fit's compiled step: nothing to log
            return super().apply(grads, trainable_variables)
        variables = list(trainable_variables or [])
        owners = sorted(
            {
                owner
                for v in variables
                for owner, net in self.logged.networks.items()
                if any(v is w for w in net.trainable_variables)
            }
        )
        before = {k: flat(n.get_weights()) for k, n in self.logged.networks.items()}
        result = super().apply(grads, trainable_variables)
        self.logged.log.append(
            {
                "optimizer": self.name,
                "owners": owners or ["other"],
                "before": before,
                "after": {k: flat(n.get_weights()) for k, n in self.logged.networks.items()},
            }
        )
        return result


def gan_step(GAN, *, seed: int, real, latent: int, d_lr: float, g_lr: float, references) -> dict:
    """Two eager ``train_step`` calls of ``GAN(generator, discriminator, latent)`` on
    ``real`` with two logged SGD optimizers (weights, noise, which optimizer updated whose
    variables), and one epoch of ``fit`` of a fresh model (does it train when compiled?)."""
    import tensorflow as tf

    data = real.shape[1]
    with own_task_only(getattr(GAN, "train_step", None), functions_from(references)):

        def make():
            generator, discriminator = _stand_ins(seed, latent, data)
            log: list = []
            nets = {"generator": generator, "discriminator": discriminator}
            model = GAN(Recorder(generator), Recorder(discriminator), latent)
            model.compile(
                d_optimizer=_LoggedSGD("d_optimizer", nets, log, learning_rate=d_lr),
                g_optimizer=_LoggedSGD("g_optimizer", nets, log, learning_rate=g_lr),
            )
            return model, generator, discriminator, log

        model, generator, discriminator, log = make()
        logs = model.train_step(tf.constant(real))
        report = {
            "logs": logs if isinstance(logs, dict) else {"not a dict": type(logs).__name__},
            "after": {
                "generator": generator.get_weights(),
                "discriminator": discriminator.get_weights(),
            },
            "applies": list(log),
            "noise": list(model.generator.seen),
        }
        try:  # a second step of the same model: does it still train both, with new noise?
            model.train_step(tf.constant(real))
            report["second_step"] = {"applies": log[len(report["applies"]) :]}
            report["second_step"]["noise"] = model.generator.seen[-1]
        except Exception as error:
            report["second_step"] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
        third, generator, _, _ = make()
        before = flat(generator.get_weights())
        try:
            history = third.fit(
                tf.data.Dataset.from_tensor_slices(real).batch(8),
                epochs=1,
                verbose=0,
                shuffle=False,
            )
            report["fit"] = {
                "logged": sorted(history.history),
                "generator_moved": bool(not np.allclose(before, flat(generator.get_weights()))),
            }
        except Exception as error:
            report["fit"] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
    return report


# Every probe a check can ask for by name: the GAN's here, the other exercises' in their
# modules.
PROBES = {
    "penalty_trains_critic": penalty_trains_critic,
    "gan_step": gan_step,
    **probes_autoencoder.PROBES,
    **probes_vae.PROBES,
    **probes_diffusion.PROBES,
    **probes_compare.PROBES,
    **probes_flows.PROBES,
}
