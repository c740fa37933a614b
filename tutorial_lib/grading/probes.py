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

import contextlib
import types

import keras
import numpy as np

from tutorial_lib.backend import backend, is_symbolic
from tutorial_lib.gradients import value_and_gradients
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
        return keras.ops.sum(keras.ops.multiply(self.w, keras.ops.square(x)), axis=axes)[:, None]


class LinearCritic(QuadraticCritic):
    """f(x) = sum(w * x) per example: the same gradient w everywhere."""

    def __call__(self, x):
        axes = tuple(range(1, len(self.w.shape)))
        return keras.ops.sum(keras.ops.multiply(self.w, x), axis=axes)[:, None]


def _critic_as_jax_argument(critic_class) -> None:
    """Let ``jax.jit`` take a toy critic as an argument (its weights travel as an array),
    as a compiled step takes a learner's function's arguments."""
    import jax

    def unflatten(_, children):
        critic = object.__new__(critic_class)
        critic.w = children[0]
        return critic

    with contextlib.suppress(ValueError):  # registered already (this module imported anew)
        jax.tree_util.register_pytree_node(critic_class, lambda c: ((c.w,), None), unflatten)


if backend() == "jax":
    for _critic in (QuadraticCritic, LinearCritic):
        _critic_as_jax_argument(_critic)


def _tensor(value):
    """A tensor of the backend in use."""
    return keras.ops.convert_to_tensor(value)


SPECS = {"tensor": _tensor, "QuadraticCritic": QuadraticCritic, "LinearCritic": LinearCritic}


def penalty_trains_critic(gradient_penalty, *, real, fake, epsilon) -> dict:
    """Does ``gradient_penalty`` on a small critic have a gradient w.r.t. its kernels (one
    that is not zero everywhere)? The gradient is taken as a training step takes it
    (:func:`tutorial_lib.gradients.value_and_gradients`): a penalty computed with NumPy
    has none, or cannot be differentiated at all (``"error"``)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(real.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(4, "tanh"),
            keras.layers.Dense(1),
        ]
    )
    kernels = [v for v in model.trainable_variables if "kernel" in v.path]

    def loss_fn():
        return gradient_penalty(model, _tensor(real), _tensor(fake), _tensor(epsilon)), ()

    try:
        _, grads = value_and_gradients(loss_fn, kernels)  # (the last bias never changes one)
    except NotImplementedError:
        raise
    except Exception as error:  # NumPy on a traced tensor, a loss with no gradient at all
        return {"has_gradients": False, "error": f"{type(error).__name__}: {str(error)[:200]}"}
    moved = [bool(np.any(keras.ops.convert_to_numpy(g) != 0)) for g in grads]
    return {"has_gradients": all(moved)}


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
    both networks just before and just after.

    ``lazy``: it ignores the ``build`` a model's ``compile`` asks for and builds on its
    first ``apply``, for the variables it is given then: an optimizer handed the wrong
    network's variables updates them (the check names that mistake) instead of refusing
    variables it was not built for."""

    def __init__(self, name, networks, log, lazy=False, **kwargs):
        super().__init__(name=name, **kwargs)
        # (a namespace: untracked by Keras)
        self.logged = types.SimpleNamespace(networks=networks, log=log, lazy=lazy)

    def build(self, variables):
        if self.logged.lazy:  # compile's build: wait for the first apply
            self.logged.lazy = False
            return None
        return super().build(variables)

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if grads and is_symbolic(grads[0]):  # inside fit's compiled step: nothing to log
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
    data = real.shape[1]
    with own_task_only(getattr(GAN, "train_step", None), functions_from(references)):

        def make(lazy):
            generator, discriminator = _stand_ins(seed, latent, data)
            log: list = []
            nets = {"generator": generator, "discriminator": discriminator}
            recorders = [Recorder(generator), Recorder(discriminator)]
            for recorder in recorders:  # (their networks are: fit on JAX asks)
                recorder.built = True
            model = GAN(*recorders, latent)
            model.compile(
                d_optimizer=_LoggedSGD("d_optimizer", nets, log, lazy, learning_rate=d_lr),
                g_optimizer=_LoggedSGD("g_optimizer", nets, log, lazy, learning_rate=g_lr),
            )
            return model, generator, discriminator, log

        model, generator, discriminator, log = make(lazy=True)
        logs = model.train_step(_tensor(real))
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
            model.train_step(_tensor(real))
            report["second_step"] = {"applies": log[len(report["applies"]) :]}
            report["second_step"]["noise"] = model.generator.seen[-1]
        except Exception as error:
            report["second_step"] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
        third, generator, _, _ = make(lazy=False)  # built in compile, as fit on JAX needs
        before = flat(generator.get_weights())
        try:
            history = third.fit(real, batch_size=8, epochs=1, verbose=0, shuffle=False)
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
