"""Slide decks: every lesson builds into a reveal.js deck with the slides its
metadata promises and no error output (fast profile)."""

import nbformat
import pytest

from tutorial_lib import slides

LESSONS = slides.lesson_notebooks()


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    return out, {
        path.name.removesuffix(".slides.html"): path for path in slides.build_all("fast", out)
    }


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_has_slide_metadata(lesson):
    nb = nbformat.read(lesson, as_version=4)
    assert slides.slide_type(nb.cells[0]) == "slide", "a deck starts with a title slide"
    untagged = [i for i, c in enumerate(nb.cells) if "slideshow" not in c.metadata]
    assert not untagged, f"cells without slideshow metadata: {untagged}"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_deck_has_the_expected_slides_and_no_errors(decks, lesson):
    out, built = decks
    html = built[lesson.stem].read_text(encoding="utf-8")
    expected = slides.count_slides(nbformat.read(lesson, as_version=4))
    assert slides.deck_slide_count(html) == expected
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html  # no errors, no logs
    assert "Traceback (most recent call last)" not in html
    assert "<img" in html or lesson.stem == "00_setup", "the executed plots are in the deck"


def test_speaker_notes_become_aside_notes(decks):
    out, built = decks
    html = built["01_autoencoder"].read_text(encoding="utf-8")
    assert '<aside class="notes">' in html


def test_offline_reveal_copy_when_available(decks):
    out, _ = decks
    if slides.local_reveal() is None:
        pytest.skip("sphinx-revealjs is not installed: decks load reveal.js from a CDN")
    assert (out / "reveal.js" / "dist" / "reveal.js").is_file()


def test_count_slides_counts_slides_and_subslides():
    nb = nbformat.v4.new_notebook()
    kinds = ["slide", "-", "subslide", "fragment", "skip", "notes", "slide"]
    nb.cells = [nbformat.v4.new_markdown_cell("x") for _ in kinds]
    for cell, kind in zip(nb.cells, kinds, strict=True):
        cell.metadata["slideshow"] = {"slide_type": kind}
    assert slides.count_slides(nb) == 3
