"""Checks for ``exercises/02_vae.ipynb``: the sampling step, the KL term, the ELBO.

The learner's functions may use NumPy or ``keras.ops``; results are compared
as NumPy arrays with the reference in :mod:`tutorial_lib.vae`.
"""

from __future__ import annotations

import numpy as np

from tutorial_lib import vae
from tutorial_lib.checks import CheckResult, expect, run_check

BATCH, LATENT = 6, 4


def _gaussian_params(seed: int = 0):
    rng = np.random.default_rng(seed)
    z_mean = rng.normal(size=(BATCH, LATENT)).astype(np.float32)
    z_log_var = rng.normal(scale=0.8, size=(BATCH, LATENT)).astype(np.float32)
    return z_mean, z_log_var


def _numbers(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


# --------------------------------------------------------------------------
# Task 1: the reparameterisation trick
# --------------------------------------------------------------------------


def check_sample_z(sample_z, *, quiet: bool = False) -> CheckResult:
    """``sample_z(z_mean, z_log_var, epsilon)`` = z_mean + exp(z_log_var / 2) * epsilon."""
    z_mean, z_log_var = _gaussian_params(1)
    epsilon = np.random.default_rng(2).standard_normal((BATCH, LATENT)).astype(np.float32)
    sigma = np.exp(0.5 * z_log_var)
    state = {}

    def has_the_right_shape():
        z = _numbers(sample_z(z_mean, z_log_var, epsilon))
        expect(z.shape == (BATCH, LATENT), f"expected z of shape {(BATCH, LATENT)}, got {z.shape}.")
        state["z"] = z

    def zero_noise_gives_the_mean():
        z0 = _numbers(sample_z(z_mean, z_log_var, np.zeros_like(epsilon)))
        expect(
            np.allclose(z0, z_mean, atol=1e-5),
            "with epsilon = 0, z should equal z_mean: start from z_mean and add the scaled noise.",
        )

    def scales_by_the_standard_deviation():
        z = state["z"]
        if np.allclose(z, z_mean + np.exp(z_log_var) * epsilon, atol=1e-4):
            message = (
                "you scaled epsilon by the variance exp(z_log_var); scale it by the standard "
                "deviation sigma = exp(0.5 * z_log_var)."
            )
        elif np.allclose(z, z_mean + z_log_var * epsilon, atol=1e-4):
            message = (
                "you used z_log_var as if it were sigma; it is log(sigma^2), so "
                "sigma = exp(0.5 * z_log_var)."
            )
        else:
            message = "z should be z_mean + exp(0.5 * z_log_var) * epsilon."
        expect(np.allclose(z, z_mean + sigma * epsilon, atol=1e-4), message)

    cases = [has_the_right_shape, zero_noise_gives_the_mean, scales_by_the_standard_deviation]
    return run_check("check_sample_z", sample_z, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 2: the KL term
# --------------------------------------------------------------------------


def check_kl_term(kl_term, *, quiet: bool = False) -> CheckResult:
    """``kl_term(z_mean, z_log_var)``: KL(N(mu, sigma^2) || N(0, I)) per example, shape (batch,),
    summed over the latent dimensions."""
    z_mean, z_log_var = _gaussian_params(3)
    reference = _numbers(vae.kl_divergence(z_mean, z_log_var))
    state = {}

    def one_value_per_example():
        kl = _numbers(kl_term(z_mean, z_log_var))
        hint = ": did you also average over the batch?" if kl.ndim == 0 else "."
        expect(
            kl.shape == (BATCH,),
            f"expected one KL per example, shape ({BATCH},), got {kl.shape}{hint}",
        )
        state["kl"] = kl

    def zero_at_the_prior():
        kl = _numbers(kl_term(np.zeros((2, LATENT), np.float32), np.zeros((2, LATENT), np.float32)))
        expect(
            np.allclose(kl, 0.0, atol=1e-6),
            f"the KL of N(0, I) to itself must be 0; yours gives {kl[0]:.3f}: check the '1 +' term.",
        )

    def has_the_right_sign():
        expect(
            np.all(state["kl"] >= 0),
            "your KL is negative: a KL divergence is never below 0. The formula is "
            "-0.5 * sum(1 + log_var - mu^2 - exp(log_var)): mind the leading minus sign.",
        )

    def sums_over_latent_dimensions():
        kl = state["kl"]
        if np.allclose(kl * LATENT, reference, rtol=1e-4):
            message = (
                f"your KL is {LATENT} times too small: you averaged over the latent dimensions; "
                "sum them (the KL of independent dimensions adds up)."
            )
        elif np.allclose(
            kl, _numbers(vae.kl_divergence(z_mean, np.log(z_log_var**2 + 1e-30))), rtol=1e-3
        ):
            message = (
                "you treated z_log_var as sigma; it is log(sigma^2): use exp(z_log_var) for "
                "the variance and z_log_var itself for its log."
            )
        else:
            message = (
                f"for the first example expected {reference[0]:.4f}, got {kl[0]:.4f}: use "
                "-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var), axis=-1)."
            )
        expect(np.allclose(kl, reference, rtol=1e-4), message)

    cases = [
        one_value_per_example,
        has_the_right_sign,
        sums_over_latent_dimensions,
        zero_at_the_prior,
    ]
    return run_check("check_kl_term", kl_term, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 3: the negative ELBO
# --------------------------------------------------------------------------


def check_negative_elbo(negative_elbo, *, quiet: bool = False) -> CheckResult:
    """``negative_elbo(x, logits, z_mean, z_log_var)``: the batch mean of
    -log p(x|z) (summed over pixels, Bernoulli with logits) + KL (summed over dims)."""
    rng = np.random.default_rng(4)
    x = (rng.random((BATCH, 28, 28, 1)) > 0.6).astype(np.float32)
    logits = rng.normal(scale=2.0, size=x.shape).astype(np.float32)
    z_mean, z_log_var = _gaussian_params(5)
    reconstruction = -_numbers(vae.bernoulli_log_likelihood(x, logits))
    kl = _numbers(vae.kl_divergence(z_mean, z_log_var))
    reference = float(np.mean(reconstruction + kl))

    def returns_one_number():
        value = _numbers(negative_elbo(x, logits, z_mean, z_log_var))
        expect(value.ndim == 0, f"expected one number (the batch mean), got shape {value.shape}.")

    def matches_the_definition():
        value = float(_numbers(negative_elbo(x, logits, z_mean, z_log_var)))
        pixels_mean = float(np.mean(reconstruction / 784 + kl))
        if np.isclose(value, -reference, rtol=1e-4):
            message = (
                "you returned the ELBO itself (negative here); the loss to minimise is its "
                "negative: reconstruction loss + KL."
            )
        elif np.isclose(value, pixels_mean, rtol=1e-3) or np.isclose(
            value, float(np.mean(reconstruction / 784 + kl / LATENT)), rtol=1e-3
        ):
            message = (
                "you averaged the reconstruction term over the pixels (as seed 002 does): "
                "that makes it 784 times too small next to the KL. Sum over the pixels, then "
                "average over the batch."
            )
        elif np.isclose(value, float(np.mean(reconstruction)), rtol=1e-4):
            message = "you left out the KL term: add kl_divergence(z_mean, z_log_var)."
        else:
            message = (
                f"expected {reference:.3f} nats, got {value:.3f}: sum x*logits - softplus(logits) "
                "over the pixels for log p(x|z), negate it, add the KL, average over the batch."
            )
        expect(np.isclose(value, reference, rtol=1e-4), message)

    cases = [returns_one_number, matches_the_definition]
    return run_check("check_negative_elbo", negative_elbo, cases, quiet=quiet)
