"""Every committed notebook is clean: outputs only in cells nbval checks."""

import ast

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


def _discarded_displays(source: str) -> list[str]:
    """Calls in a cell whose result is a picture or a table (``plotting.*``,
    ``markdown_table``) but is thrown away: only a cell's last line is shown."""
    lines = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    body = ast.parse(lines).body
    return [
        ast.unparse(statement.value.func)
        for statement in body[:-1]
        if isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and ast.unparse(statement.value.func).startswith(("plotting.", "markdown_table"))
    ]


@pytest.mark.parametrize("path", notebook_tools.all_notebooks(), ids=lambda p: p.name)
def test_every_plot_and_table_a_cell_makes_is_shown(path):
    """A plotting function returns its figure, shown only as the cell's result: one
    drawn earlier in the cell must go through ``display(...)``."""
    cells = nbformat.read(path, as_version=4).cells
    lost = [
        (index, name)
        for index, cell in enumerate(cells)
        if cell.cell_type == "code"
        for name in _discarded_displays(cell.source)
    ]
    assert not lost, f"{path.name}: drawn but never shown (cell, call): {lost}"


def test_a_plot_before_the_last_line_is_found():
    assert _discarded_displays("plotting.line_plot(x)\ny = 1") == ["plotting.line_plot"]
    assert _discarded_displays("display(plotting.line_plot(x))\ny = 1") == []
    assert _discarded_displays("y = 1\nplotting.line_plot(x)") == []
