"""Checks for ``exercises/01_autoencoder.ipynb``.

Each check takes the learner's function and compares it, on hidden cases,
with the reference in :mod:`tutorial_lib.autoencoder`.
"""

from __future__ import annotations

import keras
import numpy as np

from tutorial_lib import autoencoder
from tutorial_lib.checks import CheckFailed, CheckResult, expect, run_check


def _images(n: int = 16, seed: int = 0) -> np.ndarray:
    """Fixed random 'images' in [0, 1] (the checks need no data set)."""
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype(np.float32)


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


# --------------------------------------------------------------------------
# Task 1: the encoder
# --------------------------------------------------------------------------


def check_encoder(build_encoder, *, quiet: bool = False) -> CheckResult:
    """``build_encoder(latent_dim)``: a keras.Model, images (28, 28, 1) -> codes
    (latent_dim,), dense 784 -> 256 -> 128 -> latent_dim, ReLU hidden layers,
    linear code."""
    state = {}

    def returns_a_model():
        model = build_encoder(32)
        expect(
            isinstance(model, keras.Model),
            f"build_encoder(32) should return a keras.Model, got {type(model).__name__}: "
            "end with `return keras.Model(inputs, outputs)`.",
        )
        state["model"] = model

    def maps_images_to_codes():
        model = state["model"]
        try:
            codes = np.asarray(model(_images(5)))
        except Exception as error:
            raise CheckFailed(
                "could not apply your encoder to images of shape (5, 28, 28, 1) "
                f"({type(error).__name__}: {error}): does it start with keras.Input((28, 28, 1)) "
                "followed by a Flatten layer?"
            ) from None
        expect(
            codes.shape == (5, 32),
            f"expected output shape (None, 32), got {_shape((None, *codes.shape[1:]))}: "
            "is your bottleneck layer the right size?",
        )
        state["codes"] = codes

    def uses_latent_dim():
        codes = np.asarray(build_encoder(8)(_images(3)))
        expect(
            codes.shape == (3, 8),
            f"build_encoder(8) gives codes of shape {_shape((None, *codes.shape[1:]))}, "
            "expected (None, 8): use the latent_dim argument, not a fixed number.",
        )

    def has_the_seed_architecture():
        expected = autoencoder.build_dense_encoder(autoencoder.AutoencoderConfig()).count_params()
        got = state["model"].count_params()
        expect(
            got == expected,
            f"expected {expected:,} parameters for Dense layers 784 -> 256 -> 128 -> 32, "
            f"got {got:,}: check the hidden layer sizes (256, then 128).",
        )

    def code_is_linear():
        codes = np.asarray(state["model"](_images(64, seed=1)))
        expect(
            (codes < 0).any(),
            "all 2,048 code values are >= 0: is there a ReLU on the bottleneck? "
            "Leave the last Dense layer linear (no activation) so no code unit can die.",
        )

    def gradients_reach_every_layer():
        import tensorflow as tf

        model = state["model"]
        x = tf.constant(_images(8, seed=2))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads, strict=True):
            expect(
                grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0,
                f"no gradient reaches {variable.path}: is every layer connected from "
                "the input to the output (each layer called on the previous one's output)?",
            )

    cases = [
        returns_a_model,
        maps_images_to_codes,
        uses_latent_dim,
        has_the_seed_architecture,
        code_is_linear,
        gradients_reach_every_layer,
    ]
    return run_check("check_encoder", build_encoder, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 2: the denoising corruption
# --------------------------------------------------------------------------


def check_add_noise(add_noise, *, quiet: bool = False) -> CheckResult:
    """``add_noise(x, noise_factor, seed)``: x + noise_factor * N(0, 1), clipped
    to [0, 1], float32, same shape, reproducible with the seed, input unchanged."""
    x = _images(16)
    grey = np.full((64, 28, 28, 1), 0.5, dtype=np.float32)

    def keeps_shape_and_dtype():
        noisy = np.asarray(add_noise(x, 0.3, 0))
        expect(
            noisy.shape == x.shape and noisy.dtype == np.float32,
            f"expected float32 images of shape {x.shape}, got {noisy.dtype} of shape "
            f"{noisy.shape}: return an array like the input (use .astype(np.float32)).",
        )

    def leaves_the_input_alone():
        before = x.copy()
        add_noise(x, 0.3, 0)
        expect(
            np.array_equal(x, before),
            "add_noise changed the images it was given: compute a new array, do not add in place.",
        )

    def stays_in_range():
        noisy = np.asarray(add_noise(x, 0.5, 0))
        expect(
            noisy.min() >= 0.0 and noisy.max() <= 1.0,
            f"noisy images must stay in [0, 1]; found values in [{noisy.min():.2f}, "
            f"{noisy.max():.2f}]: clip them with np.clip(noisy, 0.0, 1.0).",
        )

    def zero_noise_changes_nothing():
        same = np.asarray(add_noise(x, 0.0, 0))
        expect(
            np.allclose(same, x, atol=1e-6),
            "with noise_factor=0 the images should come back unchanged: multiply the "
            "noise by noise_factor.",
        )

    def noise_has_the_right_size():
        for factor in (0.1, 0.2):
            std = float(np.std(np.asarray(add_noise(grey, factor, 0)) - grey))
            expect(
                abs(std - factor) < 0.1 * factor,
                f"with noise_factor={factor} the added noise has standard deviation "
                f"{std:.3f}, expected {factor}: add noise_factor * (standard normal noise), "
                "e.g. rng.standard_normal(x.shape), not uniform noise.",
            )

    def seed_makes_it_reproducible():
        first, again = np.asarray(add_noise(x, 0.3, 7)), np.asarray(add_noise(x, 0.3, 7))
        other = np.asarray(add_noise(x, 0.3, 8))
        expect(
            np.array_equal(first, again),
            "two calls with seed=7 gave different images: draw the noise from "
            "rng = np.random.default_rng(seed).",
        )
        expect(not np.array_equal(first, other), "seeds 7 and 8 gave the same noise: use seed.")

    cases = [
        keeps_shape_and_dtype,
        leaves_the_input_alone,
        stays_in_range,
        zero_noise_changes_nothing,
        noise_has_the_right_size,
        seed_makes_it_reproducible,
    ]
    return run_check("check_add_noise", add_noise, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 3: reconstruction error per image
# --------------------------------------------------------------------------


def _halving_model() -> keras.Model:
    """A stand-in 'autoencoder' that reconstructs every pixel at half its value."""
    inputs = keras.Input((28, 28, 1))
    return keras.Model(inputs, keras.layers.Rescaling(0.5)(inputs))


def check_reconstruction_errors(reconstruction_errors, *, quiet: bool = False) -> CheckResult:
    """``reconstruction_errors(model, x)``: the mean squared error of each image,
    shape (N,), averaged over its pixels."""
    model, x = _halving_model(), _images(10)
    reference = np.mean(np.square(x - 0.5 * x), axis=(1, 2, 3))
    state = {}

    def one_error_per_image():
        errors = np.asarray(reconstruction_errors(model, x))
        hint = (
            ": did you also average over the images? Average over axes (1, 2, 3) only."
            if errors.ndim == 0
            else "."
        )
        expect(
            errors.shape == (10,),
            f"expected one error per image, shape (10,), got {errors.shape}{hint}",
        )
        state["errors"] = errors

    def averages_over_pixels():
        ratio = float(np.median(state["errors"] / reference))
        expect(
            not np.isclose(ratio, 784, rtol=1e-3),
            "your errors are 784 times the mean squared error: average over the pixels "
            "(np.mean) instead of summing them.",
        )

    def matches_the_mse():
        close = np.allclose(state["errors"], reference, rtol=1e-4)
        expect(
            close,
            f"for the first image expected {reference[0]:.5f}, got {state['errors'][0]:.5f}: "
            "compute the mean of (x - model.predict(x))**2 over each image's pixels "
            "(square before averaging).",
        )

    cases = [one_error_per_image, averages_over_pixels, matches_the_mse]
    return run_check("check_reconstruction_errors", reconstruction_errors, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 4: the anomaly threshold
# --------------------------------------------------------------------------


def check_threshold(choose_threshold, *, quiet: bool = False) -> CheckResult:
    """``choose_threshold(normal_errors, false_alarm_rate)``: the error above which
    a fraction ``false_alarm_rate`` of the normal validation images lies."""
    errors = np.random.default_rng(3).exponential(0.02, size=20_000)

    def returns_a_number():
        value = choose_threshold(errors, 0.05)
        expect(
            np.ndim(value) == 0,
            f"expected a single number, got an array of shape {np.shape(value)}.",
        )

    def flags_the_requested_fraction():
        for rate in (0.05, 0.01):
            flagged = float(np.mean(errors > float(choose_threshold(errors, rate))))
            if flagged > 0.5:
                hint = (
                    "did you take the low quantile? Use np.quantile(errors, 1 - false_alarm_rate)."
                )
            else:
                hint = "use the quantile np.quantile(errors, 1 - false_alarm_rate), not the mean or max."
            expect(
                abs(flagged - rate) <= 0.2 * rate,
                f"with false_alarm_rate={rate} your threshold flags {flagged:.1%} of the normal "
                f"validation images, expected about {rate:.0%}: {hint}",
            )

    cases = [returns_a_number, flags_the_requested_fraction]
    return run_check("check_threshold", choose_threshold, cases, quiet=quiet)
