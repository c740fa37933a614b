"""Checks for ``exercises/02_vae.ipynb``: the KL divergence between two diagonal
Gaussians, a Gaussian decoder's negative log-likelihood, a Gaussian VAE's
train_step, and the decoder variance that fits MNIST best.

The learner's functions use ``keras.ops`` so that they work on the tensors of any of
Keras's backends, eagerly and inside a compiled train_step (``tf.function``, ``jax.jit``)
alike; the checks call them on tensors of the backend in use and compare the results as
float64 arrays with references written out here in NumPy (the reference gradient of
Task 3 too: no backend is needed to judge). While grading, the learner's code runs in its own process:
the checks send it inputs, the probe of :mod:`tutorial_lib.grading.probes_vae` runs its
train_step there, and only arrays come back. The hidden cases (``hidden={...}``) are in
the instructor's source notebook only.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from tutorial_lib.backend import float32_tensor
from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)
from tutorial_lib.grading.probe_tools import flat
from tutorial_lib.grading.probes_vae import IMAGE, LATENT, LOG_SIGMA2, vae_weights
from tutorial_lib.grading.remote import in_graph, run_probe

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
            "take one optimizer step down it on all trainable weights: everything the loss "
            "depends on is computed inside the function whose gradient is taken. Report the "
            "three numbers.",
            "self.descend with self.optimizer and self.trainable_variables (it differentiates "
            "a function of no arguments that returns the loss and whatever else you want back, "
            "steps, and returns the loss, that something else and the gradients), "
            "keras.random.normal(keras.ops.shape(z_mean), seed=self.seed_generator), "
            "keras.ops.exp(0.5 * z_log_var), your gaussian_nll and gaussian_kl (zeros for the "
            "prior), keras.ops.mean, and a dict with 'loss', 'reconstruction' and 'kl'.",
        ),
        "decoder_variance": (
            "For a fixed prediction (the mean training image), the negative log-likelihood "
            "depends on the decoder's variance: too small punishes every error hard, too "
            "large costs log-variance everywhere. Evaluate your gaussian_nll for many "
            "variances and keep the best.",
            "data.load_images('mnist', 'train', limit=1000) and ('mnist', 'test', limit=500), "
            ".mean(axis=0, keepdims=True), keras.ops.convert_to_tensor for the images (your "
            "gaussian_nll computes on tensors), np.linspace over the log-variance, your "
            "gaussian_nll, float(keras.ops.mean(...)) and np.argmin; return the variances "
            "exp(log_var), their mean NLLs and the best variance.",
        ),
    }
)


def _numbers(value) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


def _tensors(args) -> list:
    """The arguments as float32 tensors of the backend in use: what a train_step hands the
    learner's functions (on PyTorch a NumPy array and a tensor do not mix)."""
    return [float32_tensor(a) for a in args]


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
    """``function(*args)`` as a compiled train_step calls it (a ``tf.function`` on
    TensorFlow, ``jax.jit`` on JAX; as it is on PyTorch, which runs steps eagerly), on
    tensors of the backend in use, where ``function`` lives."""
    try:
        in_graph(function, *_tensors(args))
    except Exception as error:  # NotImplementedError too: NumPy on a symbolic tensor raises it
        if getattr(error, "aborts_grading", False):
            raise
        raise CheckFailed(
            f"{name} fails inside a compiled step (tf.function or jax.jit, as in a "
            f"train_step): {getattr(error, 'learner_type', type(error).__name__)}: "
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


def check_gaussian_kl(gaussian_kl, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``gaussian_kl(mu_q, log_var_q, mu_p, log_var_p)``: KL(q || p) of diagonal Gaussians,
    one value per example, summed over every other axis (codes of any rank, a batch of one).
    ``hidden``: ``{"shapes": [the main case's, others...], "seed": s}``."""
    name = getattr(gaussian_kl, "__name__", "gaussian_kl")
    cases_ = hidden_cases(hidden, "check_gaussian_kl")
    shapes = [tuple(s) for s in cases_.get("shapes", [(6, 4), (3, 4, 4, 2), (5, 1), (1, 7)])]
    args = _gaussians(shapes[0], int(cases_.get("seed", 2)))

    def value(*a):
        return _numbers(gaussian_kl(*_tensors(a)))

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


def check_gaussian_nll(gaussian_nll, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``gaussian_nll(x, mean, log_var)``: -log N(x; mean, exp(log_var)) summed over every
    value of an example, one number per example; ``log_var`` a number or an array that
    broadcasts against x. ``hidden``: ``{"shape": [...], "others": [[...], ...], "seed": s}``."""
    name = getattr(gaussian_nll, "__name__", "gaussian_nll")
    cases_ = hidden_cases(hidden, "check_gaussian_nll")
    shape = tuple(cases_.get("shape", (4, 28, 28, 1)))
    others = [tuple(o) for o in cases_.get("others", [(3, 10), (1, 28, 28, 1)])]
    rng = np.random.default_rng(int(cases_.get("seed", 12)))
    x = rng.random(shape).astype(np.float32)
    mean = np.clip(x + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    log_var = np.float32(-3.0)

    def value(*a):
        return _numbers(gaussian_nll(*_tensors(a)))

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

    def other_shapes():
        for other in others:
            a = rng.random(other).astype(np.float32)
            b = np.clip(a + rng.normal(0, 0.1, other), 0, 1).astype(np.float32)
            try:
                got = value(a, b, log_var)
            except Exception as error:
                if getattr(error, "aborts_grading", False) or isinstance(
                    error, NotImplementedError
                ):
                    raise
                raise CheckFailed(
                    f"{name} fails on data of shape {other} "
                    f"({getattr(error, 'learner_type', type(error).__name__)}): sum over "
                    "axis=list(range(1, ndim)), not a fixed list of image axes."
                ) from None
            expect(
                got.shape == (other[0],) and np.allclose(got, _nll(a, b, log_var), rtol=1e-4),
                f"for data of shape {other} expected one NLL per example, shape ({other[0]},), "
                f"summed over all other axes; got shape {got.shape}: sum over "
                "axis=list(range(1, ndim)), not a fixed list of image axes.",
            )

    def works_in_a_train_step():
        _graph_case(gaussian_nll, name, x, mean, np.float32(-3.0))

    cases = [
        matches_the_nll,
        other_shapes,
        per_pixel_log_variances,
        a_perfect_mean_costs_only_the_spread,
        works_in_a_train_step,
    ]
    return run_check("check_gaussian_nll", gaussian_nll, cases, quiet=quiet, task="nll")


# --------------------------------------------------------------------------
# Task 3: a Gaussian VAE's train_step
# --------------------------------------------------------------------------

_REFERENCES = {  # what train_step calls for Tasks 1 and 2 while Task 3 is checked
    "gaussian_nll": """
def gaussian_nll(x, mean, log_var):
    terms = 0.5 * (np.log(2 * np.pi) + log_var + ops.square(x - mean) * ops.exp(-log_var))
    axes = list(range(1, len(ops.shape(terms))))
    return ops.sum(terms, axis=axes)
""",
    "gaussian_kl": """
def gaussian_kl(mu_q, log_var_q, mu_p, log_var_p):
    ratio, distance = ops.exp(log_var_q - log_var_p), ops.square(mu_q - mu_p)
    terms = 0.5 * (log_var_p - log_var_q + ratio + distance * ops.exp(-log_var_p) - 1.0)
    axes = list(range(1, len(ops.shape(terms))))
    return ops.sum(terms, axis=axes)
""",
}
LR = 0.01


def _sgd_step(w: dict, x, eps, beta: float, decoder_log_var: float) -> list:
    """The weights after one SGD step (LR) on the batch mean of nll + beta * KL, with the
    noise ``eps`` the learner's step drew: the gradient written out by the chain rule, in
    float64 NumPy (the same on every backend)."""
    names = ["w_mean", "b_mean", "w_log_var", "b_log_var", "w_dec", "b_dec"]
    v = {k: np.asarray(w[k], np.float64) for k in names}
    flat_x = np.asarray(x, np.float64).reshape(len(x), -1)
    n = len(flat_x)
    # forward: the linear encoder, the reparameterised code, the linear decoder
    z_mean = flat_x @ v["w_mean"] + v["b_mean"]
    z_log_var = flat_x @ v["w_log_var"] + v["b_log_var"]
    sigma = np.exp(0.5 * z_log_var)
    z = z_mean + sigma * eps
    x_mean = z @ v["w_dec"] + v["b_dec"]
    # backward: loss = mean over n of 0.5 * sum((x - x_mean)^2 / var + ...) + beta * KL
    d_x_mean = -(flat_x - x_mean) * np.exp(-decoder_log_var) / n
    d_z = d_x_mean @ v["w_dec"].T
    d_z_mean = d_z + beta * z_mean / n
    d_z_log_var = 0.5 * d_z * sigma * eps + 0.5 * beta * (np.exp(z_log_var) - 1.0) / n
    grads = {
        "w_mean": flat_x.T @ d_z_mean,
        "b_mean": d_z_mean.sum(axis=0),
        "w_log_var": flat_x.T @ d_z_log_var,
        "b_log_var": d_z_log_var.sum(axis=0),
        "w_dec": z.T @ d_x_mean,
        "b_dec": d_x_mean.sum(axis=0),
    }
    return [v[k] - LR * grads[k] for k in names]


def check_gaussian_vae(GaussianVAE, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``GaussianVAE(encoder, decoder, beta, decoder_log_var)`` whose ``train_step(x)`` draws
    z = mu + sigma * epsilon (fresh noise per example), computes the batch mean of
    gaussian_nll(x, decoder(z), decoder_log_var) + beta * KL(q(z|x) || N(0, I)), applies
    one optimizer step, and returns ``{"loss", "reconstruction", "kl"}``. The steps run on
    linear stand-in networks where the learner's class lives (a probe); the codes the decoder
    got, the logs and the weights after come here, and every sub-step is recomputed in
    float64: the noise, the loss, the update. ``hidden``: ``{"seed", "beta", "log_var",
    "flat": [d]}``."""
    cases_ = hidden_cases(hidden, "check_gaussian_vae")
    seed = int(cases_.get("seed", 40))
    beta, decoder_log_var = (
        float(cases_.get("beta", 2.0)),
        float(cases_.get("log_var", np.log(0.5))),
    )
    rng = np.random.default_rng(seed)
    setups = [  # a batch of images, and one example of another rank (a flat vector)
        {"x": rng.random((64, *IMAGE)).astype(np.float32)},
        {"x": rng.random((1, *cases_.get("flat", (12,)))).astype(np.float32)},
    ]
    for setup in setups:
        w = vae_weights(seed, setup["x"].shape[1:])
        flat_x = setup["x"].reshape(len(setup["x"]), -1).astype(np.float64)
        setup["w"] = w
        setup["z_mean"] = flat_x @ w["w_mean"] + w["b_mean"]
        setup["z_log_var"] = flat_x @ w["w_log_var"] + w["b_log_var"]
    main = setups[0]

    def one_step_trains_both_networks():
        for setup in setups:
            setup["report"] = run_probe(
                GaussianVAE,
                "vae_step",
                seed=seed,
                x=setup["x"],
                beta=beta,
                decoder_log_var=decoder_log_var,
                lr=LR,
                references=_REFERENCES,
                more=setup is main,  # (the noise of two steps and fit: on the batch only)
            )
            report, w = setup["report"], setup["w"]
            logs = report["logs"]
            expect(
                isinstance(logs, dict) and {"loss", "reconstruction", "kl"} <= set(logs),
                "train_step should return a dict with 'loss', 'reconstruction' and 'kl', got "
                f"{sorted(logs)}.",
            )
            before = {
                "encoder": flat([w["w_mean"], w["b_mean"], w["w_log_var"], w["b_log_var"]]),
                "decoder": flat([w["w_dec"], w["b_dec"]]),
            }
            for net, old in before.items():
                expect(
                    not np.allclose(old, flat(report["after"][net])),
                    f"the {net}'s weights did not change: take one step of self.optimizer on "
                    "self.trainable_variables with self.descend, and compute everything the "
                    "loss depends on (the encoder's outputs too) inside the loss function you "
                    "give it.",
                )
            seen, shape = report["seen"], setup["z_mean"].shape
            expect(
                len(seen) >= 1 and np.shape(seen[0]) == shape,
                f"the decoder should get codes of shape {shape}, got "
                f"{[np.shape(z) for z in seen]}.",
            )
            setup["z"] = np.asarray(seen[0], np.float64)

    def draws_fresh_noise():
        z, z_mean, z_log_var = main["z"], main["z_mean"], main["z_log_var"]
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
        # (192 standard normal draws: their standard deviation is 1 +- 0.05; the nearest
        # mistake, epsilon scaled by the variance, gives 2)
        expect(
            0.8 < spread < 1.2,
            f"(z - z_mean) / sigma should be standard normal; its standard deviation is "
            f"{spread:.2f}: draw epsilon with keras.random.normal and scale it by "
            "sigma = exp(0.5 * z_log_var).",
        )
        first, last = main["report"]["two_steps"]
        expect(
            not np.allclose(first, last),
            "two steps used the same noise: draw epsilon inside train_step with "
            "seed=self.seed_generator, not once in __init__.",
        )

    def reports_the_right_loss():
        for setup in setups:
            x, w, z = setup["x"], setup["w"], setup["z"]
            z_mean, z_log_var = setup["z_mean"], setup["z_log_var"]
            x_mean = (z @ w["w_dec"] + w["b_dec"]).reshape(x.shape)
            rec = _nll(x, x_mean, decoder_log_var)
            kl = _kl(z_mean, z_log_var, 0.0 * z_mean, 0.0 * z_log_var)
            logs = {key: float(_numbers(value)) for key, value in setup["report"]["logs"].items()}
            expected = float(np.mean(rec + beta * kl))
            d, k = int(np.prod(x.shape[1:])), LATENT
            mistakes = {
                "beta multiplies the reconstruction term: it weights the KL": np.mean(
                    beta * rec + kl
                ),
                "beta is missing: loss = reconstruction + beta * KL": np.mean(rec + kl),
                "the reconstruction term is averaged over the pixels: sum them": np.mean(
                    rec / d + beta * kl
                ),
                "the KL is averaged over the latent dimensions: sum them": np.mean(
                    rec + beta * kl / k
                ),
                "the KL term is missing": np.mean(rec),
            }
            if len(x) > 1:  # (a batch of one has the same sum and mean)
                mistakes["the loss is summed over the batch: average it"] = np.sum(rec + beta * kl)
            got = logs["loss"]
            if np.isclose(got, expected, rtol=1e-4):
                expect(
                    np.isclose(logs["reconstruction"], rec.mean(), rtol=1e-4)
                    and np.isclose(logs["kl"], kl.mean(), rtol=1e-4),
                    f"the loss is right, but report the batch means of the two terms: "
                    f"reconstruction {rec.mean():.3f} and kl {kl.mean():.3f}, got "
                    f"{logs['reconstruction']:.3f} and {logs['kl']:.3f}.",
                )
                continue
            for message, wrong in mistakes.items():
                expect(not np.isclose(got, wrong, rtol=1e-4), f"loss {got:.3f}: {message}.")
            raise CheckFailed(
                f"loss {got:.3f}, expected {expected:.3f}: the batch mean of "
                "gaussian_nll(x, decoder(z), decoder_log_var) + beta * gaussian_kl(z_mean, "
                "z_log_var, 0, 0), with the z the decoder got."
            )

    def the_update_is_one_step_on_that_loss():
        for setup in setups:
            eps = (setup["z"] - setup["z_mean"]) / np.exp(0.5 * setup["z_log_var"])
            w = setup["w"]
            expected = _sgd_step(w, setup["x"], eps, beta, decoder_log_var)
            after = setup["report"]["after"]
            got = [*after["encoder"], *after["decoder"]]
            start = [w[k] for k in ("w_mean", "b_mean", "w_log_var", "b_log_var", "w_dec", "b_dec")]
            moved = flat(got) - flat(start)
            should = flat(expected) - flat(start)
            # (float32 against float64: they agree to 1e-5 of the step; a loss summed over
            # the batch, or a gradient that skips the sampling, is off by far more)
            expect(
                moved.shape == should.shape
                and np.allclose(moved, should, rtol=1e-2, atol=1e-3 * np.abs(should).max()),
                "the weights moved, but not by one optimizer step on the batch-mean loss you "
                "report: compute the encoder, the sampling, the decoder and both terms inside "
                "the loss function you give self.descend, and let it differentiate the very "
                "loss you report.",
            )

    def trains_with_fit():
        fit = main["report"]["fit"]
        expect(
            "error" not in fit,
            "model.fit (train_step in a compiled step: tf.function or jax.jit) failed: "
            f"{fit.get('error')}: use keras.ops inside train_step, no NumPy.",
        )
        expect(
            {"loss", "reconstruction", "kl"} <= set(fit["logged"]),
            f"model.fit should log loss, reconstruction, kl, got {fit['logged']}.",
        )
        expect(
            fit["encoder_moved"],
            "in model.fit (a compiled step: tf.function or jax.jit) the encoder did not "
            "train: use keras.ops inside train_step, no NumPy.",
        )

    cases = [
        one_step_trains_both_networks,
        draws_fresh_noise,
        reports_the_right_loss,
        the_update_is_one_step_on_that_loss,
        trains_with_fit,
    ]
    return run_check("check_gaussian_vae", GaussianVAE, cases, quiet=quiet, task="gaussian_vae")


# --------------------------------------------------------------------------
# Task 4 (investigate): the decoder variance that fits best
# --------------------------------------------------------------------------


@functools.cache
def _mean_squared_errors() -> dict[str, float]:
    """The MSE of the mean training image as the prediction of the test (and the training)
    images of the experiment."""
    from tutorial_lib import data

    train, _ = data.load_images("mnist", "train", limit=1000)
    test, _ = data.load_images("mnist", "test", limit=500)
    mean = train.astype(np.float64).mean(axis=0, keepdims=True)
    return {
        "test": float(np.mean((test - mean) ** 2)),
        "train": float(np.mean((train - mean) ** 2)),
    }


def _nll_curve(variances, split: str = "test") -> np.ndarray:
    """The mean Gaussian NLL per image (784 pixels) for each shared variance."""
    v, d = np.asarray(variances, np.float64), 784
    return 0.5 * d * (LOG_2PI + np.log(v) + _mean_squared_errors()[split] / v)


def check_decoder_variance(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"variances": the sigma^2 tried, "nll": the mean NLL of the
    first 500 MNIST test images measured for each, "answer": the best sigma^2}``, the
    prediction being the mean of the first 1,000 training images. The curve is checked
    against the check's own run at the learner's points (within 0.1%, or 0.01 nats), the
    answer against the curve (its minimum, which the curve must bracket), then against
    the truth (5%: a grid of log-variances 0.01 apart is within 0.5%)."""
    state: dict = {}

    def returns_its_evidence():
        variances, nll, answer = read_evidence(
            experiment,
            {"variances": "the sigma^2 you tried", "nll": "the mean NLL you measured for each"},
            min_points=3,
        )
        expect(
            bool(np.all(np.isfinite(variances)) and np.all(variances > 0)),
            "every entry of 'variances' should be a variance sigma^2 > 0: if you searched over "
            "log-variances, report exp(log_var).",
        )
        expect(
            np.isfinite(answer),
            f"your answer is {answer}: expected the best variance sigma^2.",
        )
        state.update(variances=variances, nll=nll, answer=answer)

    def the_curve_is_a_measurement():
        variances, nll = state["variances"], state["nll"]
        truth = _nll_curve(variances)

        def same(a):
            return np.allclose(nll, a, rtol=1e-3, atol=1e-2)

        if same(truth):
            return
        d = 784
        mistakes = {
            "these are the NLLs of the *training* images; the question is about the test "
            "images": _nll_curve(variances, "train"),
            "the constant log(2 pi) is missing from your NLL": truth - 0.5 * d * LOG_2PI,
            "you averaged the NLL over the pixels: it is the sum over the pixels of an image, "
            "averaged over the images": truth / d,
            "you summed the NLL over the images: average it over the images": 500 * truth,
        }
        for message, wrong in mistakes.items():
            expect(not same(wrong), f"your curve: {message}.")
        bad = int(np.argmax(~np.isclose(nll, truth, rtol=1e-3, atol=1e-2)))
        raise CheckFailed(
            f"at sigma^2 = {variances[bad]:.4g} your mean NLL is {nll[bad]:.5g}; a rerun "
            "disagrees (it is not within 0.1%): predict every test image by the mean of the "
            "first 1,000 training images and average your gaussian_nll over the 500 images."
        )

    def the_answer_is_read_from_the_curve():
        variances, nll, answer = state["variances"], state["nll"], state["answer"]
        best = int(np.argmin(nll))
        expect(
            0 < best < len(nll) - 1,
            "your curve does not show a minimum: its lowest NLL is at the end of the "
            "variances you tried; try smaller and larger variances around it.",
        )
        low = variances[best]
        if answer < 0 and abs(answer - np.log(low)) <= 0.05 * abs(np.log(low)):
            raise CheckFailed("you answered the log-variance; return the variance exp(log_var).")
        if abs(answer - np.sqrt(low)) <= 0.05 * np.sqrt(low):
            raise CheckFailed("you answered the standard deviation; return the variance sigma^2.")
        expect(
            abs(answer - low) <= 0.05 * low,
            f"your answer {answer:.4g} is not where your own curve is lowest "
            f"(sigma^2 = {low:.4g}): read the answer off your measurement.",
        )

    def the_answer_is_the_truth():
        truth = _mean_squared_errors()["test"]
        expect(
            abs(state["answer"] - truth) <= 0.05 * truth,
            f"your answer {state['answer']:.4g} is not the best decoder variance (accepted "
            "within 5%): try the variances more finely around your curve's minimum.",
        )

    cases = [
        returns_its_evidence,
        the_curve_is_a_measurement,
        the_answer_is_read_from_the_curve,
        the_answer_is_the_truth,
    ]
    return run_check(
        "check_decoder_variance", experiment, cases, quiet=quiet, task="decoder_variance"
    )
