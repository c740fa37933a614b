"""The exercise checks of notebook 01: right answers pass, stubs are 'not attempted',
and typical wrong answers fail with the message meant for them."""

import keras
import numpy as np
import pytest
from check_helpers import expect_failure, stub

from tutorial_lib import autoencoder
from tutorial_lib.checks import FAILED, NOT_ATTEMPTED, PASSED, run_check
from tutorial_lib.checks import autoencoder as checks


def encoder(latent_dim, hidden=(256, 128), code_activation=None):
    inputs = keras.Input((28, 28, 1))
    h = keras.layers.Flatten()(inputs)
    for units in hidden:
        h = keras.layers.Dense(units, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(latent_dim, activation=code_activation)(h))


ALL_CHECKS = [
    checks.check_encoder,
    checks.check_add_noise,
    checks.check_reconstruction_errors,
    checks.check_threshold,
]
REFERENCES = [
    lambda d: autoencoder.build_dense_encoder(autoencoder.AutoencoderConfig(latent_dim=d)),
    autoencoder.add_noise,
    autoencoder.reconstruction_errors,
    autoencoder.choose_threshold,
]


@pytest.mark.parametrize("check, reference", list(zip(ALL_CHECKS, REFERENCES, strict=True)))
def test_the_reference_solution_passes(check, reference, capsys):
    result = check(reference)
    assert result.status == PASSED, result
    assert capsys.readouterr().out.startswith("[pass]")


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_a_stub_is_not_attempted_yet(check):
    result = check(stub, quiet=True)
    assert result.status == NOT_ATTEMPTED
    assert "not attempted yet" in str(result) and "stub" in str(result)


def test_encoder_with_the_wrong_bottleneck_size():
    expect_failure(
        checks.check_encoder(lambda d: encoder(64), quiet=True),
        "expected output shape (None, 32), got (None, 64): is your bottleneck layer the right size?",
    )


def test_encoder_ignoring_latent_dim():
    def fixed(latent_dim):
        return encoder(32)

    expect_failure(
        checks.check_encoder(fixed, quiet=True), "build_encoder(8)", "latent_dim argument"
    )


def test_encoder_with_a_relu_bottleneck():
    expect_failure(
        checks.check_encoder(lambda d: encoder(d, code_activation="relu"), quiet=True),
        "ReLU on the bottleneck",
    )


def test_encoder_with_wrong_hidden_sizes():
    expect_failure(
        checks.check_encoder(lambda d: encoder(d, hidden=(128, 64)), quiet=True),
        "parameters for Dense layers 784 -> 256 -> 128 -> 32",
    )


def test_encoder_that_returns_layers_not_a_model():
    expect_failure(
        checks.check_encoder(lambda d: [keras.layers.Dense(d)], quiet=True), "keras.Model"
    )


def test_noise_without_clipping():
    def unclipped(x, noise_factor, seed):
        rng = np.random.default_rng(seed)
        return (x + noise_factor * rng.standard_normal(x.shape)).astype(np.float32)

    expect_failure(checks.check_add_noise(unclipped, quiet=True), "must stay in [0, 1]", "np.clip")


def test_noise_ignoring_the_seed():
    def unseeded(x, noise_factor, seed):
        noisy = x + noise_factor * np.random.standard_normal(x.shape)
        return np.clip(noisy, 0, 1).astype(np.float32)

    expect_failure(checks.check_add_noise(unseeded, quiet=True), "seed=7 gave different images")


def test_uniform_noise_has_the_wrong_size():
    def uniform(x, noise_factor, seed):
        rng = np.random.default_rng(seed)
        noisy = x + noise_factor * rng.uniform(-1, 1, x.shape)
        return np.clip(noisy, 0, 1).astype(np.float32)

    expect_failure(
        checks.check_add_noise(uniform, quiet=True), "standard deviation", "standard normal"
    )


def test_noise_added_in_place():
    def in_place(x, noise_factor, seed):
        x += noise_factor * np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
        np.clip(x, 0, 1, out=x)
        return x

    expect_failure(checks.check_add_noise(in_place, quiet=True), "changed the images it was given")


def test_errors_averaged_over_the_whole_batch():
    def one_number(model, x):
        return float(np.mean(np.square(x - model.predict(x, verbose=0))))

    expect_failure(
        checks.check_reconstruction_errors(one_number, quiet=True),
        "expected one error per image, shape (10,), got ()",
        "also average over the images",
    )


def test_errors_summed_over_pixels():
    def summed(model, x):
        return np.sum(np.square(x - model.predict(x, verbose=0)), axis=(1, 2, 3))

    expect_failure(checks.check_reconstruction_errors(summed, quiet=True), "784 times")


def test_errors_not_squared():
    def absolute(model, x):
        return np.mean(np.abs(x - model.predict(x, verbose=0)), axis=(1, 2, 3))

    expect_failure(
        checks.check_reconstruction_errors(absolute, quiet=True), "square before averaging"
    )


def test_threshold_at_the_mean():
    expect_failure(
        checks.check_threshold(lambda e, rate: float(np.mean(e)), quiet=True),
        "flags 37.1% of the normal validation images",
        "expected about 5%",
    )


def test_threshold_at_the_low_quantile():
    expect_failure(
        checks.check_threshold(lambda e, rate: float(np.quantile(e, rate)), quiet=True),
        "did you take the low quantile?",
    )


def test_a_crash_in_learner_code_is_reported_with_its_type():
    def broken(x, noise_factor, seed):
        return x + undefined_name  # noqa: F821

    result = checks.check_add_noise(broken, quiet=True)
    expect_failure(result, "broken raised NameError")


def test_run_check_rejects_a_non_function():
    result = run_check("check_x", 42, [], quiet=True)
    assert result.status == FAILED and "expected a function" in result.message
