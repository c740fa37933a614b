"""Every committed notebook is clean: outputs only in cells nbval checks."""

import nbformat
import pytest

from tutorial_lib.course import notebook_tools


@pytest.mark.parametrize("path", notebook_tools.all_notebooks(), ids=lambda p: p.name)
def test_outputs_only_in_checked_cells(path):
    nb = nbformat.read(path, as_version=4)
    assert notebook_tools.dirty_cells(nb) == [], (
        f"{path.name} has outputs in unchecked cells; "
        f"run `python -m tutorial_lib.course.notebook_tools refresh {path}`"
    )
    if path.parent.name == "exercises" and not path.name.endswith("_solution.ipynb"):
        return  # a learner's copy, as nbgrader releases it: nbval never runs it
    for cell in nb.cells:
        if notebook_tools.is_checked(cell):
            assert cell.outputs and cell.execution_count, (
                f"{path.name}: a checked cell has no stored output to compare against"
            )


def test_strip_keeps_checked_outputs_only():
    nb = nbformat.v4.new_notebook()
    plain = nbformat.v4.new_code_cell(
        "1 + 1",
        execution_count=1,
        outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"})],
    )
    checked = nbformat.v4.new_code_cell(
        "# NBVAL_CHECK_OUTPUT\n2 + 2",
        execution_count=2,
        outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "4"})],
    )
    nb.cells = [plain, checked]
    assert notebook_tools.dirty_cells(nb) == [0]
    notebook_tools.strip(nb)
    assert plain.outputs == [] and plain.execution_count is None
    assert checked.outputs and checked.execution_count == 2
    assert notebook_tools.dirty_cells(nb) == []


def test_strip_drops_the_saved_widget_state():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    notebook_tools.strip(nb)
    assert "widgets" not in nb.metadata
