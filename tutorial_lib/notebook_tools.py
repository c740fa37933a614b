"""Maintainer tools for the notebooks: keep them clean, refresh checked outputs,
generate the learners' copies of the exercises.

The project commits notebooks without outputs, except cells marked
``# NBVAL_CHECK_OUTPUT``: nbval compares those cells' fresh output against the
stored one, so they keep their output and execution count.

Each exercise has one source of truth, ``exercises/NN_topic_solution.ipynb``,
whose answers sit between nbgrader-style markers::

    def add_noise(x, noise_factor, seed):
        ### BEGIN SOLUTION
        ### HINT: add noise_factor * standard normal noise, then clip to [0, 1]
        rng = np.random.default_rng(seed)
        ...
        ### END SOLUTION

The learner's copy, ``exercises/NN_topic.ipynb``, is generated from it: each
marked block becomes ``raise NotImplementedError("<the hint>")``.

::

    python -m tutorial_lib.notebook_tools refresh notebooks/00_setup.ipynb
    python -m tutorial_lib.notebook_tools learner-copies
    python -m tutorial_lib.notebook_tools check

``refresh`` executes a notebook in the fast profile (as the tests do), keeps
the outputs of the checked cells and strips the rest. ``learner-copies``
regenerates every learner's copy. ``check`` lists notebooks with outputs
outside checked cells and learner copies out of date (exit code 1 if any).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parents[1]


def is_checked(cell) -> bool:
    """True for a code cell whose output nbval compares."""
    return cell.cell_type == "code" and CHECK_MARKER in cell.source


def strip(nb) -> None:
    """Remove outputs and execution counts from every code cell that is not checked,
    and the notebook's saved widget state (only the removed outputs showed widgets;
    its ids change on every run)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and not is_checked(cell):
            cell.outputs = []
            cell.execution_count = None


def dirty_cells(nb) -> list[int]:
    """Indices of unchecked code cells that carry outputs or an execution count."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and not is_checked(cell)
        and (cell.outputs or cell.execution_count is not None)
    ]


def all_notebooks() -> list[Path]:
    """Every notebook of the project (lessons and exercises), sorted."""
    found = [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/*.ipynb")]
    return sorted(p for p in found if ".ipynb_checkpoints" not in p.parts)


def lesson_notebooks() -> list[Path]:
    """The lessons, in order (``notebooks/NN_*.ipynb``)."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def execute(path: str | Path, environment: dict | None = None, *, timeout: int = 1800):
    """Run a notebook top to bottom in a fresh kernel, which inherits the environment with
    ``environment``'s variables set; returns the executed notebook (errors stay in its
    outputs: see :func:`error_outputs`)."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    previous = {name: os.environ.get(name) for name in environment or {}}
    os.environ.update(environment or {})
    try:
        NotebookClient(
            nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return nb


def error_outputs(nb) -> list[str]:
    """``ename: evalue`` of every error output in an executed notebook."""
    return [
        f"{output.ename}: {output.evalue}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


def refresh(path: str | Path, timeout: int = 600) -> None:
    """Execute ``path`` in the fast profile, keep checked outputs, strip the rest."""
    settings = {"TUTORIAL_PROFILE": "fast", "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    nb = execute(path, settings, timeout=timeout)
    strip(nb)
    nbformat.write(nb, Path(path))


BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
HINT = "### HINT:"
SOLUTION_SUFFIX = "_solution.ipynb"


def solution_notebooks() -> list[Path]:
    """Every exercise solution (the sources of the learners' copies)."""
    return sorted(ROOT.glob(f"exercises/*{SOLUTION_SUFFIX}"))


def learner_copy_path(solution: Path) -> Path:
    """``exercises/01_autoencoder_solution.ipynb`` -> ``exercises/01_autoencoder.ipynb``."""
    return solution.with_name(solution.name.removesuffix(SOLUTION_SUFFIX) + ".ipynb")


LINE_LENGTH = 100  # ruff's, in pyproject.toml


def _raise_lines(indent: str, hint: str) -> list[str]:
    """``raise NotImplementedError("hint")``, laid out as ``ruff format`` would."""
    message = json.dumps(hint, ensure_ascii=False)
    line = f"{indent}raise NotImplementedError({message})"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"{indent}raise NotImplementedError(", f"{indent}    {message}", f"{indent})"]


def stub_source(source: str, where: str = "cell") -> str:
    """Replace every marked solution block in ``source`` by a stub that raises."""
    out, block, indent, hint = [], None, "", ""
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN_SOLUTION):
            if block is not None:
                raise ValueError(f"{where}, line {number}: {BEGIN_SOLUTION} inside another block")
            block, indent = number, line[: len(line) - len(line.lstrip())]
            hint = "replace this line with your code"
        elif stripped.startswith(END_SOLUTION):
            if block is None:
                raise ValueError(f"{where}, line {number}: {END_SOLUTION} without a BEGIN")
            out.append(f"{indent}# YOUR CODE HERE")
            out.extend(_raise_lines(indent, hint))
            block = None
        elif block is not None:
            if stripped.startswith(HINT):
                hint = stripped.removeprefix(HINT).strip()
        elif CHECK_MARKER not in line:
            out.append(line)
    if block is not None:
        raise ValueError(f"{where}, line {block}: {BEGIN_SOLUTION} is never closed")
    return "\n".join(out)


def make_learner_copy(solution: Path):
    """The learner's notebook generated from a solution notebook, without outputs."""
    nb = nbformat.read(solution, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = stub_source(cell.source, where=f"{solution.name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    return nb


def _sources(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def stale_learner_copies() -> list[Path]:
    """Learner copies that are missing or differ from what their solution generates."""
    stale = []
    for solution in solution_notebooks():
        copy = learner_copy_path(solution)
        current = copy.exists() and _sources(nbformat.read(copy, as_version=4)) == _sources(
            make_learner_copy(solution)
        )
        if not current:
            stale.append(copy)
    return stale


def write_learner_copies() -> list[Path]:
    """(Re)generate the learner's copy of every exercise solution."""
    written = []
    for solution in solution_notebooks():
        copy = learner_copy_path(solution)
        nbformat.write(make_learner_copy(solution), copy)
        written.append(copy)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["refresh"] and len(argv) > 1:
        for name in argv[1:]:
            refresh(name)
            print(f"refreshed {name}")
        return 0
    if argv == ["learner-copies"]:
        for path in write_learner_copies():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if argv == ["check"]:
        dirty = {p: dirty_cells(nbformat.read(p, as_version=4)) for p in all_notebooks()}
        dirty = {p: cells for p, cells in dirty.items() if cells}
        for path, cells in dirty.items():
            print(f"{path.relative_to(ROOT)}: outputs in unchecked cells {cells}")
        stale = stale_learner_copies()
        for path in stale:
            print(f"{path.relative_to(ROOT)}: out of date; run `... notebook_tools learner-copies`")
        return 1 if dirty or stale else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
