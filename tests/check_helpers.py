"""Pieces shared by the tests of the exercise checks (tests/test_checks_*.py).

The reference answers are the solution notebooks' own code: :func:`solution`
runs an exercise's setup and solution cells and returns what they define, and
:func:`variant` rewrites one solution cell (a learner's plausible mistake) and
returns what it defines then.
"""

import functools

import nbformat

from tutorial_lib.checks import FAILED, NOT_ATTEMPTED, PASSED
from tutorial_lib.course import notebook_tools


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


def hidden_cases(exercise: str, check_name: str):
    """The ``hidden=`` of ``check_name``'s call in the source notebook's test cell (what the
    grader runs): a dict of cases, or True where the check keeps its own."""
    from tutorial_lib.grading.autograde import planned_checks

    for cell in _notebook(exercise).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for name, _, kwargs in planned_checks(cell.source):
                if name == check_name and "hidden" in kwargs:
                    return kwargs["hidden"]
    raise AssertionError(f"no hidden cases of {check_name} in {exercise}'s test cells")


def no_marks_by_guessing(check, evidence=None, low=0.0, high=1.0, calls=12):
    """A constant, and a bisection steered by the check's messages, never pass ``check``
    (an investigate task's): ``evidence(answer)`` wraps a guess in the form the task
    returns. Returns the messages it saw."""
    wrap = evidence or (lambda answer: answer)
    seen = []
    for constant in (low, high, (low + high) / 2):
        result = check(lambda c=constant: wrap(c), quiet=True)
        assert not result.passed, f"the constant {constant} passed: {result}"
        seen.append(result.message)
    for _ in range(calls):  # move towards "too small" / "too large" if a message says so
        guess = (low + high) / 2
        result = check(lambda g=guess: wrap(g), quiet=True)
        assert not result.passed, f"a bisection passed with {guess}: {result}"
        seen.append(result.message)
        text = result.message.lower()
        if "too small" in text or "too low" in text:
            low = guess
        elif "too large" in text or "too high" in text:
            high = guess
        else:  # the message gives no direction: a bisection has nothing to follow
            break
    return seen


def no_marks_even_with_made_up_evidence(check, invented, bare, dressed):
    """:func:`no_marks_by_guessing` on ``check``, with plain guesses between ``bare`` (low,
    high) and with guesses that ``invented(answer)`` dresses as evidence made up to fit
    them, between ``dressed``; some message says the made-up evidence disagrees with a
    rerun of the experiment."""
    seen = no_marks_by_guessing(check, low=bare[0], high=bare[1])
    seen += no_marks_by_guessing(check, invented, low=dressed[0], high=dressed[1])
    assert any("disagrees with a rerun" in message for message in seen)


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
            expect_pass(check(answer, hidden=hidden_cases(exercise, check.__name__), quiet=True))

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


def evidence_mistakes_test(check, mistakes: dict):
    """A test over ``mistakes`` (label -> (an experiment returning wrong evidence, a
    fragment of the message)) of an investigate task's ``check``: each fails with that
    message."""
    import numpy as np
    import pytest

    @pytest.mark.parametrize("mistake", mistakes)
    def test_evidence_mistakes_are_named(mistake):
        experiment, message = mistakes[mistake]
        with np.errstate(all="ignore"):
            expect_failure(check(experiment, quiet=True), message)

    return test_evidence_mistakes_are_named


def loopback(exercise: str, **replaced):
    """A stand-in for the learner's process of ``exercise`` (its setup and solution cells
    run here; ``replaced`` name -> what replaces a definition, e.g. a :func:`variant`)
    whose requests and replies cross :mod:`tutorial_lib.grading.wire` as while grading:
    ``loopback(EX)["name"]`` is the :class:`~tutorial_lib.grading.remote.Remote` a check
    gets from the grader. No process is started (cheap)."""
    import io

    from tutorial_lib.grading import remote, wire, worker

    class Loopback(remote.Worker):
        def __init__(self, namespace):
            self.namespace, self.process = namespace, "here"

        def _send(self, message):
            message = wire.read(io.BytesIO(wire.dumps(message)))
            try:
                reply = worker.handle(message, self.namespace)
            except BaseException as error:  # noqa: BLE001 - as the worker does
                reply = worker._describe(error)
            return wire.read(io.BytesIO(wire.dumps(reply)))

    return Loopback({**_namespace(exercise), **replaced})


def same_verdicts_over_the_wire(module, pairs):
    """Each ``(check, answer)`` of ``pairs`` (checks of ``module`` that judge probes) gives
    the same verdict when the probes' reports cross the wire format as plain data (what
    crosses from the learner's process while grading) as in process."""
    import io
    from unittest import mock

    from tutorial_lib.grading import remote, wire, worker

    probe = remote.run_probe

    def through_the_wire(target, name, **params):
        report = worker.plain(probe(target, name, **params))
        return wire.read(io.BytesIO(wire.dumps(report)))

    for check, answer in pairs:
        direct = check(answer, quiet=True)
        with mock.patch.object(module, "run_probe", through_the_wire):
            assert check(answer, quiet=True) == direct


def same_verdict_on_a_remote(exercise: str, check, name: str, mistake=None):
    """``check`` on the :func:`loopback` Remote of ``name`` (the solution, or the
    :func:`variant` with ``mistake``'s replacements) says what it says in the notebook.
    Returns the Remote's result."""
    answer = variant(exercise, name, *mistake) if mistake else solution(exercise, name)
    here = check(answer, quiet=True)
    there = check(loopback(exercise, **{name: answer})[name], quiet=True)
    assert (there.status, there.message) == (here.status, here.message)
    return there
