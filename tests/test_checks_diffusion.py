"""The exercise checks of exercise 05: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that
names their mistake, on data of any rank and at the edges t = 0 and t = T - 1."""

import numpy as np
from check_helpers import (
    expect_failure,
    expect_pass,
    mistakes_test,
    solution,
    task_tests,
)

from tutorial_lib.checks import diffusion as checks

EX = "05_diffusion"
TASKS = {
    "forward_noise": checks.check_forward_noise,
    "v_target": checks.check_v_target,
    "ddim_sample_v": checks.check_ddim_v,
    "lost_digits_experiment": checks.check_lost_digits,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


PER_EXAMPLE = "np.asarray(alpha_bars)[t]"
FORWARD_MISTAKES = {
    "t = 0 treated as clean data": (
        [(PER_EXAMPLE, "np.concatenate([[1.0], alpha_bars])[t]")],
        "step 0 is treated as clean data",
    ),
    "off by one": ([(PER_EXAMPLE, "np.asarray(alpha_bars)[np.minimum(t + 1, 49)]")], "t + 1"),
    "missing square root": (
        [("np.sqrt(ab) * x0", "ab * x0")],
        "the square root is missing on alpha-bar",
    ),
    "noise scaled by the variance": (
        [("np.sqrt(1.0 - ab) * noise", "(1.0 - ab) * noise")],
        "not by the variance",
    ),
    "images only": (
        [("(-1,) + (1,) * (np.ndim(x0) - 1)", "(-1, 1, 1, 1)")],
        "wrong for data of shape",
    ),
    "broadcast on the wrong axis": (
        [("np.reshape(np.asarray(alpha_bars)[t], per_example)", "np.asarray(alpha_bars)[t]")],
        "broadcast against the wrong axes",
    ),
    "swapped": (
        [
            (
                "np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * noise",
                "np.sqrt(1.0 - ab) * x0 + np.sqrt(ab) * noise",
            )
        ],
        "signal and noise are swapped",
    ),
}


test_forward_noise_mistakes_are_named = mistakes_test(
    EX, "forward_noise", checks.check_forward_noise, FORWARD_MISTAKES
)


def test_the_first_step_alone_catches_a_clean_step_zero():
    """Right everywhere but at t = 0, where it returns the clean data: the edge case fails."""

    def clean_at_zero(x0, t, noise, alpha_bars):
        right = solution(EX, "forward_noise")(x0, t, noise, alpha_bars)
        return np.where(np.reshape(t, (-1,) + (1,) * (x0.ndim - 1)) == 0, x0, right)

    expect_failure(checks.check_forward_noise(clean_at_zero, quiet=True), "t = 0")


V_MISTAKES = {
    "sign flipped": (
        [
            (
                "np.sqrt(ab) * noise - np.sqrt(1.0 - ab) * x0",
                "np.sqrt(1.0 - ab) * x0 - np.sqrt(ab) * noise",
            )
        ],
        "the sign is flipped",
    ),
    "roles swapped": (
        [
            (
                "np.sqrt(ab) * noise - np.sqrt(1.0 - ab) * x0",
                "np.sqrt(ab) * x0 - np.sqrt(1.0 - ab) * noise",
            )
        ],
        "noise and data are swapped",
    ),
    "added": ([("noise - np.sqrt", "noise + np.sqrt")], "must be *subtracted*"),
    "epsilon target": (
        [("return np.sqrt(ab) * noise - np.sqrt(1.0 - ab) * x0", "return noise + 0 * ab")],
        "epsilon-prediction target",
    ),
    "t = 0 treated as clean data": (
        [(PER_EXAMPLE, "np.concatenate([[1.0], alpha_bars])[t]")],
        "step 0 is treated as clean data",
    ),
    "no square roots": (
        [("np.sqrt(ab) * noise - np.sqrt(1.0 - ab) * x0", "ab * noise - (1.0 - ab) * x0")],
        "the square roots are missing",
    ),
}


test_v_target_mistakes_are_named = mistakes_test(EX, "v_target", checks.check_v_target, V_MISTAKES)


DDIM_MISTAKES = {
    "alpha_bars[-1] after the last step": (
        [
            (
                "1.0 if t_next is None else float(alpha_bars[t_next])",
                "float(alpha_bars[-1 if t_next is None else t_next])",
            )
        ],
        "alpha_bars[-1]",
    ),
    "output read as epsilon": (
        [
            (
                "x0_hat = np.sqrt(ab) * x - np.sqrt(1.0 - ab) * v",
                "x0_hat = (x - np.sqrt(1.0 - ab) * v) / np.sqrt(ab)",
            ),
            ("eps_hat = np.sqrt(1.0 - ab) * x + np.sqrt(ab) * v", "eps_hat = v"),
        ],
        "as the noise epsilon",
    ),
    "told the next step": (
        [("np.full(len(x), t)", "np.full(len(x), -1 if t_next is None else t_next)")],
        "not the one you are moving to",
    ),
    "one scalar step": ([("np.full(len(x), t)", "t")], "one step per example"),
    "clean estimate every step": (
        [("x = np.sqrt(ab_next) * x0_hat + np.sqrt(1.0 - ab_next) * eps_hat", "x = x0_hat")],
        "jumped to the clean estimate at every step",
    ),
    "stops at the last listed step": (
        [
            (
                "zip(steps, steps[1:] + [None], strict=True)",
                "zip(steps[:-1], steps[1:], strict=True)",
            )
        ],
        "called",
    ),
}


test_ddim_mistakes_are_named = mistakes_test(
    EX, "ddim_sample_v", checks.check_ddim_v, DDIM_MISTAKES
)


def test_lost_digits_answers():
    right, cosine = checks._lost_step(), checks._lost_step("cosine")
    assert 20 < right < cosine < 999
    expect_pass(checks.check_lost_digits(lambda: round(right * 1.05), quiet=True))
    expect_failure(checks.check_lost_digits(lambda: cosine, quiet=True), "cosine schedule")
    expect_failure(checks.check_lost_digits(lambda: 999, quiet=True), "too large")
    expect_failure(checks.check_lost_digits(lambda: 0, quiet=True), "too small")
    expect_failure(checks.check_lost_digits(lambda: "t=140", quiet=True), "expected one number")
