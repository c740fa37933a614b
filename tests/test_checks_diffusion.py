"""The exercise checks of notebook 05: right answers pass, stubs are 'not attempted',
and the usual wrong answers fail with a message that names the mistake."""

import numpy as np
import pytest
from check_helpers import expect_failure, stub

from tutorial_lib.checks import NOT_ATTEMPTED, PASSED
from tutorial_lib.checks import diffusion as checks


def _ab(alpha_bars, t):
    return np.asarray(alpha_bars)[t].reshape(-1, 1, 1, 1)


# Reference answers, as a learner would write them.
def forward_noise(x0, t, noise, alpha_bars):
    ab = _ab(alpha_bars, t)
    return np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise


def diffusion_loss(network, x0, t, noise, alpha_bars):
    x_t = forward_noise(x0, t, noise, alpha_bars)
    return np.mean((noise - network(x_t, t)) ** 2)


def ddim_update(x_t, eps, t, t_prev, alpha_bars):
    ab = alpha_bars[t]
    ab_prev = alpha_bars[t_prev] if t_prev >= 0 else 1.0
    x0 = (x_t - np.sqrt(1 - ab) * eps) / np.sqrt(ab)
    return np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps


ALL = [
    (checks.check_forward_noise, forward_noise),
    (checks.check_diffusion_loss, diffusion_loss),
    (checks.check_ddim_update, ddim_update),
]


@pytest.mark.parametrize("check, reference", ALL)
def test_the_reference_solution_passes(check, reference, capsys):
    result = check(reference)
    assert result.status == PASSED, result
    assert capsys.readouterr().out.startswith("[pass]")


def test_the_library_formulas_pass_too():
    from tutorial_lib import diffusion

    schedule = checks.SCHEDULE

    def library_forward(x0, t, noise, alpha_bars):
        return np.asarray(diffusion.q_sample(schedule, x0, t, noise))

    assert checks.check_forward_noise(library_forward, quiet=True).passed

    def library_ddim(x_t, eps, t, t_prev, alpha_bars):
        return diffusion.ddim_step(schedule, x_t, eps, t, t_prev)

    assert checks.check_ddim_update(library_ddim, quiet=True).passed


@pytest.mark.parametrize("check, _", ALL)
def test_a_stub_is_not_attempted_yet(check, _):
    result = check(stub, quiet=True)
    assert result.status == NOT_ATTEMPTED and "not attempted yet" in str(result)


# --- Task 1: forward noising ----------------------------------------------


def test_forward_without_the_square_root_on_alpha_bar():
    def wrong(x0, t, noise, alpha_bars):
        ab = _ab(alpha_bars, t)
        return ab * x0 + np.sqrt(1 - ab) * noise

    expect_failure(
        checks.check_forward_noise(wrong, quiet=True), "square root is missing on alpha-bar"
    )


def test_forward_with_noise_scaled_by_the_variance():
    def wrong(x0, t, noise, alpha_bars):
        ab = _ab(alpha_bars, t)
        return np.sqrt(ab) * x0 + (1 - ab) * noise

    expect_failure(
        checks.check_forward_noise(wrong, quiet=True), "noise has the wrong scale", "variance"
    )


def test_forward_with_unscaled_noise():
    def wrong(x0, t, noise, alpha_bars):
        return np.sqrt(_ab(alpha_bars, t)) * x0 + noise

    expect_failure(
        checks.check_forward_noise(wrong, quiet=True), "noise has the wrong scale", "unscaled"
    )


@pytest.mark.parametrize("shift, text", [(-1, "alpha_bars[t - 1]"), (1, "alpha_bars[t + 1]")])
def test_forward_with_the_timestep_off_by_one(shift, text):
    def wrong(x0, t, noise, alpha_bars):
        ab = _ab(alpha_bars, t + shift)
        return np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise

    expect_failure(checks.check_forward_noise(wrong, quiet=True), "timestep is off by one", text)


def test_forward_without_the_per_image_reshape():
    def wrong(x0, t, noise, alpha_bars):
        ab = np.asarray(alpha_bars)[t]
        return np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise

    expect_failure(checks.check_forward_noise(wrong, quiet=True), "reshape it to (N, 1, 1, 1)")


def test_forward_with_one_step_for_every_image():
    def wrong(x0, t, noise, alpha_bars):
        ab = alpha_bars[t[0]]
        return np.sqrt(ab) * x0 + np.sqrt(1 - ab) * noise

    expect_failure(checks.check_forward_noise(wrong, quiet=True))


# --- Task 2: the loss -----------------------------------------------------


def test_loss_against_the_clean_image():
    def wrong(network, x0, t, noise, alpha_bars):
        return np.mean((x0 - network(forward_noise(x0, t, noise, alpha_bars), t)) ** 2)

    expect_failure(
        checks.check_diffusion_loss(wrong, quiet=True), "target is the noise", "not the clean"
    )


def test_loss_with_the_network_told_the_wrong_step():
    def wrong(network, x0, t, noise, alpha_bars):
        return np.mean((noise - network(forward_noise(x0, t, noise, alpha_bars), t + 1)) ** 2)

    expect_failure(checks.check_diffusion_loss(wrong, quiet=True), "timestep is off by one")


def test_loss_on_clean_images():
    def wrong(network, x0, t, noise, alpha_bars):
        return np.mean((noise - network(x0, t)) ** 2)

    expect_failure(checks.check_diffusion_loss(wrong, quiet=True), "network got the clean images")


def test_loss_with_a_wrongly_noised_input():
    def wrong(network, x0, t, noise, alpha_bars):
        ab = _ab(alpha_bars, t)
        x_t = ab * x0 + np.sqrt(1 - ab) * noise
        return np.mean((noise - network(x_t, t)) ** 2)

    expect_failure(
        checks.check_diffusion_loss(wrong, quiet=True), "wrong input", "square root is missing"
    )


def test_loss_summed():
    def wrong(network, x0, t, noise, alpha_bars):
        return np.sum((noise - network(forward_noise(x0, t, noise, alpha_bars), t)) ** 2)

    expect_failure(checks.check_diffusion_loss(wrong, quiet=True), "summed")


def test_loss_per_image():
    def wrong(network, x0, t, noise, alpha_bars):
        pred = network(forward_noise(x0, t, noise, alpha_bars), t)
        return np.mean((noise - pred) ** 2, axis=(1, 2, 3))

    expect_failure(checks.check_diffusion_loss(wrong, quiet=True), "expected one number")


# --- Task 3: DDIM ---------------------------------------------------------


def test_ddim_without_the_square_root_in_the_x0_estimate():
    def wrong(x_t, eps, t, t_prev, alpha_bars):
        ab = alpha_bars[t]
        ab_prev = alpha_bars[t_prev] if t_prev >= 0 else 1.0
        x0 = (x_t - np.sqrt(1 - ab) * eps) / ab
        return np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps

    expect_failure(
        checks.check_ddim_update(wrong, quiet=True), "square root is missing on alpha-bar"
    )


def test_ddim_with_noise_at_the_old_scale():
    def wrong(x_t, eps, t, t_prev, alpha_bars):
        ab = alpha_bars[t]
        ab_prev = alpha_bars[t_prev] if t_prev >= 0 else 1.0
        x0 = (x_t - np.sqrt(1 - ab) * eps) / np.sqrt(ab)
        return np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab) * eps

    expect_failure(checks.check_ddim_update(wrong, quiet=True), "noise has the wrong scale")


def test_ddim_with_the_timestep_off_by_one():
    def wrong(x_t, eps, t, t_prev, alpha_bars):
        return ddim_update(x_t, eps, t - 1, t_prev, alpha_bars)

    expect_failure(
        checks.check_ddim_update(wrong, quiet=True), "timestep is off by one", "alpha_bars[t - 1]"
    )


def test_ddim_reading_alpha_bars_minus_one_as_the_last_step():
    def wrong(x_t, eps, t, t_prev, alpha_bars):
        ab, ab_prev = alpha_bars[t], alpha_bars[t_prev]
        x0 = (x_t - np.sqrt(1 - ab) * eps) / np.sqrt(ab)
        return np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps

    expect_failure(checks.check_ddim_update(wrong, quiet=True), "alpha_bars[-1]", "LAST step")


def test_ddim_returning_the_x0_estimate():
    def wrong(x_t, eps, t, t_prev, alpha_bars):
        ab = alpha_bars[t]
        return (x_t - np.sqrt(1 - ab) * eps) / np.sqrt(ab)

    expect_failure(checks.check_ddim_update(wrong, quiet=True), "returned the x0 estimate")
