"""Notebook display helpers."""

import pytest

from tutorial_lib import display


def test_markdown_table_takes_every_column_of_every_row():
    table = display.markdown_table(
        [{"model": "real", "FD": 4.7971}, {"model": "GAN", "FD": 128.4, "seconds": 171}]
    )
    text = getattr(table, "data", table)  # IPython's Markdown object, or the plain string
    assert text.splitlines() == [
        "| model | FD | seconds |",
        "|---|---|---|",
        "| real | 4.797 | – |",
        "| GAN | 128.4 | 171 |",
    ]
    with pytest.raises(ValueError, match="at least one row"):
        display.markdown_table([])


def test_show_source_shows_the_code_that_runs():
    shown = display.show_source(display.markdown_table)
    text = getattr(shown, "data", shown)
    assert "def markdown_table" in text
