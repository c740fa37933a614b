"""Maintainer tools for the notebooks: keep them clean, refresh checked outputs.

The project commits notebooks without outputs, except cells marked
``# NBVAL_CHECK_OUTPUT``: nbval compares those cells' fresh output against the
stored one, so they keep their output and execution count.

::

    python -m tutorial_lib.notebook_tools refresh notebooks/00_setup.ipynb
    python -m tutorial_lib.notebook_tools check

``refresh`` executes a notebook in the fast profile (as the tests do), keeps
the outputs of the checked cells and strips the rest. ``check`` lists
notebooks with outputs outside checked cells (exit code 1 if any).
"""

from __future__ import annotations

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
    """Remove outputs and execution counts from every code cell that is not checked."""
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


def refresh(path: str | Path, timeout: int = 600) -> None:
    """Execute ``path`` in the fast profile, keep checked outputs, strip the rest."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ["TUTORIAL_PROFILE"] = "fast"
    os.environ.setdefault("MPLBACKEND", "Agg")
    NotebookClient(
        nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    strip(nb)
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["refresh"] and len(argv) > 1:
        for name in argv[1:]:
            refresh(name)
            print(f"refreshed {name}")
        return 0
    if argv == ["check"]:
        dirty = {p: dirty_cells(nbformat.read(p, as_version=4)) for p in all_notebooks()}
        dirty = {p: cells for p, cells in dirty.items() if cells}
        for path, cells in dirty.items():
            print(f"{path.relative_to(ROOT)}: outputs in unchecked cells {cells}")
        return 1 if dirty else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
