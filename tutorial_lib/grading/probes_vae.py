"""Probes of exercise 02 (VAEs): a Gaussian VAE's ``train_step`` run on stand-in networks
where the learner's class lives; what each sub-step did comes back as arrays (the codes the
decoder got, the weights before and after, the logs), and the checks of
:mod:`tutorial_lib.checks.vae` judge them. A probe holds no reference and decides nothing."""

from __future__ import annotations

import numpy as np

from tutorial_lib.backend import backend
from tutorial_lib.grading.probe_tools import Recorder, flat, functions_from, own_task_only

IMAGE, LATENT, LOG_SIGMA2 = (4, 4, 1), 3, float(np.log(4.0))  # the stand-in encoder's sigma: 2


def vae_weights(seed: int, image=IMAGE) -> dict:
    """The stand-ins' weights: a linear encoder x -> (x W_mu, x W_lv + b_lv) and a linear
    decoder z -> z W_d + b_d (the check recomputes them to know where the step started)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(image))
    return {
        "w_mean": rng.normal(0, 0.3, (size, LATENT)).astype(np.float32),
        "b_mean": np.zeros(LATENT, np.float32),
        "w_log_var": rng.normal(0, 0.02, (size, LATENT)).astype(np.float32),
        "b_log_var": np.full(LATENT, LOG_SIGMA2, np.float32),
        "w_dec": rng.normal(0, 0.3, (LATENT, size)).astype(np.float32),
        "b_dec": np.full(size, 0.5, np.float32),
    }


class _CodeRecorder(Recorder):
    """A :class:`~tutorial_lib.grading.probe_tools.Recorder` that also records on JAX, where
    a training step differentiates a *function* of the weights: the decoder's input there is
    a tracer whose values a host callback receives (``jax.debug.callback``). It is built
    from the start (its network is), so ``fit`` on JAX and PyTorch need not build it by
    calling it on symbolic inputs."""

    def __init__(self, inner):
        super().__init__(inner)
        self.built = True

    def call(self, x, training=False):
        if backend() != "jax":
            return super().call(x, training=training)
        import jax

        jax.debug.callback(lambda z: self.seen.append(np.array(z, dtype=np.float64)), x)
        return self.inner(x, training=training)


def _train_step(model, x):
    """``model.train_step`` on ``x`` once, eagerly, as ``fit`` runs it. On JAX, Keras's trainer
    runs a *pure* step: the model's and the optimizer's variables are read from a
    ``keras.StatelessScope`` and what the step changed (the weights, the seed generator's
    state) is written back to them afterwards."""
    import keras

    x = keras.ops.convert_to_tensor(x)
    if backend() != "jax":
        return model.train_step(x)
    import jax

    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    optimizer_variables = [] if model.optimizer is None else model.optimizer.variables
    variables = [*model.variables, *optimizer_variables]
    with keras.StatelessScope(state_mapping=[(v, v.value) for v in variables]) as scope:
        logs = model.train_step(x)
    for variable in variables:
        value = scope.get_current_value(variable)
        if value is not None:
            variable.assign(value)
    jax.effects_barrier()  # every code the decoder got is recorded
    return logs


def _stand_ins(seed: int, image):
    import keras

    w = vae_weights(seed, image)
    inputs = keras.Input(image)
    h = keras.layers.Flatten()(inputs)
    z_mean = keras.layers.Dense(LATENT, name="mean")(h)
    z_log_var = keras.layers.Dense(LATENT, name="log_var")(h)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    encoder.set_weights([w["w_mean"], w["b_mean"], w["w_log_var"], w["b_log_var"]])
    decoder = keras.Sequential(
        [
            keras.Input((LATENT,)),
            keras.layers.Dense(int(np.prod(image))),
            keras.layers.Reshape(image),
        ],
        name="decoder",
    )
    decoder.set_weights([w["w_dec"], w["b_dec"]])
    return encoder, decoder


def vae_step(
    GaussianVAE,
    *,
    seed: int,
    x,
    beta: float,
    decoder_log_var: float,
    lr: float,
    references,
    more: bool = True,
):
    """One eager ``train_step`` of ``GaussianVAE(encoder, decoder, beta, decoder_log_var)``
    on ``x`` with SGD(``lr``), on the backend in use (:func:`_train_step`): the logs, the
    codes the decoder got, both networks' weights after; with ``more``, also two steps of a
    fresh model (the first and last codes) and one epoch of ``fit`` of a fresh model (its
    logs, whether the encoder moved)."""
    import keras

    with own_task_only(getattr(GaussianVAE, "train_step", None), functions_from(references)):

        def make():
            encoder, decoder = _stand_ins(seed, tuple(x.shape[1:]))
            model = GaussianVAE(
                encoder, _CodeRecorder(decoder), beta=beta, decoder_log_var=decoder_log_var
            )
            model.compile(optimizer=keras.optimizers.SGD(lr))
            return model, encoder, decoder

        model, encoder, decoder = make()
        logs = _train_step(model, x)
        report = {
            "logs": logs if isinstance(logs, dict) else {"not a dict": type(logs).__name__},
            "seen": list(model.decoder.seen),
            "after": {"encoder": encoder.get_weights(), "decoder": decoder.get_weights()},
        }
        if not more:
            return report
        second = make()[0]
        _train_step(second, x)
        _train_step(second, x)
        report["two_steps"] = [second.decoder.seen[0], second.decoder.seen[-1]]
        third, encoder, _ = make()
        before = flat(encoder.get_weights())
        try:
            history = third.fit(x, epochs=1, verbose=0, shuffle=False, batch_size=16)
            report["fit"] = {
                "logged": sorted(history.history),
                "encoder_moved": bool(not np.allclose(before, flat(encoder.get_weights()))),
            }
        except Exception as error:
            report["fit"] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
    return report


PROBES = {"vae_step": vae_step}
