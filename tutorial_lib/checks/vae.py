"""Checks for ``exercises/02_vae.ipynb``: the KL divergence between two diagonal
Gaussians, a Gaussian decoder's negative log-likelihood, a Gaussian VAE's
train_step, and the decoder variance that fits MNIST best.

The learner's functions use ``keras.ops`` so that they work on NumPy arrays and
inside a compiled train_step alike; results are compared as float64 arrays with
references written out here.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from tutorial_lib.checks import CheckFailed, CheckResult, Hints, check_number, expect, run_check
from tutorial_lib.checks._keras import Recorder, expect_fit_trains, flat, own_task_only

LOG_2PI = float(np.log(2.0 * np.pi))

hint = Hints(
    {
        "kl": (
            "Write the KL of one dimension of q = N(mu_q, var_q) from p = N(mu_p, var_p) "
            "(a log of the variance ratio, the variance ratio, the squared distance of the "
            "means in units of p's variance), then add it up over every axis of an example. "
            "Mind the order: KL(q || p) is not KL(p || q).",
            "keras.ops.exp of a *difference* of log-variances and of half a log-variance "
            "(so nothing overflows or underflows), keras.ops.square, keras.ops.sum with "
            "axis=list(range(1, ndim)), and len(keras.ops.shape(x)) for ndim.",
        ),
        "nll": (
            "The negative log-density of a Gaussian, per value: half of (log 2 pi + the "
            "log-variance + the squared error divided by the variance). Sum it over every "
            "value of an example: one number per example.",
            "keras.ops.exp(-log_var) for 1 / variance, keras.ops.square, keras.ops.sum over "
            "axis=list(range(1, ndim)), and np.log(2 * np.pi) as a constant.",
        ),
        "gaussian_vae": (
            "One step: encode, draw a code with the reparameterisation trick (fresh noise "
            "for every example and every step), decode, compute the loss per example "
            "(reconstruction + beta times the KL to N(0, I)), average over the batch, and "
            "apply one optimizer step to all trainable weights. Report the three numbers.",
            "tf.GradientTape, keras.random.normal(keras.ops.shape(z_mean), "
            "seed=self.seed_generator), keras.ops.exp(0.5 * z_log_var), your gaussian_nll "
            "and gaussian_kl (zeros for the prior), keras.ops.mean, tape.gradient, "
            "self.optimizer.apply, and a dict with 'loss', 'reconstruction' and 'kl'.",
        ),
        "decoder_variance": (
            "For a fixed prediction (the mean training image), the negative log-likelihood "
            "depends on the decoder's variance: too small punishes every error hard, too "
            "large costs log-variance everywhere. Evaluate your gaussian_nll for many "
            "variances and keep the best.",
            "data.load_images('mnist', 'train', limit=1000) and ('mnist', 'test', limit=500), "
            ".mean(axis=0, keepdims=True), np.linspace over the log-variance, your "
            "gaussian_nll, np.mean and np.argmin; return exp of the best log-variance.",
        ),
    }
)


def _numbers(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


def _axes(x) -> tuple:
    return tuple(range(1, np.ndim(x)))


def _kl(mu_q, lv_q, mu_p, lv_p, *, per_dim=False):
    mu_q, lv_q, mu_p, lv_p = (np.asarray(a, np.float64) for a in (mu_q, lv_q, mu_p, lv_p))
    terms = 0.5 * (lv_p - lv_q + np.exp(lv_q - lv_p) + (mu_q - mu_p) ** 2 * np.exp(-lv_p) - 1.0)
    return terms if per_dim else terms.sum(axis=_axes(terms))


def _nll(x, mean, log_var):
    x, mean = np.asarray(x, np.float64), np.asarray(mean, np.float64)
    log_var = np.broadcast_to(np.asarray(log_var, np.float64), x.shape)
    terms = 0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * np.exp(-log_var))
    return terms.sum(axis=_axes(terms))


def _graph_case(function, name: str, *args):
    import tensorflow as tf

    try:
        tf.function(function)(*(tf.constant(a, tf.float32) for a in args))
    except Exception as error:
        raise CheckFailed(
            f"{name} fails inside a tf.function (as in a train_step): {type(error).__name__}: "
            f"{str(error)[:200]}. Compute with keras.ops on the tensors; no NumPy functions."
        ) from None


def _expect_per_example(got, expected, mistakes, advice):
    expect(
        got.shape == expected.shape,
        f"expected one value per example, shape {expected.shape}, got {got.shape}"
        + (": did you also add up (or average) over the batch?" if got.ndim == 0 else "."),
    )
    if np.allclose(got, expected, rtol=1e-4, atol=1e-4):
        return
    for message, wrong in mistakes.items():
        expect(not np.allclose(got, wrong, rtol=1e-4, atol=1e-4), f"{message}.")
    raise CheckFailed(advice)


# --------------------------------------------------------------------------
# Task 1: KL between two diagonal Gaussians
# --------------------------------------------------------------------------


def _gaussians(shape, seed):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(0, 1, shape).astype(np.float32),
        rng.normal(0, 0.8, shape).astype(np.float32),
        rng.normal(0, 1, shape).astype(np.float32),
        rng.normal(0, 0.8, shape).astype(np.float32),
    ]


def check_gaussian_kl(gaussian_kl, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``gaussian_kl(mu_q, log_var_q, mu_p, log_var_p)``: KL(q || p) of diagonal Gaussians,
    one value per example, summed over every other axis (codes of any rank)."""
    name = getattr(gaussian_kl, "__name__", "gaussian_kl")
    shapes = [(5, 3), (4, 2, 2, 3), (6,)] if hidden else [(6, 4), (3, 4, 4, 2), (5, 1)]
    args = _gaussians(shapes[0], 3 if hidden else 2)

    def value(*a):
        return _numbers(gaussian_kl(*a))

    def matches_the_kl():
        got = value(*args)
        mu_q, lv_q, mu_p, lv_p = args
        terms = _kl(*args, per_dim=True)
        d = terms.shape[1]
        mistakes = {
            "that is KL(p || q): the KL divergence is not symmetric; the first distribution "
            "(mu_q, log_var_q) is the one inside the expectation": _kl(mu_p, lv_p, mu_q, lv_q),
            f"your KL is {d} times too small: you averaged over the dimensions; sum them (the "
            "KLs of independent dimensions add up)": terms.mean(axis=1),
            "you treated the log-variances as standard deviations: the variance is "
            "exp(log_var)": _kl(mu_q, np.log(lv_q**2 + 1e-30), mu_p, np.log(lv_p**2 + 1e-30)),
            "the factor 1/2 is missing": 2 * terms.sum(axis=1),
            "the -1 of each dimension is missing": terms.sum(axis=1) + 0.5 * d,
            "you returned the negative of the KL: a KL is never below 0": -terms.sum(axis=1),
        }
        _expect_per_example(
            got,
            terms.sum(axis=1),
            mistakes,
            "expected, per dimension, 0.5 * (log_var_p - log_var_q + exp(log_var_q - log_var_p) "
            "+ (mu_q - mu_p)^2 / exp(log_var_p) - 1), summed over the dimensions.",
        )

    def zero_for_equal_gaussians():
        mu, lv = args[0], args[1]
        got = value(mu, lv, mu, lv)
        expect(np.allclose(got, 0.0, atol=1e-5), f"KL(q || q) must be 0, got {got[:3]}.")

    def standard_normal_prior():
        mu, lv = args[0], args[1]
        zeros = np.zeros_like(mu)
        got = value(mu, lv, zeros, zeros)
        expected = -0.5 * np.sum(1 + lv - mu.astype(np.float64) ** 2 - np.exp(lv), axis=1)
        expect(
            np.allclose(got, expected, rtol=1e-4, atol=1e-5),
            "with p = N(0, I) your KL differs from the lesson's formula.",
        )

    def codes_of_any_rank():
        for shape in shapes[1:]:
            a = _gaussians(shape, 5)
            got = value(*a)
            expect(
                got.shape == (shape[0],) and np.allclose(got, _kl(*a), rtol=1e-4, atol=1e-4),
                f"for codes of shape {shape} expected one KL per example, shape ({shape[0]},), "
                f"summed over all other axes; got shape {got.shape}: sum over "
                "axis=list(range(1, ndim)), not only the last axis.",
            )

    def tiny_variances_stay_exact():
        mu = args[0]
        lv = np.full_like(mu, -120.0)  # variances of 1e-52: 0 in float32
        got = value(mu, lv, mu, lv)
        expect(
            np.all(np.isfinite(got)) and np.allclose(got, 0.0, atol=1e-4),
            f"two equal Gaussians with log-variances of -120 (float32) should have KL 0, got "
            f"{got[:2]}: exp(-120) is 0 in float32 (and exp(120) is inf), so a ratio of "
            "variances gives 0/0 and a squared distance times 1/variance gives 0 * inf. Stay "
            "in log space: exp(log_var_q - log_var_p), and square (mu_q - mu_p) * "
            "exp(-0.5 * log_var_p).",
        )

    def works_in_a_train_step():
        _graph_case(gaussian_kl, name, *args)

    cases = [
        matches_the_kl,
        zero_for_equal_gaussians,
        standard_normal_prior,
        codes_of_any_rank,
        tiny_variances_stay_exact,
        works_in_a_train_step,
    ]
    return run_check("check_gaussian_kl", gaussian_kl, cases, quiet=quiet, task="kl")


# --------------------------------------------------------------------------
# Task 2: a Gaussian decoder's negative log-likelihood
# --------------------------------------------------------------------------


def check_gaussian_nll(gaussian_nll, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``gaussian_nll(x, mean, log_var)``: -log N(x; mean, exp(log_var)) summed over every
    value of an example, one number per example; ``log_var`` a number or an array that
    broadcasts against x."""
    name = getattr(gaussian_nll, "__name__", "gaussian_nll")
    shape = (5, 8, 8, 3) if hidden else (4, 28, 28, 1)
    rng = np.random.default_rng(13 if hidden else 12)
    x = rng.random(shape).astype(np.float32)
    mean = np.clip(x + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    log_var = np.float32(-3.0)

    def value(*a):
        return _numbers(gaussian_nll(*a))

    def matches_the_nll():
        got = value(x, mean, log_var)
        expected = _nll(x, mean, log_var)
        d = int(np.prod(shape[1:]))
        sq = ((x.astype(np.float64) - mean) ** 2).sum(axis=_axes(x))
        mistakes = {
            "the constant log(2 pi) is missing: without it the number is not a negative "
            "log-likelihood in nats": expected - 0.5 * d * LOG_2PI,
            "you averaged over the values of an example: sum them (seed 002's mistake, which "
            "makes the likelihood 784 times too weak next to the KL)": expected / d,
            "the factor 1/2 is missing": 2 * expected,
            "you divided the squared error by the standard deviation: divide by the variance "
            "exp(log_var)": 0.5 * (d * (LOG_2PI + log_var) + sq * np.exp(-0.5 * log_var)),
            "you returned the log-likelihood: the loss is its negative": -expected,
            "this is the squared error alone (the lesson's MSE): a Gaussian likelihood also "
            "divides by the variance and adds the log-variance": sq,
        }
        _expect_per_example(
            got,
            expected,
            mistakes,
            "expected, per value, 0.5 * (log(2 pi) + log_var + (x - mean)^2 / exp(log_var)), "
            "summed over every value of an example.",
        )

    def per_pixel_log_variances():
        lv = rng.normal(-2.0, 1.0, shape).astype(np.float32)
        got = value(x, mean, lv)
        expect(
            np.allclose(got, _nll(x, mean, lv), rtol=1e-4),
            "with one log-variance per value (an array shaped like x) the result is wrong: "
            "use log_var element by element, it broadcasts.",
        )

    def a_perfect_mean_costs_only_the_spread():
        got = value(x, x, np.float32(0.0))
        d = int(np.prod(shape[1:]))
        expect(
            np.allclose(got, 0.5 * d * LOG_2PI, rtol=1e-5),
            f"for mean = x and log_var = 0 each value costs 0.5 * log(2 pi) = 0.919 nats, so "
            f"{0.5 * d * LOG_2PI:.1f} per example; got {got[0]:.1f}.",
        )

    def works_in_a_train_step():
        _graph_case(lambda a, b: gaussian_nll(a, b, -3.0), name, x, mean)

    cases = [
        matches_the_nll,
        per_pixel_log_variances,
        a_perfect_mean_costs_only_the_spread,
        works_in_a_train_step,
    ]
    return run_check("check_gaussian_nll", gaussian_nll, cases, quiet=quiet, task="nll")


# --------------------------------------------------------------------------
# Task 3: a Gaussian VAE's train_step
# --------------------------------------------------------------------------

IMAGE, LATENT, LOG_SIGMA2 = (4, 4, 1), 3, float(np.log(4.0))  # the stand-in encoder's sigma: 2


def _stand_in_networks(seed: int):
    rng = np.random.default_rng(seed)
    inputs = keras.Input(IMAGE)
    h = keras.layers.Flatten()(inputs)
    z_mean = keras.layers.Dense(LATENT, name="mean")(h)
    z_log_var = keras.layers.Dense(LATENT, name="log_var")(h)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    size = int(np.prod(IMAGE))
    encoder.set_weights(
        [
            rng.normal(0, 0.3, (size, LATENT)).astype(np.float32),
            np.zeros(LATENT, np.float32),
            rng.normal(0, 0.02, (size, LATENT)).astype(np.float32),
            np.full(LATENT, LOG_SIGMA2, np.float32),
        ]
    )
    decoder = keras.Sequential(
        [keras.Input((LATENT,)), keras.layers.Dense(size), keras.layers.Reshape(IMAGE)],
        name="decoder",
    )
    decoder.set_weights(
        [rng.normal(0, 0.3, (LATENT, size)).astype(np.float32), np.full(size, 0.5, np.float32)]
    )
    return encoder, decoder


def check_gaussian_vae(GaussianVAE, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``GaussianVAE(encoder, decoder, beta, decoder_log_var)`` whose ``train_step(x)`` draws
    z = mu + sigma * epsilon (fresh noise per example), computes the batch mean of
    gaussian_nll(x, decoder(z), decoder_log_var) + beta * KL(q(z|x) || N(0, I)), applies
    one optimizer step, and returns ``{"loss", "reconstruction", "kl"}``."""
    import tensorflow as tf

    seed = 41 if hidden else 40
    x = np.random.default_rng(seed).random((64, *IMAGE)).astype(np.float32)
    beta, decoder_log_var = (0.5, float(np.log(0.3))) if hidden else (2.0, float(np.log(0.5)))
    state = {}

    def make():
        encoder, decoder = _stand_in_networks(seed)
        model = GaussianVAE(encoder, Recorder(decoder), beta=beta, decoder_log_var=decoder_log_var)
        model.compile(optimizer=keras.optimizers.SGD(0.01))
        return model, encoder, decoder

    def one_step_trains_both_networks():
        model, encoder, decoder = make()
        before = [flat(encoder.get_weights()), flat(decoder.get_weights())]
        z_mean, z_log_var = (_numbers(t) for t in encoder(x))
        logs = model.train_step(tf.constant(x))
        expect(
            isinstance(logs, dict) and {"loss", "reconstruction", "kl"} <= set(logs),
            "train_step should return a dict with 'loss', 'reconstruction' and 'kl', got "
            f"{sorted(logs) if isinstance(logs, dict) else type(logs).__name__}.",
        )
        for net, old in zip((encoder, decoder), before, strict=True):
            expect(
                not np.allclose(old, flat(net.get_weights())),
                f"the {net.name}'s weights did not change: apply self.optimizer to the "
                "gradients of the loss w.r.t. self.trainable_variables.",
            )
        expect(
            len(model.decoder.seen) >= 1 and model.decoder.seen[0].shape == z_mean.shape,
            f"the decoder should get codes of shape {z_mean.shape}, got "
            f"{[z.shape for z in model.decoder.seen]}.",
        )
        z = model.decoder.seen[0]
        state.update(logs=logs, z=z, z_mean=z_mean, z_log_var=z_log_var, decoder=decoder)
        state["old_decoder"] = make()[2]  # the decoder's weights before the step

    def draws_fresh_noise():
        z, z_mean, z_log_var = state["z"], state["z_mean"], state["z_log_var"]
        expect(
            not np.allclose(z, z_mean, atol=1e-6),
            "the decoder got z = z_mean: add the noise, z = z_mean + sigma * epsilon.",
        )
        epsilon = (z - z_mean) / np.exp(0.5 * z_log_var)
        expect(
            not np.allclose(epsilon, epsilon[:1], atol=1e-6),
            "every example got the same noise epsilon: it was drawn once and broadcast to the "
            "batch. Draw it with the shape of z_mean, (batch, latent_dim).",
        )
        spread = float(np.std(epsilon))
        if abs(spread - np.exp(0.5 * LOG_SIGMA2)) < 0.3:
            raise CheckFailed(
                "the noise is scaled by the variance exp(z_log_var): scale it by the standard "
                "deviation, sigma = exp(0.5 * z_log_var)."
            )
        expect(
            0.8 < spread < 1.2,
            f"(z - z_mean) / sigma should be standard normal; its standard deviation is "
            f"{spread:.2f}: draw epsilon with keras.random.normal and scale it by "
            "sigma = exp(0.5 * z_log_var).",
        )
        model = make()[0]
        model.train_step(tf.constant(x))
        model.train_step(tf.constant(x))
        expect(
            not np.allclose(model.decoder.seen[0], model.decoder.seen[-1]),
            "two steps used the same noise: draw epsilon inside train_step with "
            "seed=self.seed_generator, not once in __init__.",
        )

    def reports_the_right_loss():
        z, z_mean, z_log_var = state["z"], state["z_mean"], state["z_log_var"]
        x_mean = _numbers(state["old_decoder"](z))
        rec = _nll(x, x_mean, decoder_log_var)
        kl = _kl(z_mean, z_log_var, 0.0 * z_mean, 0.0 * z_log_var)
        logs = {key: float(_numbers(value)) for key, value in state["logs"].items()}
        expected = float(np.mean(rec + beta * kl))
        d, k = int(np.prod(IMAGE)), LATENT
        mistakes = {
            "beta multiplies the reconstruction term: it weights the KL": np.mean(beta * rec + kl),
            "beta is missing: loss = reconstruction + beta * KL": np.mean(rec + kl),
            "the reconstruction term is averaged over the pixels: sum them": np.mean(
                rec / d + beta * kl
            ),
            "the KL is averaged over the latent dimensions: sum them": np.mean(rec + beta * kl / k),
            "the loss is summed over the batch: average it": np.sum(rec + beta * kl),
            "the KL term is missing": np.mean(rec),
        }
        got = logs["loss"]
        if np.isclose(got, expected, rtol=1e-4):
            expect(
                np.isclose(logs["reconstruction"], rec.mean(), rtol=1e-4)
                and np.isclose(logs["kl"], kl.mean(), rtol=1e-4),
                f"the loss is right, but report the batch means of the two terms: "
                f"reconstruction {rec.mean():.3f} and kl {kl.mean():.3f}, got "
                f"{logs['reconstruction']:.3f} and {logs['kl']:.3f}.",
            )
            return
        for message, wrong in mistakes.items():
            expect(not np.isclose(got, wrong, rtol=1e-4), f"loss {got:.3f}: {message}.")
        raise CheckFailed(
            f"loss {got:.3f}, expected {expected:.3f}: the batch mean of "
            "gaussian_nll(x, decoder(z), decoder_log_var) + beta * gaussian_kl(z_mean, "
            "z_log_var, 0, 0), with the z the decoder got."
        )

    def trains_with_fit():
        model = make()[0]
        expect_fit_trains(model, x, ("loss", "reconstruction", "kl"), model.encoder, batch_size=16)

    cases = [
        one_step_trains_both_networks,
        draws_fresh_noise,
        reports_the_right_loss,
        trains_with_fit,
    ]
    ops = keras.ops

    def reference_nll(x, mean, log_var):
        per_value = 0.5 * (LOG_2PI + log_var + ops.square(x - mean) * ops.exp(-log_var))
        return ops.sum(per_value, axis=list(range(1, len(ops.shape(per_value)))))

    def reference_kl(mu_q, log_var_q, mu_p, log_var_p):
        ratio, distance = ops.exp(log_var_q - log_var_p), ops.square(mu_q - mu_p)
        per_dim = 0.5 * (log_var_p - log_var_q + ratio + distance * ops.exp(-log_var_p) - 1.0)
        return ops.sum(per_dim, axis=list(range(1, len(ops.shape(per_dim)))))

    # Mistakes in Tasks 1 and 2 count there: here train_step calls the references.
    references = {"gaussian_nll": reference_nll, "gaussian_kl": reference_kl}
    with own_task_only(getattr(GaussianVAE, "train_step", None), references):
        return run_check("check_gaussian_vae", GaussianVAE, cases, quiet=quiet, task="gaussian_vae")


# --------------------------------------------------------------------------
# Task 4 (investigate): the decoder variance that fits best
# --------------------------------------------------------------------------


@functools.cache
def _best_variances() -> dict[str, float]:
    from tutorial_lib import data

    train, _ = data.load_images("mnist", "train", limit=1000)
    test, _ = data.load_images("mnist", "test", limit=500)
    mean = train.astype(np.float64).mean(axis=0, keepdims=True)
    return {"test": float(np.mean((test - mean) ** 2))}


def check_decoder_variance(experiment, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``experiment()``: the variance sigma^2, shared by every pixel, that minimises the
    mean Gaussian NLL of the first 500 MNIST test images predicted by the mean of the first
    1,000 training images."""
    best = _best_variances
    return check_number(
        "check_decoder_variance",
        experiment,
        lambda: best()["test"],
        rel_tol=0.05,
        what="the best decoder variance sigma^2",
        mistakes=lambda: {
            "you answered the log-variance; return the variance exp(log_var)": float(
                np.log(best()["test"])
            ),
            "you answered the standard deviation; return the variance sigma^2": float(
                np.sqrt(best()["test"])
            ),
        },
        quiet=quiet,
        task="decoder_variance",
    )
