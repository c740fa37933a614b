"""Exercise 03 graded end to end as an instructor grades it: a course, the release, four
learners' submissions, ``python -m tutorial_lib grade`` (nbgrader's autograde with every
submission in the sandbox and every task graded by the grader), the gradebook.

The release and the two grading runs are the instructor's commands called in this
process (:func:`tutorial_lib.cli.main`, nbgrader's app), which has TensorFlow and nbgrader
loaded already; every learner's notebook and code still runs in its own sandboxed process.

First run (each notebook executed in the sandbox):

- mallory tries everything but the work: a cell that blanks the test cells, patches the
  checks, the result class and ``assert_passed``, writes into the installed package and
  into the course folder and tries the network; his hinge loss reads the checks' private
  reference, his penalty allocates 6 GiB (over the memory limit), his train_step cell
  patches the result class; his experiment is honest. He gets its 2 points, nothing else.

Second run (``--checks-only``: the tasks alone, faster), a new autograde after the first:

- alice, graded next, submits the solution: full marks, so nothing of mallory's stayed;
- bob submits the learner copy untouched: zero;
- dave gets two tasks wrong: his hinge loss never returns (cut by the time limit; his
  train_step, which calls it, is still graded on its own), his penalty is one-sided and he
  deleted its test cell (put back, failed); he edited the GAN's test cell (restored, hidden
  cases and all) and his GAN and experiment are right: 6 points.
"""

import contextlib
import os
import socket
import sys
import threading
from pathlib import Path

import nbformat
import pytest

import tutorial_lib
from tutorial_lib.course import notebook_tools

nbgrader = pytest.importorskip(
    "nbgrader", reason="the instructor extra: pip install -e '.[instructor]'"
)
# What nbgrader itself warns while it runs here (it did so unseen in its own process before):
# its gradebook's session, the cell it puts back without an id, and traitlets on the way
# the grader passes its settings (a quoted course folder, lists of preprocessors).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Object of type <Submitted",
    "ignore:Cell is missing an id field",
    "ignore:Supporting extra quotes around strings is deprecated",
    "ignore:--Autograde.*for containers is deprecated",
)

ASSIGNMENT = "03_gan"
TIMEOUT = 30  # seconds per cell and per call of a learner's function
# The second run's limit per cell and per call of the learner's process (its start, the
# setup cell, has 120 s more): dave's hinge loss waits it out. The longest request for a
# right answer (the GAN's train-step probe, traced once) took under 1 s on 2 cores at a
# load average of 5.5.
CALL_TIMEOUT = "6"
MEMORY_MB = 5000  # TensorFlow needs about 3 GiB of address space
POINTS = {
    "ex03-check-hinge": 2,
    "ex03-check-penalty": 2,
    "ex03-check-hinge-gan": 4,
    "ex03-check-saturation": 2,
}
PACKAGE_FILE = Path(tutorial_lib.__file__).parent / "checks" / "__init__.py"


def _require_the_sandbox() -> None:
    """The instructor extra brings bubblewrap: grading without it is a failure to see."""
    from tutorial_lib.grading import sandbox

    try:
        sandbox.find_bwrap()
    except sandbox.SandboxUnavailable as error:
        pytest.fail(f"the grading sandbox does not work here: {error}")


@contextlib.contextmanager
def _in_course(course: Path):
    """Run an nbgrader command here as an instructor runs it in the course folder: in that
    working directory, with this Python's tools on PATH (nbgrader calls alembic); the
    directory, PATH and ``sys.path`` (nbgrader puts the course there) put back after."""
    path, sys_path = os.environ["PATH"], list(sys.path)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + path
    try:
        with contextlib.chdir(course):
            yield
    finally:
        os.environ["PATH"], sys.path[:] = path, sys_path


def _release(course: Path) -> None:
    """``nbgrader generate_assignment ASSIGNMENT --force``, in this process (it has
    imported nbgrader already): the release and the gradebook's source cells."""
    from nbgrader.apps.generateassignmentapp import GenerateAssignmentApp

    with _in_course(course):
        try:
            app = GenerateAssignmentApp.instance()
            app.initialize([ASSIGNMENT, "--force"])
            app.start()
        except SystemExit as stop:
            pytest.fail(f"generate_assignment stopped with exit code {stop.code} (log above)")
        finally:
            GenerateAssignmentApp.clear_instance()


def _grade(course: Path, *args: str) -> int:
    """``python -m tutorial_lib grade ASSIGNMENT ...`` (:func:`tutorial_lib.cli.main`), in
    this process: the grader (nbgrader's autograde) runs here, every submission's notebook
    and code in the sandbox as always. Its exit code; its log goes to the logfile the course's config names."""
    from nbgrader.apps.autogradeapp import AutogradeApp

    from tutorial_lib import cli

    argv = ["grade", ASSIGNMENT, "--course", str(course), "--memory-mb", str(MEMORY_MB), *args]
    with _in_course(course):
        try:
            return cli.main(argv)
        finally:
            AutogradeApp.clear_instance()


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answer(nb, grade_id, source):
    _cell(nb, grade_id).source = source


def _insert_after(nb, grade_id, source):
    nb.cells.insert(nb.cells.index(_cell(nb, grade_id)) + 1, nbformat.v4.new_code_cell(source))


HOSTILE_CELL = """\
import socket
from pathlib import Path

import tutorial_lib
import tutorial_lib.checks as checks
import tutorial_lib.checks.gan as gan_checks

# the test cells that follow run nothing at all
get_ipython().input_transformers_cleanup.append(
    lambda lines: [] if any("check_" in line for line in lines) else lines
)
# every check passes, whatever it is given
passing = checks.CheckResult("check", checks.PASSED, "all hidden tests passed.")
for name in dir(gan_checks):
    if name.startswith("check_"):
        setattr(gan_checks, name, lambda *args, **kwargs: passing)
        globals()[name] = getattr(gan_checks, name)
checks.CheckResult.passed = property(lambda self: True)
checks.assert_passed = assert_passed = lambda *results: None
# for every notebook graded after this one
package = Path(tutorial_lib.__file__).parent / "checks" / "__init__.py"
try:
    with open(package, "a") as file:
        file.write("\\nCheckResult.passed = property(lambda self: True)  # hostile\\n")
    print("wrote into the package")
except OSError as error:
    print("package:", type(error).__name__)
course = Path(COURSE)
try:
    (course / "source" / "03_gan" / "hostile.txt").write_text("hostile")
    with open(course / "gradebook.db", "ab") as file:
        file.write(b"hostile")
    print("wrote into the course")
except OSError as error:
    print("course:", type(error).__name__)
socket.create_connection(("127.0.0.1", PORT), timeout=5).sendall(b"hostile")
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    _require_the_sandbox()
    course = notebook_tools.make_course(tmp_path_factory.mktemp("course"), timeout=TIMEOUT)
    log = tmp_path_factory.mktemp("log") / "nbgrader.log"  # every command's, outside the course
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(f"c.NbGrader.logfile = {str(log)!r}\n")
    _release(course)
    release = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source = nbformat.read(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)

    def learner_copy():
        return nbformat.read(release, as_version=4)

    def solved():
        nb = learner_copy()
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution"):
                cell.source = _cell(source, meta["grade_id"]).source
        return nb

    server = socket.create_server(("127.0.0.1", 0))  # the "network": it must hear nothing
    server.settimeout(0.5)
    heard = []

    def listen():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                heard.append(server.accept())

    stop = threading.Event()
    threading.Thread(target=listen, daemon=True).start()
    port = server.getsockname()[1]

    mallory = solved()
    _insert_after(mallory, "ex03-setup", f"COURSE, PORT = {str(course)!r}, {port}\n" + HOSTILE_CELL)
    _answer(
        mallory,
        "ex03-hinge",
        "from tutorial_lib.checks.gan import _hinge\n\n\n"
        "def hinge_d_loss(real_scores, fake_scores):\n    return _hinge(real_scores, fake_scores)\n",
    )
    _answer(
        mallory,
        "ex03-penalty",
        "def gradient_penalty(critic, real, fake, epsilon):\n"
        "    hog = bytearray(6 * 2**30)\n    return float(len(hog))\n",
    )
    _answer(
        mallory,
        "ex03-hinge-gan",
        _cell(learner_copy(), "ex03-hinge-gan").source + "\n\nimport tutorial_lib.checks\n\n"
        "tutorial_lib.checks.CheckResult.passed = property(lambda self: True)\n",
    )
    saturation = _cell(source, "ex03-saturation").source
    _answer(
        mallory,
        "ex03-saturation",
        saturation.replace(
            "    ### BEGIN SOLUTION\n",
            "    ### BEGIN SOLUTION\n    try:\n        import socket\n\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
            "    except OSError:\n        pass\n",
        ),
    )

    dave = solved()
    _answer(
        dave,
        "ex03-hinge",
        "def hinge_d_loss(real_scores, fake_scores):\n    while True:\n        pass\n",
    )
    penalty = _cell(source, "ex03-penalty").source
    _answer(
        dave,
        "ex03-penalty",
        penalty.replace("ops.square(norms - 1.0)", "ops.square(ops.relu(norms - 1.0))"),
    )
    dave.cells.remove(_cell(dave, "ex03-check-penalty"))
    _answer(dave, "ex03-check-hinge-gan", "result_gan = check_hinge_gan(HingeGAN)  # no hidden\n")

    submissions = {"mallory": mallory, "alice": solved(), "bob": learner_copy(), "dave": dave}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")

    package_before = PACKAGE_FILE.read_bytes()
    try:
        first = _grade(course, "--student", "mallory", "--cell-timeout", str(TIMEOUT))
        second = _grade(  # no notebook runs, only the tasks' calls: dave's waits it out
            course, "--student", "[abd]*", "--checks-only", "--cell-timeout", CALL_TIMEOUT
        )
    finally:
        stop.set()
        package_after = PACKAGE_FILE.read_bytes()
        if package_after != package_before:  # the sandbox failed: put the package back
            PACKAGE_FILE.write_bytes(package_before)
    assert first == 0 and second == 0, log.read_text()

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {
            student: {
                grade_id: gradebook.find_grade(grade_id, ASSIGNMENT, ASSIGNMENT, student).score
                for grade_id in POINTS
            }
            for student in submissions
        }
        totals = {s: gradebook.find_submission(ASSIGNMENT, s).score for s in scores}

    def autograded(student):
        path = course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        return nbformat.read(path, as_version=4)

    return {
        "scores": scores,
        "totals": totals,
        "autograded": autograded,
        "course": course,
        "heard": heard,
        "package_changed": package_after != package_before,
        "log": log.read_text(),
    }


def _outputs(nb, grade_id) -> str:
    cell = _cell(nb, grade_id)
    return "\n".join(
        o.get("text", "") + o.get("evalue", "") + " ".join(o.get("traceback", []))
        for o in cell.outputs
    )


def test_the_solution_gets_full_marks_after_a_hostile_submission(graded):
    assert graded["scores"]["alice"] == POINTS
    assert graded["totals"]["alice"] == sum(POINTS.values()) == 10


def test_the_untouched_learner_copy_gets_zero(graded):
    assert graded["totals"]["bob"] == 0
    assert "not attempted yet" in _outputs(graded["autograded"]("bob"), "ex03-check-hinge")


def test_two_wrong_tasks_lose_exactly_their_points(graded):
    assert graded["scores"]["dave"] == {
        "ex03-check-hinge": 0,  # never returns: cut by the time limit
        "ex03-check-penalty": 0,  # one-sided; its test cell deleted, put back, failed
        "ex03-check-hinge-gan": 4,  # its test cell edited, restored; his hinge loss not used
        "ex03-check-saturation": 2,
    }
    assert graded["totals"]["dave"] == 6


def test_a_task_that_never_returns_is_cut_off_and_the_others_are_graded(graded):
    assert "no answer within" in _outputs(graded["autograded"]("dave"), "ex03-check-hinge")


def test_deleted_and_edited_test_cells_are_graded_by_the_original_tests(graded):
    nb = graded["autograded"]("dave")
    assert "BEGIN HIDDEN TESTS" in _cell(nb, "ex03-check-hinge-gan").source
    assert "(hidden cases): all" in _outputs(nb, "ex03-check-hinge-gan")
    assert "It was added back by nbgrader" in _cell(nb, "ex03-check-penalty").source
    assert "one-sided" in _outputs(nb, "ex03-check-penalty")


def test_patching_the_checks_reading_them_or_hogging_memory_earns_nothing(graded):
    assert graded["scores"]["mallory"] == {
        "ex03-check-hinge": 0,  # the checks' private reference: not there while grading
        "ex03-check-penalty": 0,  # 6 GiB: over the memory limit
        "ex03-check-hinge-gan": 0,  # patched checks and result class: his stub is graded
        "ex03-check-saturation": 2,  # his honest experiment, network attempt and all
    }
    nb = graded["autograded"]("mallory")
    assert "MemoryError" in _outputs(nb, "ex03-check-penalty")
    assert "not attempted yet" in _outputs(nb, "ex03-check-hinge-gan")


def test_a_submission_cannot_write_into_the_package_the_course_or_reach_the_network(graded):
    assert not graded["package_changed"]
    course = graded["course"]
    assert not (course / "source" / ASSIGNMENT / "hostile.txt").exists()
    assert b"hostile" not in (course / "gradebook.db").read_bytes()
    assert graded["heard"] == []  # no connection reached the grader's machine
    hostile = graded["autograded"]("mallory").cells[2]
    text = " ".join(o.get("text", "") + o.get("ename", "") for o in hostile.outputs)
    assert "package: OSError" in text and "ConnectionRefusedError" in text, text


def test_grading_refuses_to_start_without_a_sandbox(tmp_path, monkeypatch, capsys):
    from tutorial_lib.grading import main, sandbox

    (tmp_path / "nbgrader_config.py").write_text("")
    monkeypatch.setenv("TUTORIAL_BWRAP", str(tmp_path / "no-bwrap-here"))
    sandbox.find_bwrap.cache_clear()
    try:
        assert main([ASSIGNMENT, "--course", str(tmp_path)]) == 1
    finally:
        sandbox.find_bwrap.cache_clear()
    error = capsys.readouterr().err
    assert "refusing to grade" in error and "--unsandboxed" in error


def test_the_log_warns_only_about_edited_test_cells(graded):
    """nbgrader alone warns "checksum has changed" for every test cell of every submission
    (the release lacks the hidden cases); the grader names the one cell dave edited."""
    assert "has changed" not in graded["log"]
    assert graded["log"].count("was edited in this submission") == 1
    assert "Cell ex03-check-hinge-gan was edited" in graded["log"]
