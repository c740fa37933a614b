"""Maintainer tools for the notebooks: keep them clean, refresh checked outputs,
generate the learners' copies of the exercises.

The project commits notebooks without outputs, except cells marked
``# NBVAL_CHECK_OUTPUT``: nbval compares those cells' fresh output against the
stored one, so they keep their output and execution count.

Each exercise has one source of truth, ``exercises/NN_topic_solution.ipynb``:
an nbgrader source notebook (solution cells with ``### BEGIN SOLUTION`` blocks,
autograded test cells with points and ``### BEGIN HIDDEN TESTS`` blocks). The
learner's copy, ``exercises/NN_topic.ipynb``, is what ``nbgrader
generate_assignment`` releases from it (nbgrader is in the ``instructor`` extra;
see INSTRUCTORS.md).

::

    python -m tutorial_lib.course.notebook_tools refresh notebooks/00_setup.ipynb
    python -m tutorial_lib.course.notebook_tools learner-copies
    python -m tutorial_lib.course.notebook_tools course COURSE_DIR
    python -m tutorial_lib.course.notebook_tools check

``refresh`` executes a notebook in the fast profile (as the tests do), keeps
the outputs of the checked cells and strips the rest. ``learner-copies``
regenerates every learner's copy with nbgrader. ``course`` lays out an nbgrader
course (config and source notebooks) in COURSE_DIR. ``check`` lists notebooks
with outputs outside checked cells and learner copies out of date (exit code 1
if any).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parents[2]


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
    """The lessons, in order (``notebooks/NN_*.ipynb``, a lesson's second part
    ``notebooks/NNb_*.ipynb`` right after its first)."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


def code_digest(path: str | Path) -> str:
    """The SHA-256 of a notebook's code cells, in order (Markdown and outputs left out):
    which code a lesson's shipped results were recorded from."""
    nb = nbformat.read(Path(path), as_version=4)
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.strip().encode("utf-8") + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def environment_set(settings: dict | None):
    """Set ``settings``' environment variables for a ``with`` block (the kernels started in
    it inherit them), then put back what was there before."""
    previous = {name: os.environ.get(name) for name in settings or {}}
    os.environ.update(settings or {})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(path: str | Path, environment: dict | None = None, *, timeout: int = 1800):
    """Run a notebook top to bottom in a fresh kernel, which inherits the environment with
    ``environment``'s variables set; returns the executed notebook (errors stay in its
    outputs: see :func:`error_outputs`)."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    with environment_set(environment):
        NotebookClient(
            nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
        ).execute()
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


SOLUTION_SUFFIX = "_solution.ipynb"
EXERCISES = ROOT / "exercises"
INSTRUCTOR_INSTALL = 'pip install -e ".[instructor]"'


def solution_notebooks() -> list[Path]:
    """Every exercise solution: the nbgrader source notebooks of the course."""
    return sorted(EXERCISES.glob(f"*{SOLUTION_SUFFIX}"))


def assignment_name(solution: Path) -> str:
    """``exercises/03_gan_solution.ipynb`` -> ``03_gan`` (the nbgrader assignment)."""
    return solution.name.removesuffix(SOLUTION_SUFFIX)


def learner_copy_path(solution: Path) -> Path:
    """``exercises/01_autoencoder_solution.ipynb`` -> ``exercises/01_autoencoder.ipynb``."""
    return solution.with_name(assignment_name(solution) + ".ipynb")


# The course's nbgrader_config.py. A test cell that a learner deleted is put
# back and graded (add_missing_cells); edited test cells are always restored
# from the source. Execute.timeout bounds every cell: a task that never
# returns is interrupted there, scores 0, and grading goes on.
COURSE_CONFIG = """\
# nbgrader configuration of the genai-notebooks exercises (see INSTRUCTORS.md).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "genai-notebooks"
c.CourseDirectory.root = {root!r}
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = {timeout}
"""


def _nbgrader():
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise SystemExit(
            f"nbgrader is not installed: it is the instructors' tool, `{INSTRUCTOR_INSTALL}`."
        ) from None


def make_course(root: str | Path, *, timeout: int = 120) -> Path:
    """Lay out an nbgrader course at ``root``: ``nbgrader_config.py`` and
    ``source/NN_topic/NN_topic.ipynb`` for every exercise (its solution notebook).
    Existing files there are overwritten; nothing else is touched."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(COURSE_CONFIG.format(root=str(root), timeout=timeout))
    for solution in solution_notebooks():
        folder = root / "source" / assignment_name(solution)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(solution, folder / learner_copy_path(solution).name)
    return root


def generate_release(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment ASSIGNMENT --no-db --force`` in ``course``, in this
    process; the folder of the release."""
    _nbgrader()
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.assignment_id = assignment
    config.GenerateAssignment.no_database = True
    config.SaveCells.enabled = False
    config.BaseConverter.force = True
    config.Application.log_level = "WARN"
    coursedir = CourseDirectory(config=config)
    GenerateAssignment(coursedir=coursedir, config=config).start()
    return course / "release" / assignment


def _generated_copies(out_dir: Path) -> dict[Path, Path]:
    """Generate every learner copy under ``out_dir``: {solution: its generated copy}."""
    course = make_course(out_dir / "course")
    return {
        solution: generate_release(course, assignment_name(solution))
        / learner_copy_path(solution).name
        for solution in solution_notebooks()
    }


def _comparable(path: Path) -> dict:
    return json.loads(json.dumps(nbformat.read(path, as_version=4)))


def stale_learner_copies() -> list[Path]:
    """Learner copies that are missing or differ from what nbgrader generates now."""
    with tempfile.TemporaryDirectory() as tmp:
        generated = _generated_copies(Path(tmp))
        return [
            learner_copy_path(solution)
            for solution, fresh in generated.items()
            if not learner_copy_path(solution).exists()
            or _comparable(learner_copy_path(solution)) != _comparable(fresh)
        ]


def write_learner_copies() -> list[Path]:
    """(Re)generate the learner's copy of every exercise with ``nbgrader generate_assignment``."""
    with tempfile.TemporaryDirectory() as tmp:
        written = []
        for solution, fresh in _generated_copies(Path(tmp)).items():
            shutil.copyfile(fresh, learner_copy_path(solution))
            written.append(learner_copy_path(solution))
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
    if argv[:1] == ["course"] and len(argv) == 2:
        root = make_course(argv[1])
        print(f"nbgrader course in {root}: source/ holds {len(solution_notebooks())} exercises")
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
