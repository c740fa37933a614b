"""Automatic checks for the exercise notebooks.

After each task an exercise notebook calls a check, e.g.
``check_encoder(build_encoder)``. The check runs several hidden test cases on
the learner's function and prints one line:

* ``[pass] check_encoder: all 5 hidden tests passed.``
* ``[fail] check_encoder: expected output shape (None, 32), got (None, 64): is
  your bottleneck layer the right size?`` -- the first failing case, with a
  message that says what to look at;
* ``[todo] check_encoder: not attempted yet ...`` -- the function still raises
  the ``NotImplementedError`` of the exercise stub.

Each check takes ``hidden=...`` to run other cases than the learner sees (the
hidden tests of the nbgrader test cells, with :func:`assert_passed`): a dict of cases that
only the instructor's source notebook holds (the package has none). While grading, ``python -m tutorial_lib
grade`` runs these checks itself against the learner's code in its own sandboxed process
(:mod:`tutorial_lib.grading`). Each
module also holds its exercise's tiered hints: ``hint("task")`` prints the
idea, ``hint("task", 2)`` the functions to use; neither is code that solves
the task.

Each check returns a :class:`CheckResult`, so tests (and the notebook itself)
can inspect the outcome. The checks of one model family live in the module of
the same name: :mod:`tutorial_lib.checks.autoencoder`, ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"


class CheckFailed(AssertionError):
    """Raised by a test case; its message is what the learner reads."""


def expect(condition: bool, message: str) -> None:
    """Fail the current test case with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __str__(self) -> str:
        mark = {PASSED: "[pass]", FAILED: "[fail]", NOT_ATTEMPTED: "[todo]"}[self.status]
        return f"{mark} {self.name}: {self.message}"


def run_check(
    name: str,
    function: Callable,
    cases: list[Callable[[], None]],
    *,
    quiet: bool = False,
    task: str | None = None,
) -> CheckResult:
    """Run ``cases`` (functions that raise :class:`CheckFailed`) on a learner's ``function``.

    Stops at the first failing case. A ``NotImplementedError`` anywhere means
    the exercise stub is still in place: "not attempted yet". Any other
    exception from the learner's code is reported with its type and message.
    ``task`` names the hints to point to when the task is not attempted yet.
    """
    from threadpoolctl import threadpool_limits

    # The checks' linear algebra is small: one BLAS thread runs it faster than threads
    # that compete for the cores with other processes (a test worker, TensorFlow's pool).
    with threadpool_limits(limits=1, user_api="blas"):
        result = _run_cases(name, function, cases, task)
    if not quiet:
        print(result)
    return result


def _run_cases(name: str, function: Callable, cases: list, task: str | None) -> CheckResult:
    function_name = getattr(function, "__name__", repr(function))
    if not callable(function):
        result = CheckResult(name, FAILED, f"expected a function, got {type(function).__name__}.")
    else:
        result = CheckResult(name, PASSED, f"all {len(cases)} hidden tests passed.")
        for case in cases:
            try:
                case()
            except NotImplementedError:
                result = CheckResult(
                    name,
                    NOT_ATTEMPTED,
                    f"not attempted yet: replace the `raise NotImplementedError()` in "
                    f"{function_name} with your code, run that cell, then this one."
                    + (f" Stuck? hint({task!r}) gives the idea." if task else ""),
                )
                break
            except CheckFailed as failure:
                result = CheckResult(name, FAILED, str(failure))
                break
            except Exception as error:  # the learner's code crashed: say how
                if getattr(error, "aborts_grading", False):  # the grader's own failure
                    raise
                kind = getattr(error, "learner_type", type(error).__name__)  # (its own process)
                result = CheckResult(name, FAILED, f"{function_name} raised {kind}: {error}")
                break
    return result


def hidden_cases(hidden, check: str) -> dict:
    """The hidden cases of ``check`` in an exercise graded across the process boundary: a
    dict that the instructor's source notebook passes (they are not in the package)."""
    if hidden is True:
        raise ValueError(
            f"{check}'s hidden cases are in the instructor's source notebook: pass them "
            "as hidden={...}"
        )
    return dict(hidden or {})


def assert_passed(*results: CheckResult) -> None:
    """Fail (for nbgrader: no points) unless every result passed; the message is the first
    failure's. The hidden tests of the exercises' test cells end with this."""
    for result in results:
        if not result.passed:
            raise AssertionError(str(result))


class Hints:
    """The tiered hints of one exercise: ``hint("task")`` prints the idea,
    ``hint("task", 2)`` the functions to use. No hint is code that solves a task."""

    LEVELS = ("the idea", "what to use")

    def __init__(self, hints: dict[str, tuple[str, str]]):
        self.hints = hints

    def text(self, task: str, level: int = 1) -> str:
        if task not in self.hints:
            raise KeyError(f"no hints for {task!r}; tasks with hints: {sorted(self.hints)}")
        if level not in (1, 2):
            raise ValueError(f"hint level must be 1 (the idea) or 2 (what to use); got {level}")
        text = f"Hint {level} of 2 for {task} ({self.LEVELS[level - 1]}): {self.hints[task][level - 1]}"
        if level == 1:
            text += f"\nStill stuck? hint({task!r}, 2) names what to use."
        return text

    def __call__(self, task: str, level: int = 1) -> None:
        print(self.text(task, level))


def check_number(
    name: str,
    experiment: Callable[[], float],
    reference: Callable[[], float],
    *,
    rel_tol: float,
    what: str,
    mistakes: Callable[[], dict[str, float]] | None = None,
    quiet: bool = False,
    task: str | None = None,
) -> CheckResult:
    """The check of an *investigate* task: ``experiment()`` returns one number, accepted
    within ``rel_tol`` of ``reference()``. ``mistakes()`` maps the message of a usual
    mistake to the number it gives; an answer near one of them gets that message."""
    import math

    def answers_a_number():
        value = experiment()
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"your experiment returned {type(value).__name__}, expected one number ({what})."
            ) from None
        expect(math.isfinite(value), f"your experiment returned {value}, expected {what}.")
        expected = float(reference())
        if abs(value - expected) <= rel_tol * abs(expected):
            return
        for message, wrong in (mistakes() if mistakes else {}).items():
            if abs(value - wrong) <= 0.5 * rel_tol * max(abs(wrong), 1e-12):
                raise CheckFailed(f"your answer {value:.4g} is not {what}: {message}.")
        raise CheckFailed(  # (no "too large" or "too small": a bisection learns nothing)
            f"your answer {value:.4g} is not {what} (accepted within {rel_tol:.0%} of the "
            "answer): rerun your experiment and check each step against the task."
        )

    return run_check(name, experiment, [answers_a_number], quiet=quiet, task=task)


def read_evidence(
    experiment: Callable,
    curve: dict[str, str],
    *,
    answer: str = "",
    min_points: int = 0,
    to_numpy: Callable | None = None,
) -> tuple:
    """Run an *investigate* task's ``experiment()`` and read the evidence it returns: a
    dict with the keys of ``curve`` (key -> what it holds, in the learner's words, e.g.
    ``{"t": "the steps you measured", "accuracy": "the classifier's accuracy at each"}``)
    and ``"answer"`` (what it is: ``answer``). Each curve key is read as a flat float64
    array, all of one length and at least ``min_points`` long; the answer as one float
    (``to_numpy`` first converts a tensor where ``np.asarray`` cannot). Returns the arrays
    in the order of ``curve``, then the answer; raises :class:`CheckFailed` with a message
    that names the expected keys and what each means. The values' range and finiteness are
    the task's own checks."""
    import numpy as np

    name, got = getattr(experiment, "__name__", "your experiment"), experiment()
    keys = [*curve, "answer"]
    described = [f"'{key}' ({meaning})" for key, meaning in curve.items()]
    described.append(f"'answer' ({answer})" if answer else "'answer'")
    expect(
        isinstance(got, dict) and set(keys) <= set(got),
        f"{name} should return a dict with {_listed(described)}; got "
        f"{type(got).__name__}{sorted(got) if isinstance(got, dict) else ''}.",
    )
    convert = to_numpy or (lambda value: value)
    try:
        arrays = [np.asarray(convert(got[key]), np.float64).reshape(-1) for key in curve]
        value = float(np.asarray(convert(got["answer"]), np.float64).reshape(()))
    except Exception as error:
        raise CheckFailed(
            f"{_listed([repr(key) for key in keys])} should be numbers "
            f"({type(error).__name__}: {str(error)[:120]})."
        ) from None
    sizes = [array.size for array in arrays]
    count = {2: "two"}.get(len(arrays), str(len(arrays)))
    shape = "an array" if len(arrays) == 1 else f"{count} arrays of the same length"
    expect(
        len(set(sizes)) == 1 and sizes[0] >= min_points,
        f"{_listed([repr(key) for key in curve])} should be {shape}, "
        f"at least {min_points} points of your experiment; got "
        f"{_listed([str(size) for size in sizes])}.",
    )
    return (*arrays, value)


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]
