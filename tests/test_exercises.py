"""The exercises as a course: each is an nbgrader source notebook with the task mix of
issue #15, its learner copy is what nbgrader generates and runs top to bottom reporting
every task as not attempted, and nothing a learner receives holds a solution line."""

import ast
import importlib
import inspect
import os
import re

import nbformat
import pytest

from tutorial_lib.course import notebook_tools

SOLUTIONS = notebook_tools.solution_notebooks()


def _checks_of(exercise: dict):
    """The module of an exercise's checks and hints, named after its topic: exercise
    ``NN_topic`` -> ``tutorial_lib.checks.topic`` (a new exercise needs no entry here)."""
    return importlib.import_module(f"tutorial_lib.checks.{exercise['name'].split('_', 1)[1]}")


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _solution_blocks(nb) -> list[list[str]]:
    """The lines between ### BEGIN SOLUTION and ### END SOLUTION, one list per block."""
    blocks = []
    for cell in nb.cells:
        if not _nbgrader(cell).get("solution"):
            continue
        inside = None
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = []
            elif "### END SOLUTION" in line:
                blocks.append(inside)
                inside = None
            elif inside is not None:
                inside.append(line)
    return blocks


def _solution_lines(nb) -> set[str]:
    """Every solution line worth hiding (16+ characters once spaces are removed), without
    its comment, with its spaces removed."""
    lines = set()
    for block in _solution_blocks(nb):
        for line in block:
            code = line.split("  #")[0].strip()
            if len(code.replace(" ", "")) >= 16:
                lines.add(code.replace(" ", ""))
    return lines


def _strings_of(module) -> list[str]:
    """Every string literal of a module: its hints and every check message it can print."""
    tree = ast.parse(inspect.getsource(module))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


@pytest.fixture(scope="module", params=SOLUTIONS, ids=lambda p: p.stem)
def exercise(request):
    solution = request.param
    return {
        "name": notebook_tools.assignment_name(solution),
        "solution": nbformat.read(solution, as_version=4),
        "learner": nbformat.read(notebook_tools.learner_copy_path(solution), as_version=4),
    }


def test_every_lesson_has_an_exercise():
    """Every part one of a lesson (``NN_topic``; not setup, not a ``b`` part) has one."""
    lessons = sorted(
        path.stem
        for path in (notebook_tools.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
        if not path.stem.startswith("00_")
    )
    assert [notebook_tools.assignment_name(s) for s in SOLUTIONS] == lessons


def test_learner_copies_are_what_nbgrader_generates():
    pytest.importorskip("nbgrader", reason="the instructor extra: pip install -e '.[instructor]'")
    stale = notebook_tools.stale_learner_copies()
    assert not stale, (
        f"out of date: {[p.name for p in stale]}; run "
        "`python -m tutorial_lib.course.notebook_tools learner-copies`"
    )


def test_each_exercise_has_the_task_mix(exercise):
    """At least 4 tasks; at least one build and one investigate task; at least half of them
    transfer; every task an autograded test cell with points right after its solution."""
    cells = exercise["solution"].cells
    tasks = [i for i, c in enumerate(cells) if _nbgrader(c).get("solution")]
    assert len(tasks) >= 4
    for i in tasks:
        test = _nbgrader(cells[i + 1])
        assert test.get("grade") and test.get("points", 0) > 0 and test.get("locked"), cells[i + 1]
        assert "### BEGIN HIDDEN TESTS" in cells[i + 1].source
    plan = [line for line in cells[0].source.splitlines() if re.match(r"\d+\. ", line)]
    assert len(plan) == len(tasks), plan
    assert any("*build*" in line for line in plan)
    assert any("*investigate*" in line for line in plan)
    assert 2 * sum("*transfer*" in line for line in plan) >= len(plan)
    headings = [c.source.splitlines()[0] for c in cells if c.source.startswith("## Task")]
    assert len(headings) == len(tasks), headings


def test_nothing_a_learner_receives_holds_a_solution_line(exercise):
    """Not the learner copy (code, text, outputs), not a hint, not a check message."""
    secret = _solution_lines(exercise["solution"])
    assert len(secret) >= 4
    module = _checks_of(exercise)
    received = {
        "the learner copy": "\n".join(
            c.source + "".join(str(o) for o in c.get("outputs", []))
            for c in exercise["learner"].cells
        ),
        "the hints and check messages": "\n".join(_strings_of(module)),
    }
    for where, text in received.items():
        flat = text.replace(" ", "")
        leaked = sorted(line for line in secret if line in flat)
        assert not leaked, f"solution lines in {where}: {leaked}"


def test_learner_copies_hold_stubs_and_no_hidden_tests(exercise):
    learner = exercise["learner"]
    stubs = [c for c in learner.cells if _nbgrader(c).get("solution")]
    blocks = _solution_blocks(exercise["solution"])
    assert sum(c.source.count("raise NotImplementedError()") for c in stubs) == len(blocks)
    text = "\n".join(c.source for c in learner.cells)
    assert "HIDDEN TESTS" not in text and "hidden=True" not in text


def test_every_task_has_two_hints_without_code(exercise):
    module = _checks_of(exercise)
    tasks = re.findall(r'task="(\w+)"', inspect.getsource(module))
    assert len(tasks) >= 4 and set(tasks) == set(module.hint.hints)
    for task in tasks:
        idea, api = module.hint.text(task, 1), module.hint.text(task, 2)
        assert "(the idea)" in idea and "(what to use)" in api
        assert "\n    " not in idea + api and "def " not in idea + api  # prose, not code


RESET = "get_ipython().run_line_magic('reset', '-f')  # the next learner copy starts afresh"


def _learner_copies_run_in_one_kernel() -> dict:
    """Every learner copy run top to bottom, one after the other in one kernel (TensorFlow
    is imported once): each starts with the user namespace reset, so nothing one defines is
    there for the next. {learner copy's name: its executed cells}."""
    from nbclient import NotebookClient

    copies = [notebook_tools.learner_copy_path(solution) for solution in SOLUTIONS]
    assert len({copy.parent for copy in copies}) == 1, "one folder, one kernel"
    combined = nbformat.read(copies[0], as_version=4)
    combined.cells, spans = [], {}
    for copy in copies:
        cells = nbformat.read(copy, as_version=4).cells
        combined.cells.append(nbformat.v4.new_code_cell(RESET))
        spans[copy.name] = (len(combined.cells), len(combined.cells) + len(cells))
        combined.cells.extend(cells)
    resources = {"metadata": {"path": str(copies[0].parent)}}
    NotebookClient(combined, timeout=300, allow_errors=True, resources=resources).execute()
    return {name: combined.cells[start:end] for name, (start, end) in spans.items()}


def _not_attempted_report(cells) -> list[str]:
    """What is wrong with one executed learner copy: an error, a cell not run, a task not
    reported as not attempted (with its hint) exactly once. Empty when all is well."""
    outputs = [output for cell in cells if cell.cell_type == "code" for output in cell.outputs]
    wrong = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    if not all(c.execution_count for c in cells if c.cell_type == "code"):
        wrong.append("a cell did not run")
    printed = "".join(output.get("text", "") for output in outputs)
    checks = sum(1 for c in cells if _nbgrader(c).get("grade"))
    counts = [printed.count(word) for word in ("[todo]", "not attempted yet", "hint(")]
    if checks < 4 or counts != [checks] * 3 or "[fail]" in printed:
        wrong.append(f"{checks} checks, printed [todo]/not attempted/hint( {counts}: {printed}")
    return wrong


def test_learner_copy_runs_and_reports_every_task_not_attempted():
    """Each learner copy, as a learner receives it, runs top to bottom without an error and
    reports every task as not attempted yet, with a hint (all copies in one kernel)."""
    assert os.environ.get("TUTORIAL_PROFILE") == "fast"
    runs = _learner_copies_run_in_one_kernel()
    assert len(runs) == len(SOLUTIONS)
    wrong = {
        name: report for name, cells in runs.items() if (report := _not_attempted_report(cells))
    }
    assert not wrong, wrong
