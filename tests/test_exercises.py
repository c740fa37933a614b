"""Exercise machinery: learner copies are generated from the solutions and current,
and a learner's copy runs top to bottom reporting every task as not attempted."""

import os

import nbformat
import pytest

from tutorial_lib import notebook_tools

SOLUTIONS = notebook_tools.solution_notebooks()


def test_every_exercise_has_a_solution():
    assert SOLUTIONS, "no exercises/*_solution.ipynb found"


def test_learner_copies_are_current():
    stale = notebook_tools.stale_learner_copies()
    assert not stale, (
        f"out of date: {[p.name for p in stale]}; "
        "run `python -m tutorial_lib.notebook_tools learner-copies`"
    )


def test_stub_source_replaces_solution_blocks_with_a_hint():
    source = (
        "def f(x):\n"
        "    ### BEGIN SOLUTION\n"
        "    ### HINT: double it\n"
        "    return 2 * x\n"
        "    ### END SOLUTION\n"
        "\n"
        "# NBVAL_CHECK_OUTPUT\n"
        "check(f)"
    )
    stub = notebook_tools.stub_source(source)
    assert "return 2 * x" not in stub and "NBVAL_CHECK_OUTPUT" not in stub
    assert '    # YOUR CODE HERE\n    raise NotImplementedError("double it")' in stub
    namespace = {}
    exec(stub.replace("check(f)", ""), namespace)
    with pytest.raises(NotImplementedError, match="double it"):
        namespace["f"](1)


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without a BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another block"),
    ],
)
def test_unbalanced_markers_are_reported(source, message):
    with pytest.raises(ValueError, match=message):
        notebook_tools.stub_source(source, where="ex.ipynb, cell 3")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_learner_copy_runs_and_reports_every_task_not_attempted(solution):
    from nbclient import NotebookClient

    copy = notebook_tools.learner_copy_path(solution)
    nb = nbformat.read(copy, as_version=4)
    env_profile = os.environ.get("TUTORIAL_PROFILE")
    assert env_profile == "fast"
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(copy.parent)}}).execute()
    printed = "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    solution_nb = nbformat.read(solution, as_version=4)
    checks = sum(
        1 for c in solution_nb.cells if notebook_tools.is_checked(c) and "check_" in c.source
    )
    assert printed.count("[todo]") == checks and "[fail]" not in printed
    assert printed.count("not attempted yet") == checks
