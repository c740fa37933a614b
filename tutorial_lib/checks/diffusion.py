"""Checks for ``exercises/05_diffusion.ipynb``: the forward process for data of any
rank, the v-prediction target, a DDIM sampler for a v-predicting network, and the
step at which the evaluation classifier loses the digits.

The learner's functions take NumPy arrays and the schedule's ``alpha_bars``
(indexed ``t = 0 .. T-1``, as in :mod:`tutorial_lib.diffusion`: step 0 already
holds a little noise, ``alpha_bars[0] < 1``). Each check compares with the
reference formulas on hidden cases and names the usual mistakes.
"""

from __future__ import annotations

import functools

import numpy as np

from tutorial_lib import diffusion
from tutorial_lib.checks import CheckFailed, CheckResult, Hints, check_number, expect, run_check

T = 50
SCHEDULE = diffusion.make_schedule("linear", T)
ALPHA_BARS = SCHEDULE.alpha_bars.astype(np.float32)

hint = Hints(
    {
        "forward_noise": (
            "Each example has its own step t, so it gets its own signal and noise scales: "
            "the square roots of alpha-bar at its step and of one minus it. Those scales "
            "must broadcast over every axis of the example, whatever its rank.",
            "alpha_bars indexed by the array t, np.reshape to (N, 1, ..., 1) with as many 1s "
            "as x0 has axes after the first (np.ndim), and np.sqrt.",
        ),
        "v_target": (
            "v mixes the noise and the clean data with the same two scales as the forward "
            "process, the other way round: the noise gets the signal's scale, and the clean "
            "data the noise's scale with a minus sign.",
            "the same per-example reshape of alpha_bars[t] as in Task 1, np.sqrt, and the "
            "two arrays noise and x0.",
        ),
        "ddim_v": (
            "At each step, ask the network for v, turn (x_t, v) into estimates of the clean "
            "data and of the noise, then move to the next (earlier) step of the list with "
            "the same noise estimate. After the last step of the list, go to clean data, "
            "where alpha-bar is 1.",
            "a for loop over the steps (and the next one), alpha_bars[t], np.sqrt, "
            "np.full(len(x), t) for the network's step argument, and alpha-bar 1.0 after "
            "the last step (not alpha_bars[-1]).",
        ),
        "lost_digits": (
            "Noise the test digits to a step t with your forward_noise, map them back to "
            "[0, 1] for the classifier, and measure its accuracy; the accuracy falls as t "
            "grows, so search for where it first drops below one half.",
            "data.load_images('mnist', 'test', limit=...), diffusion.make_schedule('linear', "
            "1000).alpha_bars, np.random.default_rng(0).standard_normal, "
            "metrics.classifier_outputs(x, 'mnist') (its second result holds the "
            "probabilities), np.argmax and a bisection over t.",
        ),
    }
)


def _numbers(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _case(shape=(28, 28, 1), n: int = 6, seed: int = 0, t=None):
    """Data in [-1, 1] of any shape, one step per example, standard normal noise."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, (n, *shape)).astype(np.float32)
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    t = rng.integers(1, T - 1, n) if t is None else np.asarray(t)
    return x0, t.astype(np.int64), noise


def _per_example(values, t, ndim: int) -> np.ndarray:
    return np.asarray(values, np.float64)[t].reshape((-1,) + (1,) * (ndim - 1))


def _ab(t, ndim, shift: int = 0, clean_at_zero: bool = False) -> np.ndarray:
    """alpha-bar per example; ``shift`` and ``clean_at_zero`` give the usual mistakes."""
    padded = np.concatenate([[1.0], ALPHA_BARS.astype(np.float64)])
    if clean_at_zero:  # step t read as alpha_bars[t - 1], with step 0 = clean data
        return _per_example(padded, t, ndim)
    return _per_example(ALPHA_BARS, np.clip(t + shift, 0, T - 1), ndim)


def _forward(x0, t, noise, **mistake) -> np.ndarray:
    ab = _ab(t, x0.ndim, **mistake)
    return np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * noise


def _v(x0, t, noise, **mistake) -> np.ndarray:
    ab = _ab(t, x0.ndim, **mistake)
    return np.sqrt(ab) * noise - np.sqrt(1.0 - ab) * x0


def _close(a, b) -> bool:
    return np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-4, atol=1e-4)


def _name_mistake(got, variants: list[tuple[np.ndarray, str]], default: str) -> str:
    for variant, message in variants:
        if _close(got, variant):
            return message
    return default


def _step_mistakes(formula, x0, t, noise) -> list[tuple[np.ndarray, str]]:
    """The index mistakes, for any per-example formula of alpha-bar."""
    return [
        (
            formula(x0, t, noise, clean_at_zero=True),
            "step 0 is treated as clean data (alpha-bar 1) and every step read one too early: "
            "in this code step t is index t of alpha_bars, and alpha_bars[0] < 1 (step 0 "
            "already adds a little noise).",
        ),
        (
            formula(x0, t, noise, shift=1),
            "the timestep is off by one: you used alpha_bars[t + 1]; use alpha_bars[t].",
        ),
        (
            formula(x0, t, noise, shift=-1),
            "the timestep is off by one: you used alpha_bars[t - 1]; use alpha_bars[t].",
        ),
    ]


def _shape_hint(got: np.ndarray, expected_shape) -> str:
    if got.size > int(np.prod(expected_shape)):
        return (
            ": alpha_bars[t] has shape (N,) and broadcast against the wrong axes; reshape it "
            "to (N, 1, ..., 1), one 1 per axis of an example, so each example gets its own step."
        )
    return "."


def _check_per_example_formula(
    name: str, function, formula, variants, default: str, *, quiet: bool, hidden: bool, task: str
) -> CheckResult:
    """The cases shared by the forward process and the v target: shapes of any rank,
    each example its own step, the edges t = 0 and t = T - 1."""
    shapes = [(8, 8, 3), (5,), (2, 3, 4, 2)] if hidden else [(28, 28, 1), (16,)]
    x0, t, noise = _case(shapes[0], 6, seed=11 if hidden else 1)

    def call(a, steps, b):
        return _numbers(function(a, steps, b, ALPHA_BARS))

    def keeps_the_shape():
        got = call(x0, t, noise)
        expect(
            got.shape == x0.shape,
            f"expected an array of shape {x0.shape}, got {got.shape}{_shape_hint(got, x0.shape)}",
        )

    def matches_the_formula():
        got = call(x0, t, noise)
        expect(
            _close(got, formula(x0, t, noise)),
            _name_mistake(
                got, variants(x0, t, noise) + _step_mistakes(formula, x0, t, noise), default
            ),
        )

    def works_for_any_rank():
        for shape in shapes[1:]:
            a, steps, b = _case(shape, 4, seed=3)
            got = call(a, steps, b)
            expect(
                _close(got, formula(a, steps, b)),
                f"right for images, wrong for data of shape {(4, *shape)} (got shape "
                f"{got.shape}): reshape alpha_bars[t] to (N,) followed by one 1 per axis of an "
                "example (np.ndim(x0) - 1 of them), not a fixed (N, 1, 1, 1).",
            )

    def each_example_gets_its_own_step():
        steps = np.array([0, 10, 25, 40, T - 1, 5])
        got = call(x0, steps, noise)
        right = formula(x0, steps, noise)
        if got.shape == right.shape:
            wrong = ~np.isclose(got, right, rtol=1e-4, atol=1e-4).reshape(len(steps), -1).all(1)
            expect(
                not (wrong.any() and np.all(steps[wrong] == 0)),
                "wrong at step t = 0 only: step 0 is not clean data; it is index 0 of "
                "alpha_bars, and alpha_bars[0] < 1 (the first step already adds noise).",
            )
        expect(
            _close(got, formula(x0, steps, noise)),
            _name_mistake(
                got,
                _step_mistakes(formula, x0, steps, noise),
                "right for some examples, wrong for others: use alpha_bars[t] per example "
                "(t holds one step per example).",
            ),
        )

    def edges_first_and_last_step():
        for step in (0, T - 1):
            steps = np.full(len(x0), step)
            got = call(x0, steps, noise)
            expect(
                _close(got, formula(x0, steps, noise)),
                _name_mistake(
                    got,
                    _step_mistakes(formula, x0, steps, noise),
                    f"wrong at step t = {step} (the {'first' if step == 0 else 'last'} step).",
                ),
            )

    cases = [
        keeps_the_shape,
        matches_the_formula,
        works_for_any_rank,
        each_example_gets_its_own_step,
        edges_first_and_last_step,
    ]
    return run_check(name, function, cases, quiet=quiet, task=task)


# --------------------------------------------------------------------------
# Task 1: the forward process, for data of any rank
# --------------------------------------------------------------------------


def _forward_variants(x0, t, noise):
    ab = _ab(t, x0.ndim)
    return [
        (
            ab * x0 + np.sqrt(1.0 - ab) * noise,
            "the square root is missing on alpha-bar: the clean data is scaled by "
            "sqrt(alpha_bar_t), not alpha_bar_t.",
        ),
        (
            ab * x0 + (1.0 - ab) * noise,
            "the square roots are missing: alpha_bar_t and 1 - alpha_bar_t are *variances*; "
            "scale by their square roots.",
        ),
        (
            np.sqrt(ab) * x0 + (1.0 - ab) * noise,
            "the noise has the wrong scale: multiply it by the standard deviation "
            "sqrt(1 - alpha_bar_t), not by the variance.",
        ),
        (
            np.sqrt(ab) * x0 + noise,
            "the noise is added unscaled: multiply it by sqrt(1 - alpha_bar_t).",
        ),
        (
            np.sqrt(1.0 - ab) * x0 + np.sqrt(ab) * noise,
            "signal and noise are swapped: the data gets sqrt(alpha_bar_t), the noise "
            "sqrt(1 - alpha_bar_t).",
        ),
    ]


def check_forward_noise(forward_noise, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``forward_noise(x0, t, noise, alpha_bars)``: x_t of every example (any shape), one
    step per example: sqrt(alpha_bars[t]) * x0 + sqrt(1 - alpha_bars[t]) * noise."""
    return _check_per_example_formula(
        "check_forward_noise",
        forward_noise,
        _forward,
        _forward_variants,
        "x_t should be sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise.",
        quiet=quiet,
        hidden=hidden,
        task="forward_noise",
    )


# --------------------------------------------------------------------------
# Task 2: the v-prediction target
# --------------------------------------------------------------------------


def _v_variants(x0, t, noise):
    ab = _ab(t, x0.ndim)
    return [
        (-_v(x0, t, noise), "the sign is flipped: v = sqrt(ab) * noise - sqrt(1 - ab) * x0."),
        (
            np.sqrt(ab) * x0 - np.sqrt(1.0 - ab) * noise,
            "noise and data are swapped: the noise gets sqrt(alpha_bar_t), the clean data "
            "-sqrt(1 - alpha_bar_t).",
        ),
        (
            np.sqrt(ab) * noise + np.sqrt(1.0 - ab) * x0,
            "the clean data must be *subtracted*: v = sqrt(ab) * noise - sqrt(1 - ab) * x0.",
        ),
        (
            ab * noise - (1.0 - ab) * x0,
            "the square roots are missing: use sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t).",
        ),
        (
            noise,
            "you returned the noise: that is the epsilon-prediction target; v mixes noise "
            "and clean data.",
        ),
        (_forward(x0, t, noise), "you returned x_t, the network's input, not its target v."),
    ]


def check_v_target(v_target, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``v_target(x0, t, noise, alpha_bars)``: v = sqrt(alpha_bars[t]) * noise
    - sqrt(1 - alpha_bars[t]) * x0 per example, for data of any shape."""
    return _check_per_example_formula(
        "check_v_target",
        v_target,
        _v,
        _v_variants,
        "v should be sqrt(alpha_bar_t) * noise - sqrt(1 - alpha_bar_t) * x0.",
        quiet=quiet,
        hidden=hidden,
        task="v_target",
    )


# --------------------------------------------------------------------------
# Task 3: a DDIM sampler for a v-predicting network
# --------------------------------------------------------------------------


class _RecordingV:
    """A stand-in v network: a fixed function of x_t and t that records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t):
        x = _numbers(x)
        steps = np.broadcast_to(_numbers(t), (len(x),)) if np.ndim(t) <= 1 else _numbers(t)
        self.calls.append((x, np.array(steps), np.shape(t)))
        scale = 0.3 + 0.01 * steps.reshape((-1,) + (1,) * (x.ndim - 1))
        return scale * x


def _ddim_reference(x, steps, alpha_bars=ALPHA_BARS, *, mistake: str | None = None):
    ab_all = np.asarray(alpha_bars, np.float64)
    x = _numbers(x)
    for i, t in enumerate(steps):
        t_prev = steps[i + 1] if i + 1 < len(steps) else -1
        ab = ab_all[t]
        after_last = ab_all[-1] if mistake == "minus_one" else 1.0
        ab_prev = ab_all[t_prev] if t_prev >= 0 else after_last
        v = (0.3 + 0.01 * t) * x
        if mistake == "as_eps":
            eps = v
            x0 = (x - np.sqrt(1 - ab) * eps) / np.sqrt(ab)
        else:
            x0 = np.sqrt(ab) * x - np.sqrt(1 - ab) * v
            eps = np.sqrt(1 - ab) * x + np.sqrt(ab) * v
        if mistake == "stop_early" and t_prev < 0:
            break
        if mistake == "x0_each_step":
            x = x0
            continue
        x = np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev) * eps
    return x


def check_ddim_v(ddim_sample_v, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``ddim_sample_v(v_network, x_T, steps, alpha_bars)``: deterministic DDIM from x_T
    through the decreasing ``steps`` to clean data, with ``v_network(x, t)`` predicting v
    (``t`` an array of one step per example)."""
    shape = (4, 4, 3) if hidden else (28, 28, 1)
    x_T = np.random.default_rng(5 if hidden else 4).standard_normal((3, *shape)).astype(np.float32)
    steps = np.array([T - 1, 30, 12, 0]) if hidden else np.array([T - 1, 37, 24, 12, 0])
    state = {}

    def call(network, x, path):
        return _numbers(ddim_sample_v(network, x.copy(), path, ALPHA_BARS))

    def keeps_the_shape():
        network = _RecordingV()
        out = call(network, x_T, steps)
        expect(out.shape == x_T.shape, f"expected samples of shape {x_T.shape}, got {out.shape}.")
        state["out"], state["calls"] = out, network.calls

    def calls_the_network_once_per_step():
        calls = state["calls"]
        expect(
            len(calls) == len(steps),
            f"with {len(steps)} steps the network should be called {len(steps)} times, once "
            f"per step, got {len(calls)} calls.",
        )
        told = [int(c[1].ravel()[0]) for c in calls]
        if told == [int(s) for s in steps[1:]] + [-1] or told[:-1] == [int(s) for s in steps[1:]]:
            raise CheckFailed(
                f"the network was told the steps {told}: tell it the step t of the x it sees "
                "(the current step), not the one you are moving to."
            )
        expect(
            told == [int(s) for s in steps],
            f"the network should see the steps {steps.tolist()} in that order, got {told}.",
        )
        expect(
            all(c[2] == (len(x_T),) for c in calls),
            "pass the network one step per example: an array of shape (N,), e.g. "
            "np.full(len(x), t).",
        )

    def follows_the_ddim_update():
        out = state["out"]
        mistakes = {
            "minus_one": "after the last step you used alpha_bars[-1], which Python reads as "
            "the LAST step (pure noise): after the last step comes clean data, alpha-bar = 1",
            "as_eps": "you used the network's output as the noise epsilon: it predicts v; "
            "x0_hat = sqrt(ab) * x_t - sqrt(1 - ab) * v and "
            "eps_hat = sqrt(1 - ab) * x_t + sqrt(ab) * v",
            "stop_early": "you stopped at the last step of the list: one more update takes "
            "the samples from there to clean data (alpha-bar 1)",
            "x0_each_step": "you jumped to the clean estimate at every step: re-noise it to "
            "the next step with the same noise estimate",
        }
        for key, message in mistakes.items():
            if _close(out, _ddim_reference(x_T, steps, mistake=key)):
                raise CheckFailed(f"{message}.")
        expect(
            _close(out, _ddim_reference(x_T, steps)),
            "the samples differ from DDIM with v-prediction: at each step form x0_hat and "
            "eps_hat from x_t and v, then x_prev = sqrt(ab_prev) * x0_hat + "
            "sqrt(1 - ab_prev) * eps_hat.",
        )

    def a_perfect_network_recovers_the_data_point():
        target = np.random.default_rng(6).uniform(-1, 1, shape).astype(np.float64)

        def oracle(x, t):  # the exact v for data that is always `target`
            ab = _per_example(ALPHA_BARS, np.broadcast_to(np.asarray(t), (len(x),)), np.ndim(x))
            return (np.sqrt(ab) * _numbers(x) - target) / np.sqrt(1.0 - ab)

        out = call(oracle, x_T, steps)
        expect(
            np.allclose(out, np.broadcast_to(target, out.shape), atol=1e-3),
            "with a network that knows the data exactly (one data point), DDIM must land on "
            "that point; yours misses it by "
            f"{np.abs(out - target).max():.3g}: check the last update (alpha-bar 1).",
        )

    def one_step_and_any_rank():
        codes = np.random.default_rng(7).standard_normal((5, 16)).astype(np.float32)
        for path in (np.array([T - 1]), np.array([T - 1, 0])):
            out = call(_RecordingV(), codes, path)
            expect(
                _close(out, _ddim_reference(codes, path)),
                f"wrong for codes of shape (5, 16) with steps {path.tolist()}: the sampler "
                "must work for one step and for data of any rank (reshape per example with "
                "np.ndim).",
            )

    cases = [
        keeps_the_shape,
        calls_the_network_once_per_step,
        follows_the_ddim_update,
        a_perfect_network_recovers_the_data_point,
        one_step_and_any_rank,
    ]
    return run_check("check_ddim_v", ddim_sample_v, cases, quiet=quiet, task="ddim_v")


# --------------------------------------------------------------------------
# Task 4 (investigate): when does the classifier lose the digits?
# --------------------------------------------------------------------------

LOST_DIGITS = {"images": 256, "timesteps": 1000, "accuracy": 0.5}


def _noised_accuracy(x0, labels, t: int, alpha_bars, seed: int = 0) -> float:
    """The evaluation classifier's accuracy on ``x0`` (in [0, 1]) noised to step ``t``."""
    from tutorial_lib import metrics

    x = 2.0 * x0 - 1.0
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    ab = float(alpha_bars[t])
    x_t = np.sqrt(ab) * x + np.sqrt(1.0 - ab) * noise
    probs = metrics.classifier_outputs(np.clip((x_t + 1.0) / 2.0, 0.0, 1.0), "mnist")[1]
    return float(np.mean(np.argmax(probs, axis=1) == labels))


@functools.cache
def _lost_step(schedule: str = "linear") -> int:
    from tutorial_lib import data

    x0, labels = data.load_images("mnist", "test", limit=LOST_DIGITS["images"])
    alpha_bars = diffusion.make_schedule(schedule, LOST_DIGITS["timesteps"]).alpha_bars
    low, high = 0, LOST_DIGITS["timesteps"] - 1
    while low < high:
        middle = (low + high) // 2
        if _noised_accuracy(x0, labels, middle, alpha_bars) < LOST_DIGITS["accuracy"]:
            high = middle
        else:
            low = middle + 1
    return low


def check_lost_digits(experiment, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``experiment()``: the first step t of the linear schedule (T = 1000) at which the
    evaluation classifier's accuracy on 256 noised MNIST test digits falls below 50%."""
    return check_number(
        "check_lost_digits",
        experiment,
        _lost_step,
        rel_tol=0.1,
        what="the first step at which the classifier's accuracy falls below 50%",
        mistakes=lambda: {
            "that is the step for the cosine schedule; the question is about the linear one": (
                _lost_step("cosine")
            ),
        },
        quiet=quiet,
        task="lost_digits",
    )
