"""Checks for ``exercises/05_diffusion.ipynb``: the forward noising step, the
training loss, one DDIM update.

The learner's functions take NumPy arrays and the schedule's ``alpha_bars``
(indexed ``t = 0 .. T-1``, as in :mod:`tutorial_lib.diffusion`). Each check
compares with the reference formulas on hidden cases, and recognises the
usual mistakes (a square root missing on alpha-bar, noise of the wrong scale,
a step index off by one) to name them.
"""

from __future__ import annotations

import numpy as np

from tutorial_lib import diffusion
from tutorial_lib.checks import CheckResult, expect, run_check

T = 50
SCHEDULE = diffusion.make_schedule("linear", T)
ALPHA_BARS = SCHEDULE.alpha_bars.astype(np.float32)


def _numbers(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _case(n: int = 6, seed: int = 0, t=None):
    """Images in [-1, 1], one step per image, and standard normal noise."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32)
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    t = rng.integers(1, T - 1, n) if t is None else np.asarray(t)
    return x0, t.astype(np.int64), noise


def _per_image(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    return values[t].reshape(-1, 1, 1, 1).astype(np.float64)


def _forward(x0, t, noise, alpha_bars=ALPHA_BARS, shift: int = 0) -> np.ndarray:
    ab = _per_image(np.asarray(alpha_bars, np.float64), np.clip(t + shift, 0, T - 1))
    return np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * noise


def _close(a, b) -> bool:
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-4, atol=1e-4)


def _forward_mistake(x_t, x0, t, noise) -> str:
    """Name the mistake behind a wrong x_t, if it is a usual one."""
    ab = _per_image(ALPHA_BARS.astype(np.float64), t)
    variants = [
        (
            ab * x0 + np.sqrt(1.0 - ab) * noise,
            "the square root is missing on alpha-bar: the clean image is scaled by "
            "sqrt(alpha_bar_t), not alpha_bar_t.",
        ),
        (
            ab * x0 + (1.0 - ab) * noise,
            "the square roots are missing: x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) "
            "* noise (the *variances* are alpha_bar_t and 1 - alpha_bar_t).",
        ),
        (
            np.sqrt(ab) * x0 + (1.0 - ab) * noise,
            "the noise has the wrong scale: multiply it by the standard deviation "
            "sqrt(1 - alpha_bar_t), not by the variance 1 - alpha_bar_t.",
        ),
        (
            np.sqrt(ab) * x0 + noise,
            "the noise has the wrong scale: you added it unscaled; multiply it by "
            "sqrt(1 - alpha_bar_t) so that x_t has variance 1 in total.",
        ),
        (
            np.sqrt(ab) * x0 + np.sqrt(_per_image(SCHEDULE.betas, t)) * noise,
            "the noise has the wrong scale: sqrt(beta_t) is the noise of ONE step; jumping "
            "straight from x0 to x_t takes sqrt(1 - alpha_bar_t).",
        ),
        (
            np.sqrt(1.0 - ab) * x0 + np.sqrt(ab) * noise,
            "signal and noise are swapped: the image gets sqrt(alpha_bar_t), the noise "
            "sqrt(1 - alpha_bar_t).",
        ),
    ]
    for shift in (-1, 1):
        variants.append(
            (
                _forward(x0, t, noise, shift=shift),
                f"the timestep is off by one: you used alpha_bars[t {'-' if shift < 0 else '+'} 1]; "
                "use alpha_bars[t] (step t of the code is index t of the array).",
            )
        )
    for variant, message in variants:
        if _close(x_t, variant):
            return message
    return "x_t should be sqrt(alpha_bars[t]) * x0 + sqrt(1 - alpha_bars[t]) * noise."


# --------------------------------------------------------------------------
# Task 1: the forward noising step
# --------------------------------------------------------------------------


def check_forward_noise(forward_noise, *, quiet: bool = False) -> CheckResult:
    """``forward_noise(x0, t, noise, alpha_bars)``: x_t of every image, one step
    index per image: sqrt(alpha_bars[t]) * x0 + sqrt(1 - alpha_bars[t]) * noise."""
    x0, t, noise = _case(6, seed=1)
    state = {}

    def keeps_the_shape():
        x_t = _numbers(forward_noise(x0, t, noise, ALPHA_BARS))
        hint = ""
        if x_t.ndim == 4 and x_t.shape[-1] == len(t):
            hint = (
                ": alpha_bars[t] has shape (N,) and broadcast along the wrong axis; reshape it "
                "to (N, 1, 1, 1) so each image gets its own step."
            )
        expect(x_t.shape == x0.shape, f"expected x_t of shape {x0.shape}, got {x_t.shape}{hint}")
        state["x_t"] = x_t

    def matches_the_closed_form():
        x_t = state["x_t"]
        expect(_close(x_t, _forward(x0, t, noise)), _forward_mistake(x_t, x0, t, noise))

    def each_image_gets_its_own_step():
        steps = np.array([1, 10, 25, 40, 48, 5])
        x_t = _numbers(forward_noise(x0, steps, noise, ALPHA_BARS))
        expect(
            _close(x_t, _forward(x0, steps, noise)),
            "right for some images, wrong for others: use alpha_bars[t] per image (t holds "
            "one step per image), reshaped to (N, 1, 1, 1).",
        )

    def ends_in_noise_starts_near_the_image():
        zero = np.zeros_like(x0)
        last = _numbers(forward_noise(x0, np.full(6, T - 1), zero, ALPHA_BARS))
        expect(
            np.abs(last).max() < np.abs(x0).max() * 0.2,
            "with zero noise at the last step x_t should be nearly 0 (all signal gone).",
        )

    def has_unit_variance_for_unit_variance_data():
        rng = np.random.default_rng(5)
        big = rng.standard_normal((64, 28, 28, 1)).astype(np.float32)
        eps = rng.standard_normal(big.shape).astype(np.float32)
        var = float(np.var(_numbers(forward_noise(big, np.full(64, 30), eps, ALPHA_BARS))))
        expect(
            abs(var - 1.0) < 0.05,
            f"for data of variance 1, x_t should have variance 1 at every step; yours has {var:.2f}.",
        )

    cases = [
        keeps_the_shape,
        matches_the_closed_form,
        each_image_gets_its_own_step,
        ends_in_noise_starts_near_the_image,
        has_unit_variance_for_unit_variance_data,
    ]
    return run_check("check_forward_noise", forward_noise, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 2: the training loss
# --------------------------------------------------------------------------


class _RecordingNetwork:
    """A stand-in noise predictor: a fixed function of x_t and t that records its inputs."""

    def __init__(self):
        self.calls = []

    def __call__(self, x_t, t):
        x_t, t = _numbers(x_t), _numbers(t)
        self.calls.append((x_t, t))
        return 0.5 * x_t + 0.01 * t.reshape(-1, 1, 1, 1)


def _loss_mistake(loss, x0, t, noise, net_output, x_t) -> str:
    variants = [
        (
            np.mean((x0 - net_output) ** 2),
            "the target is the noise that was added, not the clean image x0.",
        ),
        (
            np.mean((x_t - net_output) ** 2),
            "the target is the noise that was added, not the noisy x_t.",
        ),
        (
            np.sum((noise - net_output) ** 2),
            "you summed the squared errors: take their mean (np.mean), as the MSE does.",
        ),
        (
            np.mean(np.abs(noise - net_output)),
            "that is the mean absolute error: square the differences (np.mean((noise - pred) ** 2)).",
        ),
        (
            np.mean(noise - net_output) ** 2,
            "square each difference before averaging, not the mean.",
        ),
    ]
    for value, message in variants:
        if np.isclose(loss, value, rtol=1e-4):
            return message
    return "the loss should be np.mean((noise - network(x_t, t)) ** 2)."


def check_diffusion_loss(diffusion_loss, *, quiet: bool = False) -> CheckResult:
    """``diffusion_loss(network, x0, t, noise, alpha_bars)``: noise ``x0`` to ``x_t``
    (step ``t`` of each image), predict the noise with ``network(x_t, t)``, and
    return the mean squared error between the true and the predicted noise."""
    x0, t, noise = _case(5, seed=2)
    state = {}

    def returns_one_number():
        network = _RecordingNetwork()
        loss = _numbers(diffusion_loss(network, x0, t, noise, ALPHA_BARS))
        expect(
            loss.ndim == 0,
            f"expected one number (the mean over everything), got shape {loss.shape}.",
        )
        expect(
            len(network.calls) == 1,
            f"call the network once per loss; it was called {len(network.calls)} times.",
        )
        state["loss"], state["call"] = float(loss), network.calls[0]

    def gives_the_network_the_noisy_images():
        x_t, _ = state["call"]
        expected = _forward(x0, t, noise)
        if _close(x_t, x0):
            message = (
                "the network got the clean images x0: give it x_t, the images noised to step t."
            )
        else:
            message = "the network got the wrong input: " + _forward_mistake(x_t, x0, t, noise)
        expect(_close(x_t, expected), message)

    def gives_the_network_the_same_step():
        _, steps = state["call"]
        if np.array_equal(steps.reshape(-1), t + 1) or np.array_equal(steps.reshape(-1), t - 1):
            message = (
                "the timestep is off by one: the network must be told the step t the images "
                "were noised to, t itself."
            )
        else:
            message = (
                f"the network should get the steps t = {t.tolist()}, got {steps.ravel().tolist()}."
            )
        expect(steps.size == t.size and np.array_equal(steps.reshape(-1), t), message)

    def is_the_mse_to_the_noise():
        x_t = _forward(x0, t, noise)
        output = 0.5 * x_t + 0.01 * t.reshape(-1, 1, 1, 1)
        reference = float(np.mean((noise - output) ** 2))
        expect(
            np.isclose(state["loss"], reference, rtol=1e-4),
            _loss_mistake(state["loss"], x0, t, noise, output, x_t),
        )

    cases = [
        returns_one_number,
        gives_the_network_the_noisy_images,
        gives_the_network_the_same_step,
        is_the_mse_to_the_noise,
    ]
    return run_check("check_diffusion_loss", diffusion_loss, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 3: one DDIM update
# --------------------------------------------------------------------------


def _ddim(x_t, eps, t, t_prev, alpha_bars=ALPHA_BARS):
    ab = float(alpha_bars[t])
    ab_prev = float(alpha_bars[t_prev]) if t_prev >= 0 else 1.0
    x0 = (x_t - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)
    return np.sqrt(ab_prev) * x0 + np.sqrt(1.0 - ab_prev) * eps


def _ddim_mistake(out, x_t, eps, t, t_prev) -> str:
    ab = float(ALPHA_BARS[t])
    ab_prev = float(ALPHA_BARS[t_prev]) if t_prev >= 0 else 1.0
    x0 = (x_t - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)
    x0_nosqrt = (x_t - np.sqrt(1.0 - ab) * eps) / ab
    variants = [
        (
            np.sqrt(ab_prev) * x0_nosqrt + np.sqrt(1.0 - ab_prev) * eps,
            "the square root is missing on alpha-bar: x0_hat = (x_t - sqrt(1 - alpha_bar_t) * eps) "
            "/ sqrt(alpha_bar_t).",
        ),
        (
            ab_prev * x0 + np.sqrt(1.0 - ab_prev) * eps,
            "the square root is missing on alpha-bar: the new signal is sqrt(alpha_bar_prev) * x0_hat.",
        ),
        (
            np.sqrt(ab_prev) * x0 + np.sqrt(1.0 - ab) * eps,
            "the noise has the wrong scale: at the new step it is sqrt(1 - alpha_bar_prev) * eps, "
            "not sqrt(1 - alpha_bar_t).",
        ),
        (
            np.sqrt(ab_prev) * x0 + (1.0 - ab_prev) * eps,
            "the noise has the wrong scale: multiply eps by sqrt(1 - alpha_bar_prev), the standard "
            "deviation, not by the variance.",
        ),
        (
            x0,
            "you returned the x0 estimate itself: move to step t_prev, re-noising with the same eps.",
        ),
    ]
    for shift in (-1, 1):
        if 0 <= t + shift < T:
            variants.append(
                (
                    _ddim(x_t, eps, t + shift, t_prev),
                    f"the timestep is off by one: you used alpha_bars[t {'-' if shift < 0 else '+'} 1] "
                    "for the current step; use alpha_bars[t].",
                )
            )
        if 0 <= t_prev + shift < T:
            variants.append(
                (
                    _ddim(x_t, eps, t, t_prev + shift),
                    f"the timestep is off by one: you used alpha_bars[t_prev {'-' if shift < 0 else '+'} 1] "
                    "for the new step; use alpha_bars[t_prev].",
                )
            )
    for variant, message in variants:
        if _close(out, variant):
            return message
    return (
        "expected sqrt(ab_prev) * x0_hat + sqrt(1 - ab_prev) * eps with "
        "x0_hat = (x_t - sqrt(1 - ab_t) * eps) / sqrt(ab_t)."
    )


def check_ddim_update(ddim_update, *, quiet: bool = False) -> CheckResult:
    """``ddim_update(x_t, eps, t, t_prev, alpha_bars)``: one deterministic DDIM step
    (eta = 0) from step ``t`` to the earlier step ``t_prev``; ``t_prev = -1`` means
    "to clean data" (alpha-bar 1)."""
    rng = np.random.default_rng(3)
    x_t = rng.standard_normal((4, 28, 28, 1)).astype(np.float32)
    eps = rng.standard_normal(x_t.shape).astype(np.float32)
    state = {}

    def keeps_the_shape():
        out = _numbers(ddim_update(x_t, eps, 30, 20, ALPHA_BARS))
        expect(out.shape == x_t.shape, f"expected shape {x_t.shape}, got {out.shape}.")
        state["out"] = out

    def matches_the_ddim_formula():
        expect(
            _close(state["out"], _ddim(x_t, eps, 30, 20)),
            _ddim_mistake(state["out"], x_t, eps, 30, 20),
        )

    def works_for_any_jump():
        for t, t_prev in ((49, 0), (10, 9), (25, 5)):
            out = _numbers(ddim_update(x_t, eps, t, t_prev, ALPHA_BARS))
            expect(_close(out, _ddim(x_t, eps, t, t_prev)), _ddim_mistake(out, x_t, eps, t, t_prev))

    def the_last_step_gives_clean_data():
        out = _numbers(ddim_update(x_t, eps, 5, -1, ALPHA_BARS))
        x0 = _ddim(x_t, eps, 5, -1)
        if _close(out, _ddim(x_t, eps, 5, T - 1)):
            message = (
                "for t_prev = -1 you used alpha_bars[-1], which Python reads as the LAST step "
                "(almost pure noise); the step before the first is clean data: alpha-bar = 1."
            )
        else:
            message = (
                "with t_prev = -1 return the x0 estimate (alpha_bar_prev = 1). "
                + _ddim_mistake(out, x_t, eps, 5, -1)
            )
        expect(_close(out, x0), message)

    def the_true_noise_recovers_the_image():
        x0, t, noise = _case(3, seed=4, t=np.full(3, 40))
        x_t40 = _forward(x0, t, noise)
        out = _numbers(ddim_update(x_t40, noise, 40, -1, ALPHA_BARS))
        expect(
            np.allclose(out, x0, atol=1e-3),
            "given the exact noise, one jump to t_prev = -1 must return the clean image.",
        )

    cases = [
        keeps_the_shape,
        matches_the_ddim_formula,
        works_for_any_jump,
        the_last_step_gives_clean_data,
        the_true_noise_recovers_the_image,
    ]
    return run_check("check_ddim_update", ddim_update, cases, quiet=quiet)
