"""The stores the course ships: every file matches its checksum, and the fast profile's
was recorded from each lesson's code as it is now (the lessons under nbval load it, the
switch on auto, see conftest.py): a lesson whose code changed is recorded again before
it lands."""

import json

import pytest

from tutorial_lib import checkpoints
from tutorial_lib.course import notebook_tools, pretrain


@pytest.mark.parametrize("profile", ["cpu", "fast"])
def test_every_file_of_a_shipped_store_matches_its_checksum(profile):
    store = checkpoints.STORE / profile
    listed = checkpoints.read_checksums(store)
    found = {
        path.relative_to(store).as_posix()
        for path in store.rglob("*")
        if path.is_file() and path.name != checkpoints.CHECKSUMS_FILE
    }
    assert found == set(listed), "every file listed, and only those"
    changed = checkpoints.damaged(store, [store / rel for rel in sorted(listed)])
    assert not changed, f"changed since their checksums were written: {list(changed.values())}"


def _recorded_code(lesson: str) -> str | None:
    """Which code the course's own fast store recorded ``lesson`` from."""
    path = checkpoints.STORE / "fast" / lesson / checkpoints.RECORD_FILE
    return json.loads(path.read_text()).get("code_sha256") if path.is_file() else None


def test_every_lessons_fast_results_come_from_its_code_as_it_is():
    stale = [
        path
        for path in pretrain.training_lessons()
        if _recorded_code(path.stem) != notebook_tools.code_digest(path)
    ]
    names = " ".join(f"notebooks/{path.name}" for path in stale)
    assert not stale, (
        f"The code of {names} changed since its fast runs were recorded: run "
        f"`python -m tutorial_lib pretrain --profile fast --seeds 1 --into-package {names}`."
    )


def test_the_digest_follows_the_code_and_ignores_prose_and_outputs(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Prose"), nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    before = notebook_tools.code_digest(path)
    nb.cells[0].source = "# Other prose"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(nb, path)
    assert notebook_tools.code_digest(path) == before
    nb.cells[1].source = "x = 2"
    nbformat.write(nb, path)
    assert notebook_tools.code_digest(path) != before
