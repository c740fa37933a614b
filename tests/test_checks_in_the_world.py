"""The exercise checks of exercise 08: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that
names their mistake: an unpaired or normal-quantile interval, a catch rate with ties
or an interpolated threshold, a membership attack with the wrong radius, and the
investigation's answers for unclipped copies or the copy rate."""

import numpy as np
from check_helpers import (
    expect_failure,
    expect_pass,
    mistakes_test,
    no_marks_even_with_made_up_evidence,
    solution,
    task_tests,
)

from tutorial_lib.checks import in_the_world as checks

EX = "08_in_the_world"
TASKS = {
    "augmentation_verdict": checks.check_verdict,
    "catch_rate": checks.check_catch_rate,
    "membership_scores": checks.check_membership_scores,
    "hiding_noise_experiment": checks.check_hiding_noise,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


STANDARD_ERROR = "differences.std(ddof=1) / math.sqrt(n)"
VERDICT_MISTAKES = {
    "difference the wrong way round": (
        [("differences = augmented - alone", "differences = alone - augmented")],
        "the wrong sign",
    ),
    "unpaired": (
        [(STANDARD_ERROR, "math.sqrt(alone.var(ddof=1) / n + augmented.var(ddof=1) / n)")],
        "as unrelated samples",
    ),
    "population standard deviation": (
        [("differences.std(ddof=1)", "differences.std()")],
        "population standard deviation",
    ),
    "standard deviation, not standard error": (
        [(STANDARD_ERROR, "differences.std(ddof=1)")],
        "spread of single differences",
    ),
    "normal quantile": (
        [("stats.t.ppf((1 + confidence) / 2, n - 1)", "stats.norm.ppf((1 + confidence) / 2)")],
        "normal distribution",
    ),
    "n degrees of freedom": (
        [("stats.t.ppf((1 + confidence) / 2, n - 1)", "stats.t.ppf((1 + confidence) / 2, n)")],
        "not n",
    ),
    "verdict from the wrong end": (
        [('if low > 0 else ("hurts" if high < 0', 'if high > 0 else ("hurts" if low < 0')],
        "the verdict",
    ),
    "a single seed accepted": (
        [
            (
                '    if len(alone) < 2:\n        raise ValueError("at least two seeds are '
                'needed to estimate a spread")\n',
                "",
            )
        ],
        "a single seed",
    ),
}

test_verdict_mistakes_are_named = mistakes_test(
    EX, "augmentation_verdict", checks.check_verdict, VERDICT_MISTAKES
)


THRESHOLD = "threshold = real[allowed] if allowed < len(real) else -np.inf"
CATCH_MISTAKES = {
    "ties flagged": (
        [("np.mean(fake > threshold)", "np.mean(fake >= threshold)")],
        "strictly above the threshold",
    ),
    "interpolated quantile": (
        [(THRESHOLD, "threshold = np.quantile(real, 1 - false_alarm_rate)")],
        "interpolated quantile",
    ),
    "rounded budget": (
        [("math.floor(false_alarm_rate * len(real))", "round(false_alarm_rate * len(real))")],
        "round it down",
    ),
    "threshold from the fakes": (
        [(THRESHOLD, "threshold = np.quantile(fake, 1 - false_alarm_rate)")],
        "threshold taken from the fakes' scores",
    ),
    "false-alarm rate returned": (
        [("np.mean(fake > threshold)", "np.mean(real > threshold)")],
        "the fraction of real images flagged",
    ),
    "lower score taken as fake": (
        [
            ("np.sort(np.asarray(real_scores, float)", "np.sort(-np.asarray(real_scores, float)"),
            ("fake = np.asarray(fake_scores", "fake = -np.asarray(fake_scores"),
        ],
        "turned around",
    ),
    "a full budget still keeps one real image": (
        [(THRESHOLD, "threshold = real[min(allowed, len(real) - 1)]")],
        "a 100% budget",
    ),
}

test_catch_rate_mistakes_are_named = mistakes_test(
    EX, "catch_rate", checks.check_catch_rate, CATCH_MISTAKES
)


RETURN = "return (distances <= radius).mean(axis=1)"
RADIUS = "radius = np.median(distances.min(axis=1))"
MEMBERSHIP_MISTAKES = {
    "strict inequality": ([(RETURN, "return (distances < radius).mean(axis=1)")], "(<=)"),
    "mean radius": ([(RADIUS, "radius = np.mean(distances.min(axis=1))")], "use their median"),
    "a radius per candidate": (
        [(RADIUS, "radius = distances.min(axis=1)[:, None]")],
        "its own radius",
    ),
    "squared against plain distances": (
        [(RETURN, "return (squared <= radius).mean(axis=1)")],
        "same units",
    ),
    "counts, not fractions": ([(RETURN, "return (distances <= radius).sum(axis=1)")], "fraction"),
    "divided by the candidates": (
        [(RETURN, "return (distances <= radius).sum(axis=1) / len(a)")],
        "number of candidates",
    ),
    "nearest sample only": (
        [(RETURN, "return (distances.min(axis=1) <= radius).astype(float)")],
        "every sample within the radius",
    ),
    "a median over an odd count only": (
        [(RADIUS, "radius = np.sort(distances.min(axis=1))[len(a) // 2]")],
        "the mean of the two middle ones",
    ),
    "images of 784 pixels only": (
        [("reshape(len(candidates), -1)", "reshape(len(candidates), 784)")],
        "raised ValueError",
    ),
}

test_membership_mistakes_are_named = mistakes_test(
    EX, "membership_scores", checks.check_membership_scores, MEMBERSHIP_MISTAKES
)


def test_a_membership_score_that_ranks_the_wrong_way_is_caught():
    """Right radius, but scored as the fraction of samples *outside* it: members then
    score lower than the others, and the behaviour case says so."""
    right = solution(EX, "membership_scores")

    def outside(candidates, samples):
        return 1.0 - right(candidates, samples)

    expect_failure(checks.check_membership_scores(outside, quiet=True), "differ from the expected")


def _curve(answer, **options):
    """The evidence of a bisection towards ``answer``: the check's own measurements
    (with ``options``: unclipped copies, the copy rate) at a grid and around ``answer``."""
    noise = [0.0, 0.2, 0.6, 1.0, answer - 0.004, answer + 0.004]
    score = [checks._hiding_measure(s, **options) for s in noise]
    return {"noise": noise, "score": score, "answer": answer}


def test_the_hiding_noise_check_verifies_the_evidence_then_the_answer():
    """A right curve with a right answer passes; a curve measured with a named mistake
    (unclipped copies, the copy rate) fails naming it; an answer that is not read off the
    curve, or a coarse curve, or a malformed return fails. (About 6 s: 3 bisections.)"""
    answer = checks._hiding_noise()
    assert 0.35 < answer < 0.42
    check = checks.check_hiding_noise
    expect_pass(check(lambda: _curve(answer), quiet=True))
    odd = _curve(answer)
    odd["noise"], odd["score"] = (
        odd["noise"][:-1] + [0.5],
        odd["score"][:-1] + [checks._hiding_measure(0.5)],
    )
    expect_pass(check(lambda: odd, quiet=True))  # an even and an odd number of points
    unclipped = checks._hiding_noise(clip=False)
    expect_failure(check(lambda: _curve(unclipped, clip=False), quiet=True), "not clipped")
    assert abs(unclipped - answer) > 2 * checks.ANSWER_TOL * answer  # the tolerance is half
    rate = checks._hiding_noise(measure="copy_rate", threshold=0.01)
    expect_failure(check(lambda: _curve(rate, measure="copy_rate"), quiet=True), "copy rate")
    moved = dict(_curve(answer), answer=answer + 0.08)
    expect_failure(check(lambda: moved, quiet=True), "read the answer off")
    coarse = {"noise": [0.0, 0.2, 0.6, 0.8, 1.0], "answer": 0.45}
    coarse["score"] = [checks._hiding_measure(s) for s in coarse["noise"]]
    expect_failure(check(lambda: coarse, quiet=True), "more finely")
    late = {"noise": [0.6, 0.7, 0.8, 0.9, 1.0], "answer": 0.5}
    late["score"] = [checks._hiding_measure(s) for s in late["noise"]]
    expect_failure(check(lambda: late, quiet=True), "cover the crossing")
    expect_failure(check(lambda: answer, quiet=True), "should return a dict")
    expect_failure(check(lambda: dict(_curve(answer), answer="x"), quiet=True), "numbers")
    expect_failure(check(lambda: dict(_curve(answer), score=[0.5]), quiet=True), "same length")


def test_catch_rate_at_the_edges_of_the_budget():
    catch_rate = solution(EX, "catch_rate")
    real, fake = np.array([0.1, 0.2, 0.3]), np.array([0.05, 0.25, 0.35])
    assert catch_rate(real, fake, 0.0) == 1 / 3  # only what beats every real score
    assert catch_rate(real, fake, 1.0) == 1.0  # everything is flagged
    assert catch_rate(real, fake, 0.4) == 2 / 3  # one real image may be flagged: 0.3 is


def test_a_constant_or_a_bisection_earns_nothing():
    """Constants, and a bisection steered by the messages, never pass; no message says
    which way to move."""

    def invented(answer):  # a curve made up to fit the guess: a line through 0.5 there
        noise = np.linspace(0.0, 1.0, 11)
        return {"noise": noise, "score": np.clip(0.5 - (noise - answer), 0, 1), "answer": answer}

    no_marks_even_with_made_up_evidence(
        checks.check_hiding_noise, invented, bare=(0.0, 1.0), dressed=(0.0, 1.0)
    )
