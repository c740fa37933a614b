"""Checks for ``exercises/05_diffusion.ipynb``: the forward process for data of any
rank, the v-prediction target, a DDIM sampler for a v-predicting network, and the
step at which the evaluation classifier loses the digits.

The learner's functions take NumPy arrays and the schedule's ``alpha_bars``
(indexed ``t = 0 .. T-1``, as in :mod:`tutorial_lib.diffusion`: step 0 already
holds a little noise, ``alpha_bars[0] < 1``). Each check compares with the
reference formulas on hidden cases and names the usual mistakes. The hidden cases are in
the instructor's source notebook (``hidden={...}``); the sampler is run with a stand-in
network by a probe (:mod:`tutorial_lib.grading.probes_diffusion`) where it lives.
"""

from __future__ import annotations

import functools

import numpy as np

from tutorial_lib import diffusion
from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)
from tutorial_lib.grading.remote import run_probe

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
    name: str, function, formula, variants, default: str, *, quiet: bool, hidden, task: str
) -> CheckResult:
    """The cases shared by the forward process and the v target: shapes of any rank,
    a batch of one, each example its own step, the edges t = 0 and t = T - 1. ``hidden``:
    ``{"shapes": [...], "seed": s}``, other cases."""
    cases = hidden_cases(hidden, name)
    shapes = [tuple(shape) for shape in cases.get("shapes", [(28, 28, 1), (16,)])]
    seed = cases.get("seed", 1)
    x0, t, noise = _case(shapes[0], 6, seed=seed)

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
        for i, shape in enumerate(shapes[1:] + shapes[:1]):
            n = 4 if i < len(shapes) - 1 else 1  # and a batch of one example
            a, steps, b = _case(shape, n, seed=seed + 2)
            got = call(a, steps, b)
            expect(
                _close(got, formula(a, steps, b)),
                f"right for images, wrong for data of shape {(n, *shape)} (got shape "
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

    checks = [
        keeps_the_shape,
        matches_the_formula,
        works_for_any_rank,
        each_example_gets_its_own_step,
        edges_first_and_last_step,
    ]
    return run_check(name, function, checks, quiet=quiet, task=task)


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


def check_forward_noise(forward_noise, *, quiet: bool = False, hidden=None) -> CheckResult:
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


def check_v_target(v_target, *, quiet: bool = False, hidden=None) -> CheckResult:
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


def check_ddim_v(ddim_sample_v, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``ddim_sample_v(v_network, x_T, steps, alpha_bars)``: deterministic DDIM from x_T
    through the decreasing ``steps`` to clean data, with ``v_network(x, t)`` predicting v
    (``t`` an array of one step per example). The sampler runs with the stand-in networks of
    :mod:`~tutorial_lib.grading.probes_diffusion` (v = (0.3 + 0.01 t) x_t, and the exact v
    of one data point). ``hidden``: ``{"shape": [...], "seed": s, "steps": [...]}``."""
    cases = hidden_cases(hidden, "check_ddim_v")
    shape = tuple(cases.get("shape", (28, 28, 1)))
    seed = cases.get("seed", 4)
    x_T = np.random.default_rng(seed).standard_normal((3, *shape)).astype(np.float32)
    steps = np.array(cases.get("steps", [T - 1, 37, 24, 12, 0]))
    state = {}

    def run(x, path, point=None):
        report = run_probe(
            ddim_sample_v, "ddim_v", x_T=x, steps=path, alpha_bars=ALPHA_BARS, point=point
        )
        return {k: (_numbers(v) if k == "out" else v) for k, v in report.items()}

    def keeps_the_shape():
        report = run(x_T, steps)
        out = report["out"]
        expect(out.shape == x_T.shape, f"expected samples of shape {x_T.shape}, got {out.shape}.")
        state["out"], state["report"] = out, report

    def calls_the_network_once_per_step():
        report = state["report"]
        calls = len(report["steps"])
        expect(
            calls == len(steps),
            f"with {len(steps)} steps the network should be called {len(steps)} times, once "
            f"per step, got {calls} calls.",
        )
        told = [int(np.ravel(c)[0]) for c in report["steps"]]
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
            all(list(shape_t) == [len(x_T)] for shape_t in report["t_shapes"]),
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
        target = np.random.default_rng(seed + 2).uniform(-1, 1, shape).astype(np.float64)
        out = run(x_T, steps, point=target)["out"]
        expect(
            out.shape == x_T.shape
            and np.allclose(out, np.broadcast_to(target, out.shape), atol=1e-3),
            "with a network that knows the data exactly (one data point), DDIM must land on "
            "that point; yours misses it by "
            f"{np.abs(out - target).max() if out.shape == x_T.shape else np.inf:.3g}: check "
            "the last update (alpha-bar 1).",
        )

    def one_step_any_rank_and_one_example():
        codes = np.random.default_rng(seed + 3).standard_normal((5, 16)).astype(np.float32)
        for x, path in (
            (codes, np.array([T - 1])),
            (codes, np.array([T - 1, 0])),
            (codes[:1], np.array([T - 1, 20, 0])),
        ):
            out = run(x, path)["out"]
            expect(
                _close(out, _ddim_reference(x, path)),
                f"wrong for codes of shape {x.shape} with steps {path.tolist()}: the sampler "
                "must work for one step, for one example and for data of any rank (reshape "
                "per example with np.ndim).",
            )

    checks = [
        keeps_the_shape,
        calls_the_network_once_per_step,
        follows_the_ddim_update,
        a_perfect_network_recovers_the_data_point,
        one_step_any_rank_and_one_example,
    ]
    return run_check("check_ddim_v", ddim_sample_v, checks, quiet=quiet, task="ddim_v")


# --------------------------------------------------------------------------
# Task 4 (investigate): when does the classifier lose the digits?
# --------------------------------------------------------------------------

LOST_DIGITS = {"images": 256, "timesteps": 1000, "accuracy": 0.5}
# The accuracy at one step varies by a standard deviation of at most 0.02 over the seed of
# the noise (4 seeds, steps 60 to 180); the named mistakes differ by 0.3 or more near the
# crossing. A rerun at the learner's points agrees within:
ACCURACY_TOL = 0.07
# The answer: 139 (seed 0), about 2 steps apart over seeds; the nearest plausible mistake
# (data noised in [0, 1], not mapped to [-1, 1]) crosses near step 80: accepted within
ANSWER_TOL = 0.05


@functools.cache
def _lost_data():
    from tutorial_lib import data

    return data.load_images("mnist", "test", limit=LOST_DIGITS["images"])


def _noised_accuracy(x0, labels, t: int, alpha_bars, seed: int = 0, mapped: bool = True) -> float:
    """The evaluation classifier's accuracy on ``x0`` (in [0, 1]) noised to step ``t``;
    ``mapped=False``: noised in [0, 1] instead of [-1, 1] (a usual mistake)."""
    from tutorial_lib import metrics

    x = 2.0 * x0 - 1.0 if mapped else x0
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    ab = float(alpha_bars[t])
    x_t = np.sqrt(ab) * x + np.sqrt(1.0 - ab) * noise
    x_t = (x_t + 1.0) / 2.0 if mapped else x_t
    probs = metrics.classifier_outputs(np.clip(x_t, 0.0, 1.0), "mnist")[1]
    return float(np.mean(np.argmax(probs, axis=1) == labels))


@functools.cache
def _lost_accuracy(t: int, schedule: str = "linear", mapped: bool = True) -> float:
    x0, labels = _lost_data()
    alpha_bars = diffusion.make_schedule(schedule, LOST_DIGITS["timesteps"]).alpha_bars
    return _noised_accuracy(x0, labels, t, alpha_bars, mapped=mapped)


@functools.cache
def _lost_step(schedule: str = "linear", mapped: bool = True) -> int:
    low, high = 0, LOST_DIGITS["timesteps"] - 1
    while low < high:
        middle = (low + high) // 2
        if _lost_accuracy(middle, schedule, mapped) < LOST_DIGITS["accuracy"]:
            high = middle
        else:
            low = middle + 1
    return low


CURVE_MISTAKES = {
    "your accuracies are those of the cosine schedule; the question is about the linear one": {
        "schedule": "cosine"
    },
    "your digits were noised in [0, 1]: map them to [-1, 1] (2 x - 1) before the forward "
    "process, and back to [0, 1] for the classifier": {"mapped": False},
}


def check_lost_digits(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"t": the steps measured, "accuracy": the classifier's
    accuracy at each, "answer": the first step at which it falls below 50%}`` (256 noised
    MNIST test digits, the linear schedule with T = 1000). The curve is rerun at the
    learner's points around its crossing (within ACCURACY_TOL), the answer is read off the
    curve, then compared with the check's own bisection (within ANSWER_TOL)."""
    state: dict = {}

    def returns_its_evidence():
        steps, accuracy, answer = read_evidence(
            experiment,
            {"t": "the steps you measured", "accuracy": "the classifier's accuracy at each"},
            min_points=5,
        )
        state.update(steps=steps, accuracy=accuracy, answer=answer)

    def the_curve_is_a_measurement():
        steps, accuracy = state["steps"], state["accuracy"]
        expect(
            bool(np.all(np.isfinite(accuracy)))
            and bool(np.all(steps == np.round(steps)))
            and bool(np.all((steps >= 0) & (steps < LOST_DIGITS["timesteps"]))),
            "every 't' should be a whole step in [0, 999] and every accuracy a number.",
        )
        expect(
            bool(np.any(accuracy >= 0.5) and np.any(accuracy < 0.5)),
            "your curve should cover the crossing: at least one step where the accuracy is "
            "50% or more, and one where it is below.",
        )
        low, high = _bracket(steps, accuracy)
        points = sorted({int(low), int(high), int(np.sort(steps)[len(steps) // 2])})
        got = np.array([accuracy[np.flatnonzero(steps == p)[0]] for p in points])
        right = np.array([_lost_accuracy(p) for p in points])
        if not np.allclose(got, right, atol=ACCURACY_TOL):
            for message, options in CURVE_MISTAKES.items():
                wrong = np.array([_lost_accuracy(p, **options) for p in points])
                if np.allclose(got, wrong, atol=ACCURACY_TOL):
                    raise CheckFailed(message + ".")
        bad = np.flatnonzero(np.abs(got - right) > ACCURACY_TOL)
        expect(
            bad.size == 0,
            f"at t = {points[bad[0]] if bad.size else 0} your accuracy "
            f"{got[bad[0]] if bad.size else 0:.3f} disagrees with a rerun of the task's "
            "experiment at your own step (beyond the spread of the noise's draw): check each "
            "step (the digits, the mapping to [-1, 1], the schedule, the classifier) against "
            "the task.",
        )

    def the_answer_is_read_from_the_curve():
        steps, accuracy, answer = state["steps"], state["accuracy"], state["answer"]
        low, high = _bracket(steps, accuracy)
        expect(
            low < answer <= high,
            f"your answer {answer:.4g} is not where your own curve first falls below 50% "
            f"(after t = {low:.0f}, at most t = {high:.0f}): read the answer off your "
            "measurement.",
        )
        expected = _lost_step()
        expect(
            abs(answer - expected) <= ANSWER_TOL * expected,
            f"your answer {answer:.4g} is not the first step at which the accuracy falls "
            f"below 50% (accepted within {ANSWER_TOL:.0%}): measure your curve more finely "
            "around its crossing.",
        )

    checks = [returns_its_evidence, the_curve_is_a_measurement, the_answer_is_read_from_the_curve]
    return run_check("check_lost_digits", experiment, checks, quiet=quiet, task="lost_digits")


def _bracket(steps: np.ndarray, accuracy: np.ndarray) -> tuple[float, float]:
    """The learner's curve around its first fall below 50%: (the last step at 50% or more
    before it, the first step below)."""
    order = np.argsort(steps)
    steps, accuracy = steps[order], accuracy[order]
    first = np.flatnonzero(accuracy < 0.5)[0]
    expect(
        first > 0,
        f"your curve is below 50% already at its first step, t = {steps[0]:.0f}: start from "
        "less noise (t = 0).",
    )
    return float(steps[first - 1]), float(steps[first])
