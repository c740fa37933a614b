"""Every lesson part fits one 50-minute class: at most 35 cells and 2,500 words of Markdown.

A word is a whitespace-separated token with a letter or a digit in it, counted in the
Markdown cells only, after taking out what a learner does not read as prose: fenced and
inline code, LaTeX (``$...$``, ``$$...$$``) and HTML comments (the ``<!--fig ...-->``
markers). Reading the notebooks' JSON costs a few milliseconds.
"""

import json
import re

import pytest

from tutorial_lib.course import notebook_tools

MAX_CELLS = 35
MAX_WORDS = 2_500
NOT_PROSE = [
    re.compile(r"<!--.*?-->", re.S),  # figure and reference markers
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\$[^$\n]+\$"),  # inline math
    re.compile(r"`[^`\n]*`"),  # inline code
]
WORD = re.compile(r"[^\W_]")  # a token counts when it holds a letter or a digit


def prose_words(markdown: str) -> int:
    """The words of one Markdown cell a learner reads as prose."""
    for pattern in NOT_PROSE:
        markdown = pattern.sub(" ", markdown)
    return sum(1 for token in markdown.split() if WORD.search(token))


def lesson_size(path) -> tuple[int, int]:
    """(cells, words of Markdown prose) of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    words = sum(
        prose_words("".join(cell["source"])) for cell in cells if cell["cell_type"] == "markdown"
    )
    return len(cells), words


def test_words_are_counted_in_prose_only():
    text = (
        "Two **bold** words, $x^2 + y$ and `code()` out.\n\n$$a = b$$\n<!--fig runs.x .1f-->| --- |"
    )
    assert prose_words(text) == 5  # Two, bold, words, and, out: no math, code or marker


@pytest.mark.parametrize("path", notebook_tools.lesson_notebooks(), ids=lambda p: p.stem)
def test_a_lesson_part_fits_one_class(path):
    cells, words = lesson_size(path)
    assert cells <= MAX_CELLS and words <= MAX_WORDS, (
        f"{path.name}: {cells} cells and {words:,} words of Markdown; one class holds at most "
        f"{MAX_CELLS} cells and {MAX_WORDS:,} words: tighten it, or split it where its arc "
        "breaks into a second part, notebooks/NNb_*.ipynb"
    )
