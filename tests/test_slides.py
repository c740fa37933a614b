"""Slide decks: every lesson carries slide metadata, and its deck has the slides that
metadata promises. The decks of the lessons themselves are built in the test run from the
outputs nbval produces (one execution for both: see ``LessonDeck`` in conftest.py)."""

import nbformat
import pytest

from tutorial_lib.course import slides

LESSONS = slides.lesson_notebooks()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_has_slide_metadata(lesson):
    nb = nbformat.read(lesson, as_version=4)
    assert slides.slide_type(nb.cells[0]) == "slide", "a deck starts with a title slide"
    untagged = [i for i, c in enumerate(nb.cells) if "slideshow" not in c.metadata]
    assert not untagged, f"cells without slideshow metadata: {untagged}"


def test_speaker_notes_become_aside_notes_and_reveal_is_copied(tmp_path):
    offline = slides.prepare_folder(tmp_path)
    nb = nbformat.read(LESSONS[1], as_version=4)  # not executed: notes need no outputs
    deck = slides.build_deck(nb, LESSONS[1].stem, tmp_path, offline=offline)
    html = deck.read_text(encoding="utf-8")
    assert '<aside class="notes">' in html
    assert slides.deck_slide_count(html) == slides.count_slides(nb)
    if slides.local_reveal() is None:
        pytest.skip("sphinx-revealjs is not installed: decks load reveal.js from a CDN")
    assert (tmp_path / "reveal.js" / "dist" / "reveal.js").is_file()


def test_count_slides_counts_slides_and_subslides():
    nb = nbformat.v4.new_notebook()
    kinds = ["slide", "-", "subslide", "fragment", "skip", "notes", "slide"]
    nb.cells = [nbformat.v4.new_markdown_cell("x") for _ in kinds]
    for cell, kind in zip(nb.cells, kinds, strict=True):
        cell.metadata["slideshow"] = {"slide_type": kind}
    assert slides.count_slides(nb) == 3
