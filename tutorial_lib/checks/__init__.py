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
    name: str, function: Callable, cases: list[Callable[[], None]], *, quiet: bool = False
) -> CheckResult:
    """Run ``cases`` (functions that raise :class:`CheckFailed`) on a learner's ``function``.

    Stops at the first failing case. A ``NotImplementedError`` anywhere means
    the exercise stub is still in place: "not attempted yet". Any other
    exception from the learner's code is reported with its type and message.
    """
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
                    f"not attempted yet: replace the `raise NotImplementedError(...)` in "
                    f"{function_name} with your code, run that cell, then this one.",
                )
                break
            except CheckFailed as failure:
                result = CheckResult(name, FAILED, str(failure))
                break
            except Exception as error:  # the learner's code crashed: say how
                result = CheckResult(
                    name,
                    FAILED,
                    f"{function_name} raised {type(error).__name__}: {error}",
                )
                break
    if not quiet:
        print(result)
    return result
