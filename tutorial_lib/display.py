"""Notebook display helpers: show a function's source, show a table of measurements."""

from __future__ import annotations

import inspect


def show_source(*objects):
    """The source code of functions or classes, syntax-highlighted in Jupyter.

    The notebooks use this to show the key code of a model that lives in
    ``tutorial_lib``, so the learner reads exactly what runs.
    """
    source = "\n\n".join(inspect.getsource(obj) for obj in objects)
    try:
        from IPython.display import Code
    except ImportError:
        return source
    return Code(source, language="python")


def markdown_table(rows: list[dict], *, floatfmt: str = ".4g"):
    """A list of dicts (one per row) as a Markdown table.

    The columns are every key of any row, in order of first appearance; a row
    without a key shows "–" there. Returns an ``IPython.display.Markdown`` object in Jupyter (its plain-text
    form is the Markdown source, readable anywhere), else the string.
    """
    if not rows:
        raise ValueError("markdown_table needs at least one row.")
    keys = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value):
        return format(value, floatfmt) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += [
        "| " + " | ".join(cell(row[k]) if k in row else "–" for k in keys) + " |" for row in rows
    ]
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown
    except ImportError:
        return text
    return Markdown(text)
