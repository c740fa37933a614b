"""nbgrader's autograde, with every submission run in the sandbox and every task graded
by the grader itself.

:class:`SandboxedExecute` takes the place of nbgrader's ``Execute`` preprocessor. For each
submission (after nbgrader has put back the source's test cells and locked cells):

1. the notebook runs top to bottom in the sandbox (:mod:`.sandbox`), in a copy of the
   submission's own folder, under the limits; what comes back is the executed notebook (JSON)
   for the feedback;
2. the grader grades every autograded test cell itself: it reads the checks the *source*
   test cell calls (and their ``hidden={...}`` cases), starts the learner's code alone in its
   own sandboxed process (the setup cell and the answer cells; not the test cells, not cells
   the learner added) and runs each check here against it (:mod:`.remote`). The test cell's
   outputs are replaced by the verdict: nothing the notebook printed or raised there counts.

nbgrader's own ``SaveAutoGrades`` then writes the gradebook, in the grader's process.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Integer, Unicode

from tutorial_lib.grading import sandbox
from tutorial_lib.grading.remote import GradingError, Worker

MAX_NOTEBOOK_BYTES = 64 * 2**20


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_test_cell(cell) -> bool:
    meta = _meta(cell)
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def learner_cells(nb) -> list[tuple[str, str]]:
    """(label, source) of the cells the learner's process runs: the locked setup cells and
    the answer (solution) cells, in order; not the test cells, not added cells."""
    cells = []
    for index, cell in enumerate(nb.cells):
        meta = _meta(cell)
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        if meta.get("solution") or meta.get("locked"):
            cells.append((meta.get("grade_id", f"cell {index}"), cell.source))
    return cells


def check_modules(nb) -> dict[str, str]:
    """{check name: module} from the ``from tutorial_lib.checks.X import ...`` of the
    notebook's locked cells."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not _meta(cell).get("locked") or is_test_cell(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "tutorial_lib.checks."
            ):
                for alias in node.names:
                    found[alias.asname or alias.name] = node.module
    return found


def planned_checks(source: str) -> list[tuple[str, str, dict]]:
    """The checks a test cell calls: (check name, the learner's name it checks, its literal
    keyword arguments such as ``hidden``), in the cell's order."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_")
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            kwargs = {
                k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg in ("hidden",)
            }
            calls.append((node.lineno, node.col_offset, node.func.id, node.args[0].id, kwargs))
    return [call[2:] for call in sorted(calls)]


def grade_tasks(nb, limits: sandbox.Limits, *, sandboxed: bool, hidden=()) -> dict[int, tuple]:
    """{index of a test cell: (passed, the line to show)} for every autograded test cell of
    ``nb`` (test cells as in the source)."""
    modules = check_modules(nb)
    tests = {i: c for i, c in enumerate(nb.cells) if is_test_cell(c)}
    verdicts = {}
    with Worker(
        learner_cells(nb), limits, sandboxed=sandboxed, hide_checks=True, hidden=hidden
    ) as worker:
        for index, cell in tests.items():
            lines, passed = [], True
            for check_name, target, kwargs in planned_checks(cell.source):
                try:
                    module = importlib.import_module(modules[check_name])
                    result = getattr(module, check_name)(worker[target], quiet=True, **kwargs)
                    status, message = result.status, result.message
                except Exception as error:  # a check that cannot run: say so, score 0
                    if getattr(error, "aborts_grading", False):
                        raise
                    status = "failed"
                    message = f"the grader could not run it ({type(error).__name__}: {error})"
                mark = {"passed": "[pass]", "failed": "[fail]"}.get(status, "[todo]")
                line = f"{mark} {check_name}{' (hidden cases)' if kwargs else ''}: {message}"
                if status != "passed":
                    passed = False
                    lines.append(line)
                    break
                lines.append(line)
            if not lines:
                passed, lines = False, ["no check found in this test cell"]
            verdicts[index] = (passed, lines)
    return verdicts


def verdict_outputs(passed: bool, lines: list[str]) -> list:
    text = "\n".join(lines) + "\n"
    if passed:
        return [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return [
        nbformat.v4.new_output(
            "error", ename="TaskFailed", evalue=lines[-1], traceback=["TaskFailed: " + text]
        )
    ]


def run_notebook(nb, folder: Path, limits: sandbox.Limits, *, sandboxed: bool, hidden=()):
    """Execute ``nb`` in the sandbox, in a copy of ``folder``: the executed notebook, or
    None when it did not finish in time (or left no notebook)."""
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        work = Path(tmp) / "submission"
        shutil.copytree(folder, work, symlinks=True, ignore=shutil.ignore_patterns("*.ipynb"))
        nbformat.write(nb, work / ".grading-in.ipynb")
        argv = [  # the script by its path: no import of the package (and of TensorFlow) there
            sys.executable,
            str(Path(__file__).with_name("run_notebook.py")),
            ".grading-in.ipynb",
            ".grading-out.ipynb",
            str(limits.cell_s),
        ]
        with open(Path(tmp) / "stderr.txt", "wb") as log:
            process = sandbox.launch(
                argv,
                work,
                limits,
                sandboxed=sandboxed,
                hidden=hidden,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        timed_out = False
        try:
            process.wait(timeout=limits.submission_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        sandbox.stop(process)
        out = work / ".grading-out.ipynb"
        if not timed_out and process.returncode != 0 and not out.exists():
            words = (Path(tmp) / "stderr.txt").read_text(errors="replace").strip().splitlines()
            raise GradingError(
                f"the sandboxed run of the notebook failed (exit code {process.returncode}): "
                + " | ".join(words[-5:])
            )
        if out.is_file() and not out.is_symlink() and out.stat().st_size < MAX_NOTEBOOK_BYTES:
            try:
                return nbformat.read(out, as_version=4)
            except Exception:  # not a notebook: whatever the submission left there
                pass
        return None


def _with_outputs_of(nb, executed):
    """A copy of the restored notebook ``nb`` with the outputs of the run: only outputs come
    from the sandbox (cell by cell, where the sources agree), never sources or metadata."""
    graded = nbformat.from_dict(nb)
    if len(executed.cells) != len(nb.cells):
        return graded
    kinds = ("stream", "display_data", "execute_result", "error")
    for cell, ran in zip(graded.cells, executed.cells, strict=True):
        if cell.cell_type == "code" and ran.get("source") == cell.source:
            outputs = [o for o in ran.get("outputs", []) if o.get("output_type") in kinds]
            cell.outputs = [nbformat.from_dict(o) for o in outputs]
            count = ran.get("execution_count")
            cell.execution_count = count if isinstance(count, int) else None
    try:
        nbformat.validate(graded)
    except nbformat.ValidationError:  # outputs the feedback cannot show: drop them all
        for cell in graded.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
    return graded


class SandboxedExecute(NbGraderPreprocessor):
    """nbgrader's Execute, sandboxed, with the tasks graded by the grader (see the module)."""

    sandboxed = Bool(True, help="run submissions in bubblewrap").tag(config=True)
    memory_mb = Integer(8192, help="address space per process, MiB").tag(config=True)
    cell_timeout = Integer(120, help="seconds per cell and per call").tag(config=True)
    submission_timeout = Integer(1800, help="seconds per notebook").tag(config=True)
    course_root = Unicode("", help="the course folder, hidden from submissions").tag(config=True)
    run_notebooks = Bool(True, help="run each notebook for the feedback").tag(config=True)

    def preprocess(self, nb, resources):
        limits = sandbox.Limits(
            memory_mb=self.memory_mb, cell_s=self.cell_timeout, submission_s=self.submission_timeout
        )
        hidden = [Path(self.course_root)] if self.course_root else []
        folder = Path(resources["metadata"]["path"])
        start = time.monotonic()
        if self.run_notebooks:
            executed = run_notebook(nb, folder, limits, sandboxed=self.sandboxed, hidden=hidden)
        else:  # --checks-only: the verdicts alone
            executed = nbformat.from_dict(nb)
        verdicts = grade_tasks(nb, limits, sandboxed=self.sandboxed, hidden=hidden)
        graded = _with_outputs_of(nb, executed or nb)
        for index, (passed, lines) in verdicts.items():
            graded.cells[index].outputs = verdict_outputs(passed, lines)
        if executed is None:
            note = f"This notebook did not finish within {limits.submission_s} s: it was stopped."
            graded.cells.insert(0, nbformat.v4.new_markdown_cell(note))
        self.log.info(
            "Graded %s in %.0f s: %d of %d test cells passed",
            resources.get("nbgrader", {}).get("student", "?"),
            time.monotonic() - start,
            sum(v[0] for v in verdicts.values()),
            len(verdicts),
        )
        return graded, resources


class OverwriteCellsQuietly(OverwriteCells):
    """nbgrader's OverwriteCells, warning about a test cell only when the learner edited it:
    an untouched cell differs from the source only by its hidden cases, which the release
    never had, so nbgrader warns "checksum has changed" for every cell of every submission."""

    def preprocess_cell(self, cell, resources, cell_index):
        self._released = None
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                source = self.gradebook.find_source_cell(
                    grade_id, self.notebook_id, self.assignment_id
                ).source
            except Exception:  # nbgrader reports a cell that is not in the gradebook
                source = None
            if source is not None:
                released = nbformat.v4.new_code_cell(source)
                ClearHiddenTests()._remove_hidden_test_region(released)
                self._released = cell.source.strip() == released.source.strip()
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new):
        if attr != "checksum":
            return super().report_change(name, attr, old, new)
        if not self._released:
            self.log.warning("Cell %s was edited in this submission: graded as in the source", name)


SANITIZE = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "tutorial_lib.grading.autograde.OverwriteCellsQuietly",
    "nbgrader.preprocessors.CheckCellMetadata",
]
PREPROCESSORS = [
    "tutorial_lib.grading.autograde.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]


def autograde_argv(assignment: str, course: Path, options) -> list[str]:
    """The arguments of ``nbgrader autograde`` that grade with :class:`SandboxedExecute`."""
    argv = [
        assignment,
        "--force",
        f"--Autograde.sanitize_preprocessors={SANITIZE!r}",
        f"--Autograde.autograde_preprocessors={PREPROCESSORS!r}",
        f"--SandboxedExecute.sandboxed={not options.unsandboxed}",
        f"--SandboxedExecute.memory_mb={options.memory_mb}",
        f"--SandboxedExecute.cell_timeout={options.cell_timeout}",
        f"--SandboxedExecute.submission_timeout={options.submission_timeout}",
        f"--SandboxedExecute.course_root={str(course)!r}",
    ]
    if options.checks_only:
        argv.append("--SandboxedExecute.run_notebooks=False")
    if options.student:
        argv.append(f"--student={options.student}")
    return argv


def autograde(argv: list[str], course: Path) -> int:
    """Run nbgrader's ``autograde`` with ``argv`` in ``course``, in this process."""
    from nbgrader.apps.autogradeapp import AutogradeApp

    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.chdir(course)  # nbgrader reads nbgrader_config.py from here, and calls alembic
    try:
        app = AutogradeApp.instance()
        app.initialize(argv)
        app.start()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    return 0
