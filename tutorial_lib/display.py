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
    """A list of dicts (one per row, same keys) as a Markdown table.

    Returns an ``IPython.display.Markdown`` object in Jupyter (its plain-text
    form is the Markdown source, readable anywhere), else the string.
    """
    if not rows:
        raise ValueError("markdown_table needs at least one row.")
    keys = list(rows[0])

    def cell(value):
        return format(value, floatfmt) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row[k]) for k in keys) + " |" for row in rows]
    text = "\n".join(lines)
    try:
        from IPython.display import Markdown
    except ImportError:
        return text
    return Markdown(text)
