"""Exercise 03 graded end to end with real nbgrader, as an instructor would: a course,
the release, four learners' submissions, `nbgrader autograde`, the gradebook.

- alice submits the solution: full marks;
- bob submits the learner copy untouched: zero;
- carol gets two tasks wrong (the hinge loss without its ReLU, a wrong experiment):
  the points of the other two;
- dave's hinge loss never returns (cut off by nbgrader's timeout: 0 for that task, and
  grading goes on), he deleted the penalty's test cell and edited the GAN's (both are
  graded by the original tests, and fail on his wrong answers), and his experiment is
  right (its points, so the loop stopped nothing).
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tutorial_lib import notebook_tools

nbgrader = pytest.importorskip(
    "nbgrader", reason="the instructor extra: pip install -e '.[instructor]'"
)

ASSIGNMENT = "03_gan"
TIMEOUT = 20  # seconds per cell: the slowest cell of exercise 03 takes a few
POINTS = {
    "ex03-check-hinge": 2,
    "ex03-check-penalty": 2,
    "ex03-check-hinge-gan": 4,
    "ex03-check-saturation": 2,
}


def _nbgrader(course: Path, *args: str) -> str:
    """Run the nbgrader command line in the course, as an instructor does."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")  # alembic
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answer(nb, grade_id, source):
    _cell(nb, grade_id).source = source


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = notebook_tools.make_course(tmp_path_factory.mktemp("course"), timeout=TIMEOUT)
    _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
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

    alice, bob = solved(), learner_copy()
    carol = solved()
    solution = _cell(source, "ex03-hinge").source
    _answer(
        carol, "ex03-hinge", solution.replace("ops.relu(1.0 - real_scores)", "(1.0 - real_scores)")
    )
    _answer(carol, "ex03-saturation", "def saturation_experiment():\n    return 0.5\n")
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
    gan = _cell(source, "ex03-hinge-gan").source
    _answer(dave, "ex03-hinge-gan", gan.replace("self.d_optimizer.apply(", "(lambda *a: None)("))
    _answer(
        dave, "ex03-check-hinge-gan", "result_gan = check_hinge_gan(HingeGAN)  # no hidden tests\n"
    )

    for student, nb in {"alice": alice, "bob": bob, "carol": carol, "dave": dave}.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    log = _nbgrader(course, "autograde", ASSIGNMENT, "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {
            student: {
                grade_id: gradebook.find_grade(grade_id, ASSIGNMENT, ASSIGNMENT, student).score
                for grade_id in POINTS
            }
            for student in ("alice", "bob", "carol", "dave")
        }
        totals = {s: gradebook.find_submission(ASSIGNMENT, s).score for s in scores}
    autograded = course / "autograded"
    return {"scores": scores, "totals": totals, "log": log, "autograded": autograded}


def test_the_solution_gets_full_marks(graded):
    assert graded["scores"]["alice"] == POINTS
    assert graded["totals"]["alice"] == sum(POINTS.values()) == 10


def test_the_untouched_learner_copy_gets_zero(graded):
    assert graded["totals"]["bob"] == 0


def test_two_wrong_tasks_lose_exactly_their_points(graded):
    assert graded["scores"]["carol"] == {
        "ex03-check-hinge": 0,
        "ex03-check-penalty": 2,
        "ex03-check-hinge-gan": 4,
        "ex03-check-saturation": 0,
    }
    assert graded["totals"]["carol"] == 6


def test_a_task_that_never_returns_is_cut_off_and_the_others_are_graded(graded):
    assert graded["scores"]["dave"]["ex03-check-hinge"] == 0
    assert graded["scores"]["dave"]["ex03-check-saturation"] == 2
    nb = nbformat.read(graded["autograded"] / "dave" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    errors = [o for o in _cell(nb, "ex03-check-hinge").outputs if o.output_type == "error"]
    assert errors and errors[0].ename in ("KeyboardInterrupt", "CellTimeoutError"), errors


def test_deleted_and_edited_test_cells_are_graded_by_the_original_tests(graded):
    assert graded["scores"]["dave"]["ex03-check-penalty"] == 0  # deleted, put back, failed
    assert graded["scores"]["dave"]["ex03-check-hinge-gan"] == 0  # edited, restored, failed
    assert graded["totals"]["dave"] == 2
    nb = nbformat.read(graded["autograded"] / "dave" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    assert "BEGIN HIDDEN TESTS" in _cell(nb, "ex03-check-hinge-gan").source
    assert "It was added back by nbgrader" in _cell(nb, "ex03-check-penalty").source
