"""The exercise checks of notebook 02: right answers pass, stubs are 'not attempted',
and each typical mistake fails with the message that names it."""

import numpy as np
import pytest
from check_helpers import stub
from keras import ops

from tutorial_lib import vae
from tutorial_lib.checks import FAILED, NOT_ATTEMPTED, PASSED
from tutorial_lib.checks import vae as checks


def reference_sample_z(z_mean, z_log_var, epsilon):
    return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def reference_negative_elbo(x, logits, z_mean, z_log_var):
    reconstruction = -vae.bernoulli_log_likelihood(x, logits)
    return ops.mean(reconstruction + vae.kl_divergence(z_mean, z_log_var))


def _fails(result, *fragments):
    assert result.status == FAILED, result
    for fragment in fragments:
        assert fragment in result.message, result.message


@pytest.mark.parametrize(
    "check, reference",
    [
        (checks.check_sample_z, reference_sample_z),
        (checks.check_kl_term, vae.kl_divergence),
        (checks.check_negative_elbo, reference_negative_elbo),
    ],
)
def test_reference_passes_and_stub_is_not_attempted(check, reference):
    assert check(reference, quiet=True).status == PASSED
    assert check(stub, quiet=True).status == NOT_ATTEMPTED


def test_sampling_with_the_variance():
    _fails(
        checks.check_sample_z(lambda m, lv, e: m + np.exp(lv) * e, quiet=True),
        "scaled epsilon by the variance",
    )


def test_sampling_with_log_variance_as_sigma():
    _fails(
        checks.check_sample_z(lambda m, lv, e: m + lv * e, quiet=True),
        "used z_log_var as if it were sigma",
    )


def test_sampling_without_the_mean():
    _fails(checks.check_sample_z(lambda m, lv, e: np.exp(0.5 * lv) * e, quiet=True), "epsilon = 0")


def test_kl_with_the_wrong_sign():
    def flipped(m, lv):
        return 0.5 * np.sum(1 + lv - m**2 - np.exp(lv), axis=-1)

    _fails(checks.check_kl_term(flipped, quiet=True), "your KL is negative")


def test_kl_averaged_over_latent_dimensions():
    def averaged(m, lv):
        return -0.5 * np.mean(1 + lv - m**2 - np.exp(lv), axis=-1)

    _fails(checks.check_kl_term(averaged, quiet=True), "4 times too small", "sum them")


def test_kl_with_log_variance_read_as_sigma():
    def as_sigma(m, s):
        return -0.5 * np.sum(1 + np.log(s**2) - m**2 - s**2, axis=-1)

    _fails(checks.check_kl_term(as_sigma, quiet=True), "treated z_log_var as sigma")


def test_kl_averaged_over_the_batch():
    def one_number(m, lv):
        return np.mean(vae.kl_divergence(m, lv))

    _fails(checks.check_kl_term(one_number, quiet=True), "also average over the batch")


def test_elbo_with_reconstruction_averaged_over_pixels():
    def seed_style(x, logits, m, lv):
        per_pixel = -(x * logits - np.logaddexp(0, logits))
        return np.mean(np.mean(per_pixel, axis=(1, 2, 3)) + vae.kl_divergence(m, lv))

    _fails(checks.check_negative_elbo(seed_style, quiet=True), "784 times too small", "seed 002")


def test_elbo_with_the_wrong_sign():
    _fails(
        checks.check_negative_elbo(lambda *a: -reference_negative_elbo(*a), quiet=True),
        "returned the ELBO itself",
    )


def test_elbo_without_the_kl():
    def no_kl(x, logits, m, lv):
        return ops.mean(-vae.bernoulli_log_likelihood(x, logits))

    _fails(checks.check_negative_elbo(no_kl, quiet=True), "left out the KL")
