"""Pieces shared by the tests of the exercise checks (tests/test_checks_*.py).

The reference answers are the solution notebooks' own code: :func:`solution`
runs an exercise's setup and solution cells and returns what they define, and
:func:`variant` rewrites one solution cell (a learner's plausible mistake) and
returns what it defines then.
"""

import functools

import nbformat

from tutorial_lib import notebook_tools
from tutorial_lib.checks import FAILED, NOT_ATTEMPTED, PASSED


def stub(*args, **kwargs):
    """A learner's function before they write it, as the exercise notebooks hand it out."""
    raise NotImplementedError()


def expect_failure(result, *fragments):
    """The check failed, and its message holds every one of ``fragments``."""
    assert result.status == FAILED, result
    for fragment in fragments:
        assert fragment in result.message, result.message


def expect_pass(result):
    assert result.status == PASSED, result


def expect_todo(result):
    assert result.status == NOT_ATTEMPTED, result
    assert "not attempted yet" in result.message and "hint(" in result.message


def _notebook(exercise: str):
    return nbformat.read(notebook_tools.EXERCISES / f"{exercise}_solution.ipynb", as_version=4)


def _kind(cell) -> str:
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("solution"):
        return "solution"
    return meta.get("grade_id", "")


def solution_cells(exercise: str) -> list[str]:
    """The sources of the solution cells of ``exercises/<exercise>_solution.ipynb``."""
    return [c.source for c in _notebook(exercise).cells if _kind(c) == "solution"]


@functools.cache
def _namespace(exercise: str) -> dict:
    nb = _notebook(exercise)
    namespace = {"display": lambda *args, **kwargs: None}
    setup = next(c for c in nb.cells if _kind(c).endswith("-setup"))
    exec(compile(setup.source, f"{exercise} setup", "exec"), namespace)
    for source in solution_cells(exercise):
        exec(compile(source, f"{exercise} solution", "exec"), namespace)
    return namespace


def solution(exercise: str, name: str):
    """What the solution notebook of ``exercise`` defines as ``name``."""
    return _namespace(exercise)[name]


def variant(exercise: str, name: str, *replacements: tuple[str, str]):
    """``name`` as defined by its solution cell with each ``(old, new)`` replaced once:
    a deliberately wrong answer. Each ``old`` must occur in the cell."""
    source = next(s for s in solution_cells(exercise) if f" {name}(" in s or f" {name}:" in s)
    for old, new in replacements:
        assert old in source, f"{old!r} is not in the solution of {name}"
        source = source.replace(old, new, 1)
    namespace = dict(_namespace(exercise))
    exec(compile(source, f"{exercise} variant of {name}", "exec"), namespace)
    return namespace[name]


def task_tests(exercise: str, tasks: dict):
    """The two tests every exercise's checks get, for ``tasks`` (name -> check): the
    solution passes the visible and the hidden cases; a stub is 'not attempted yet'."""
    import pytest

    @pytest.mark.parametrize("name", tasks)
    def test_the_solution_passes_the_visible_and_the_hidden_cases(name, capsys):
        check, answer = tasks[name], solution(exercise, name)
        capsys.readouterr()
        expect_pass(check(answer))
        assert capsys.readouterr().out.startswith("[pass]")
        if not name.endswith("_experiment"):  # an experiment has no other cases to hide
            expect_pass(check(answer, hidden=True, quiet=True))

    @pytest.mark.parametrize("name", tasks)
    def test_a_stub_is_not_attempted_yet(name):
        expect_todo(tasks[name](stub, quiet=True))

    return (
        test_the_solution_passes_the_visible_and_the_hidden_cases,
        test_a_stub_is_not_attempted_yet,
    )


def mistakes_test(exercise: str, name: str, check, mistakes: dict):
    """A test over ``mistakes`` (label -> (replacements in the solution of ``name``, a
    fragment of the message)): each rewritten solution fails with that message."""
    import numpy as np
    import pytest

    @pytest.mark.parametrize("mistake", mistakes)
    def test_mistakes_are_named(mistake):
        replacements, message = mistakes[mistake]
        wrong = variant(exercise, name, *replacements)
        with np.errstate(all="ignore"):
            expect_failure(check(wrong, quiet=True), message)

    return test_mistakes_are_named
