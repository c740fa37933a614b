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

from tutorial_lib import notebook_tools

SOLUTIONS = notebook_tools.solution_notebooks()
FAMILIES = {
    "01_autoencoder": "autoencoder",
    "02_vae": "vae",
    "03_gan": "gan",
    "04_transformer": "transformer",
    "05_diffusion": "diffusion",
    "06_flows": "flows",
    "07_compare": "compare",
    "08_in_the_world": "in_the_world",
}


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
    assert [notebook_tools.assignment_name(s) for s in SOLUTIONS] == list(FAMILIES)


def test_learner_copies_are_what_nbgrader_generates():
    pytest.importorskip("nbgrader", reason="the instructor extra: pip install -e '.[instructor]'")
    stale = notebook_tools.stale_learner_copies()
    assert not stale, (
        f"out of date: {[p.name for p in stale]}; run "
        "`python -m tutorial_lib.notebook_tools learner-copies`"
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
    module = importlib.import_module(f"tutorial_lib.checks.{FAMILIES[exercise['name']]}")
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
    module = importlib.import_module(f"tutorial_lib.checks.{FAMILIES[exercise['name']]}")
    tasks = re.findall(r'task="(\w+)"', inspect.getsource(module))
    assert len(tasks) >= 4 and set(tasks) == set(module.hint.hints)
    for task in tasks:
        idea, api = module.hint.text(task, 1), module.hint.text(task, 2)
        assert "(the idea)" in idea and "(what to use)" in api
        assert "\n    " not in idea + api and "def " not in idea + api  # prose, not code


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_learner_copy_runs_and_reports_every_task_not_attempted(solution):
    from nbclient import NotebookClient

    copy = notebook_tools.learner_copy_path(solution)
    nb = nbformat.read(copy, as_version=4)
    assert os.environ.get("TUTORIAL_PROFILE") == "fast"
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(copy.parent)}}).execute()
    printed = "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    checks = sum(1 for c in nb.cells if _nbgrader(c).get("grade"))
    assert printed.count("[todo]") == checks and "[fail]" not in printed
    assert printed.count("not attempted yet") == checks and printed.count("hint(") == checks
