"""The pieces of the sandboxed grading (tutorial_lib.grading), each in well under a second:
what crosses between the grader and a learner's process, which checks a test cell asks
for, and what a process in the sandbox can and cannot do. The end-to-end grading of
hostile submissions is tests/test_nbgrader_roundtrip.py."""

import ast
import importlib
import io
import socket
import subprocess
import sys
import textwrap

import nbformat
import numpy as np
import pytest

from tutorial_lib.course import notebook_tools
from tutorial_lib.grading import autograde, sandbox, wire


def test_plain_data_crosses_and_nothing_else():
    message = {"value": [np.arange(6, dtype=np.float32).reshape(2, 3), 1.5, float("nan")]}
    message["value"].append({"ok": True, "text": "é", "none": None, "n": np.int64(3)})
    got = wire.read(io.BytesIO(wire.dumps(message)))
    assert got["value"][0].dtype == np.float32 and got["value"][0].shape == (2, 3)
    assert got["value"][1] == 1.5 and np.isnan(got["value"][2])
    assert got["value"][3] == {"ok": True, "text": "é", "none": None, "n": 3}
    with pytest.raises(wire.WireError):
        wire.dumps({"value": np.array([object()], dtype=object)})
    with pytest.raises(wire.WireError):
        wire.dumps({1: "a key that is not a string"})


def test_a_pickle_in_a_reply_is_refused():
    """An npz holding a pickled object array (code that would run on loading) is rejected."""
    buffer = io.BytesIO()
    np.savez(buffer, a0=np.array([{"x": 1}], dtype=object))
    header = b'{"__array__": "a0"}'
    body = len(header).to_bytes(4, "big") + header + buffer.getvalue()
    with pytest.raises(ValueError, match="allow_pickle"):
        wire.read(io.BytesIO(len(body).to_bytes(8, "big") + body))


def _defined(nb) -> set[str]:
    names = set()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
    return names


@pytest.mark.parametrize("solution", notebook_tools.solution_notebooks(), ids=lambda p: p.stem)
def test_the_grader_finds_every_check_of_every_test_cell(solution):
    """Each test cell names a check the setup cell imports, on a name an answer cell
    defines; an exercise graded across the process boundary keeps its hidden cases in the
    source notebook only (a dict there, nothing in the package, nothing in the release)."""
    nb = nbformat.read(solution, as_version=4)
    modules = autograde.check_modules(nb)
    released = nbformat.read(notebook_tools.learner_copy_path(solution), as_version=4)
    released_text = "\n".join(c.source for c in released.cells)
    tests = [c for c in nb.cells if autograde.is_test_cell(c)]
    assert len(tests) >= 4
    for cell in tests:
        planned = autograde.planned_checks(cell.source)
        assert planned, cell.source
        for check, target, kwargs in planned:
            assert check in modules and target in _defined(nb), (check, target)
            module = importlib.import_module(modules[check])
            if kwargs:
                assert isinstance(kwargs["hidden"], dict), cell.source
                assert repr(kwargs["hidden"])[:20] not in released_text
                with pytest.raises(ValueError, match="source notebook"):
                    getattr(module, check)(lambda *a: None, hidden=True, quiet=True)
    labels = [label for label, _ in autograde.learner_cells(nb)]
    assert not set(labels) & {c.metadata["nbgrader"]["grade_id"] for c in tests}


SANDBOXED_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys
    from pathlib import Path
    report = []
    try:
        open(sys.argv[1], "a").write("hostile")
        report.append("package written")
    except OSError as error:
        report.append(f"package {type(error).__name__}")
    report.append(f"course visible {Path(sys.argv[2]).exists()}")
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=2)
        report.append("network reached")
    except OSError as error:
        report.append(f"network {type(error).__name__}")
    report.append(f"home {os.environ['HOME']} uid {os.getuid()}")
    Path("left.txt").write_text("in my own folder")
    try:
        bytearray(3 * 2**30)
        report.append("memory granted")
    except MemoryError:
        report.append("memory refused")
    print("; ".join(report))
    """
)


def test_the_sandbox_isolates_a_submission(tmp_path):
    try:
        sandbox.find_bwrap()
    except sandbox.SandboxUnavailable as error:
        pytest.skip(str(error))
    course, work = tmp_path / "course", tmp_path / "work"
    course.mkdir()
    work.mkdir()
    (course / "gradebook.db").write_text("grades")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    package = sandbox.PACKAGE / "checks" / "__init__.py"
    before = package.read_bytes()
    argv = [sys.executable, "-S", "-c", SANDBOXED_SCRIPT, str(package), str(course)]
    argv.append(str(server.getsockname()[1]))
    process = sandbox.launch(
        argv,
        work,
        sandbox.Limits(memory_mb=1024),
        sandboxed=True,
        hidden=[course],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=60)
    assert package.read_bytes() == before
    with pytest.raises(TimeoutError):
        server.accept()
    report = out.decode()
    assert "package OSError" in report and "course visible False" in report, report + err.decode()
    assert "network ConnectionRefusedError" in report and "home /tmp/home uid 1000" in report
    assert "memory refused" in report
    assert (work / "left.txt").read_text() == "in my own folder"


def test_a_learners_process_gone_before_it_is_asked_is_a_crash():
    """Writing to a process that has ended breaks the pipe: a crash like any other (its
    exit code), not a BrokenPipeError out of the grader."""
    from tutorial_lib.grading.remote import LearnerCrashed, Worker

    ended = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit(3)"], stdin=subprocess.PIPE
    )
    ended.wait()
    with Worker([("setup", "x = 1")], sandbox.Limits(cell_s=10)) as worker:
        worker.process = ended
        with pytest.raises(LearnerCrashed, match="exit code 3"):
            worker._send({"op": "exec", "source": "x" * 1_000_000, "label": "setup"})
        assert worker.process is None


def test_a_learners_process_that_cannot_start_is_the_graders_failure(monkeypatch):
    """Not the learner's: the submission is left ungraded with the reason, not given 0."""
    from tutorial_lib.grading.remote import GradingError, Worker

    try:
        sandbox.find_bwrap()
    except sandbox.SandboxUnavailable as error:
        pytest.skip(str(error))
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    worker = Worker([("setup", "x = 1")], sandbox.Limits(cell_s=10))
    with worker, pytest.raises(GradingError, match="did not start.*nonexistent"):
        worker.request({"op": "call", "target": "f", "args": []})


def test_the_learners_process_has_inert_checks_and_typed_errors():
    """While grading, the learner's process imports checks that do nothing and hold no
    reference; an error it raises reaches the check as the same builtin type."""
    from tutorial_lib.grading import remote, worker

    finder = worker._InertFinder()
    assert finder.find_spec("tutorial_lib.checks.gan") is not None
    assert finder.find_spec("tutorial_lib.checks.gan._hinge") is None  # no submodule trick
    inert = finder.create_module(finder.find_spec("tutorial_lib.checks.gan"))
    assert inert.check_hinge_d_loss(lambda: 0) is None and inert.assert_passed() is None
    with pytest.raises(AttributeError, match="not available while your notebook is graded"):
        inert._hinge  # noqa: B018
    error = remote._typed("ValueError")("ValueError", "two seeds at least")
    assert isinstance(error, ValueError) and isinstance(error, remote.LearnerError)
    assert type(error).__name__ == "ValueError" and remote._typed("MyError") is remote.LearnerError
