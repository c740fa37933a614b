"""Measured figures in the lessons' prose, filled in from the shipped record.

A figure the Markdown of a lesson (or the README) quotes is followed by a
marker that says where it comes from and how it is written::

    a Fréchet distance of **115**<!--fig runs.gan.frechet_distance .0f-->

Markdown renders the marker as nothing. The path is looked up (dots between
keys, integers index lists) in the store of the ``cpu`` profile
(:mod:`tutorial_lib.checkpoints`):

* ``lessons.03_gan.runs.gan.frechet_distance`` -- any lesson's record;
* ``spread.03_gan.gan.frechet_distance.max`` -- over the seeds of ``pretrain``
  (``min``, ``max`` and ``mean`` of a list);
* ``bench.rows.2.train_seconds``, ``bench.floor.frechet_distance`` -- the benchmark;
* ``timings.load_seconds.03_gan`` -- how long each lesson ran, training or loading;
* in a lesson, any other path is read in that lesson's own record
  (``runs.gan.frechet_distance``, ``experiments.mode_collapse.frozen.coverage.-1``).

The format is a Python format spec (``.3f``, ``,.0f``, ``.1%``; default ``.3g``)
or one of :data:`NAMED_FORMATS`. ``python -m tutorial_lib.course.figures fill`` writes
every marked figure from the record; ``check`` lists those that disagree (a
test runs it), so the prose can only quote the record.

A whole table can come from the record too: in the README, the lines between
``<!-- begin bench -->`` and ``<!-- end bench -->`` are the benchmark of the
store (:func:`tutorial_lib.bench.markdown_report` of its ``bench.json``); in
INSTRUCTORS.md, those between ``<!-- begin lessons -->`` and ``<!-- end lessons -->``
are each lesson's slides and minutes (:func:`lessons_table`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tutorial_lib import checkpoints

ROOT = Path(__file__).resolve().parents[2]
PROFILE = "cpu"  # the profile whose record the prose quotes
MARKER = re.compile(
    r"(?P<number>[-+−]?\d[\d,]*(?:\.\d+)?(?:/10)?%?)(?P<close>\**)<!--fig (?P<path>\S+)(?: (?P<format>\S+))?-->"
)
NAMED_FORMATS = {
    "min": lambda v: f"{v / 60:.1f}",  # seconds as minutes
    "ms": lambda v: f"{v * 1000:.1f}",  # seconds as milliseconds
    "tenths": lambda v: f"{round(v * 10)}/10",  # a coverage as n/10 digits
    "int": lambda v: f"{round(v):,}",
    "millions": lambda v: f"{v / 1e6:.1f}",
}
AGGREGATES = {
    "min": min,
    "max": max,
    "mean": lambda values: sum(values) / len(values),
}


def context(profile: str = PROFILE) -> dict:
    """Everything a marker can name: the lessons' records, the spread, the benchmark."""
    store = checkpoints.store_dir(profile)
    found = {"lessons": {}, "spread": {}, "bench": {}, "timings": {}}
    for path in sorted(store.glob(f"*/{checkpoints.RECORD_FILE}")):
        found["lessons"][path.parent.name] = json.loads(path.read_text())
    for key, name in (
        ("spread", "spread.json"),
        ("bench", "bench.json"),
        ("timings", "lessons.json"),
    ):
        if (store / name).is_file():
            found[key] = json.loads((store / name).read_text())
    return found


def value_at(root: dict, path: str, lesson: str | None = None):
    """The number a marker's ``path`` names (see the module's description)."""
    head = path.split(".", 1)[0]
    if lesson is not None and head not in ("lessons", "spread", "bench", "timings"):
        path = f"lessons.{lesson}.{path}"
    parts = path.split(".")
    if parts[-1] in AGGREGATES:
        values = checkpoints.lookup(root, ".".join(parts[:-1]))
        return AGGREGATES[parts[-1]](values)
    return checkpoints.lookup(root, path)


def render(value, format_spec: str | None) -> str:
    """A figure as the prose writes it (a string, such as a table's ``"100%"``, as it is)."""
    if isinstance(value, str):
        return value
    if format_spec in NAMED_FORMATS:
        return NAMED_FORMATS[format_spec](value)
    return format(value, format_spec or ".3g")


def fill(text: str, root: dict, lesson: str | None = None) -> tuple[str, list[str]]:
    """``text`` with every marked figure written from the record, and the list of
    markers whose path is not in the record."""
    missing = []

    def replace(match):
        try:
            value = value_at(root, match["path"], lesson)
        except (KeyError, IndexError, TypeError, ValueError):
            missing.append(match["path"])
            return match.group(0)
        number = render(value, match["format"])
        fmt = f" {match['format']}" if match["format"] else ""
        return f"{number}{match['close']}<!--fig {match['path']}{fmt}-->"

    return MARKER.sub(replace, text), missing


BENCH_BLOCK = re.compile(r"(<!-- begin bench -->\n)(.*?)(<!-- end bench -->)", re.S)


LESSONS_BLOCK = re.compile(r"(<!-- begin lessons -->\n)(.*?)(<!-- end lessons -->)", re.S)


TIMING_KEYS = ("record_seconds", "load_seconds", "fast_seconds")


def lesson_minutes(timings: dict, stem: str) -> list[str]:
    """A lesson part's minutes for the facilitator's table, one per :data:`TIMING_KEYS`.

    A part timed on its own shows its minutes. A lesson timed as a whole before it was
    split into two parts (``whole_lesson_seconds``, keyed by part 1's name) shows that
    time on part 1's row, marked "both parts", and part 2's row points to it; a dash
    is a part with no timing at all.
    """
    whole = timings.get("whole_lesson_seconds", {})
    first_part = stem[:2] + "_" if stem[2:3] == "b" else None
    cells = []
    for key in TIMING_KEYS:
        own = timings.get(key, {})
        shared = whole.get(key, {})
        if stem in own:
            cells.append(NAMED_FORMATS["min"](own[stem]))
        elif stem in shared:
            cells.append(f"{NAMED_FORMATS['min'](shared[stem])} (both parts)")
        elif first_part and any(name.startswith(first_part) for name in shared):
            cells.append(f"in {stem[:2]}'s")
        else:
            cells.append("–")
    return cells


def lessons_table(timings: dict) -> str:
    """The facilitator's table: each lesson's slides and its minutes in the ``cpu``
    profile (training, or loading the shipped checkpoints) and in the ``fast`` profile."""
    import nbformat

    from tutorial_lib.course import notebook_tools, slides

    lines = [
        "| Lesson | Slides | cpu, training (min) | cpu, shipped checkpoints (min) "
        "| fast profile (min) |",
        "|---|---:|---:|---:|---:|",
    ]
    for path in notebook_tools.lesson_notebooks():
        nb = nbformat.read(path, as_version=4)
        title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
        minutes = lesson_minutes(timings, path.stem)
        lines.append(f"| {title} | {slides.count_slides(nb)} | " + " | ".join(minutes) + " |")
    return "\n".join(lines) + "\n"


def fill_tables(text: str, root: dict) -> str:
    """``text`` with its benchmark block (if any) written from the record's ``bench``, and
    its lessons block from the lessons' timings."""
    from tutorial_lib.bench import markdown_report

    if root.get("bench"):
        text = BENCH_BLOCK.sub(
            lambda m: m.group(1) + markdown_report(root["bench"]) + m.group(3), text
        )
    if root.get("timings"):
        text = LESSONS_BLOCK.sub(
            lambda m: m.group(1) + lessons_table(root["timings"]) + m.group(3), text
        )
    return text


def documents() -> list[Path]:
    """The lessons, the README and the instructors' guide: every text that may quote a figure."""
    from tutorial_lib.course import notebook_tools

    lessons = notebook_tools.lesson_notebooks()
    return [*lessons, ROOT / "README.md", ROOT / "INSTRUCTORS.md"]


def _texts(path: Path):
    """(cell index or None, text) of the Markdown of a notebook, or the whole README."""
    if path.suffix != ".ipynb":
        yield None, path.read_text(encoding="utf-8")
        return
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            yield index, "".join(cell["source"])


def disagreements(root: dict | None = None) -> list[str]:
    """Every marked figure that is not what the record says, as ``file: quoted != record``."""
    root = context() if root is None else root
    problems = []
    for path in documents():
        lesson = path.stem if path.suffix == ".ipynb" else None
        for index, text in _texts(path):
            where = path.name if index is None else f"{path.name} cell {index}"
            if fill_tables(text, root) != text:
                problems.append(f"{where}: a table (benchmark or lessons) is not the record's")
            filled, missing = fill(text, root, lesson)
            problems += [f"{where}: {p} is not in the record" for p in missing]
            for old, new in zip(MARKER.finditer(text), MARKER.finditer(filled), strict=True):
                if old["number"] != new["number"]:
                    problems.append(
                        f"{where}: {old['path']} quoted as {old['number']}, "
                        f"the record says {new['number']}"
                    )
    return problems


def fill_documents(root: dict | None = None) -> list[Path]:
    """Write every marked figure of the lessons and the README from the record."""
    import nbformat

    root = context() if root is None else root
    changed = []
    for path in documents():
        lesson = path.stem if path.suffix == ".ipynb" else None
        if path.suffix != ".ipynb":
            text = path.read_text(encoding="utf-8")
            filled, _ = fill(fill_tables(text, root), root)
            if filled != text:
                path.write_text(filled, encoding="utf-8")
                changed.append(path)
            continue
        nb = nbformat.read(path, as_version=4)
        dirty = False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                filled, _ = fill(cell.source, root, lesson)
                dirty |= filled != cell.source
                cell.source = filled
        if dirty:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["fill"]:
        for path in fill_documents():
            print(f"filled {path.relative_to(ROOT)}")
        return 0
    if argv == ["check"]:
        problems = disagreements()
        print("\n".join(problems) or "every marked figure agrees with the record")
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
