"""The bibliography, tutorial_lib/references.toml, and the lessons that cite it.

A lesson cites a work with a marker right after the citation, ``Dinh et al.
(2017)<!--ref dinh2017-->``. Every marker must name an entry, every entry must be cited,
and a figure quoted beside a literature citation must carry a marker whose entry lists
that figure (with the data model it was measured on). A knowledge check shows its text
as it is, so a quiz names the work in words instead ("Burda et al. (2016)"): there the
first author's surname and the year find the entry. Reads text files only: well under a
second.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "tutorial_lib" / "references.toml"
REF = re.compile(r"<!--ref ([^\s>]+)-->")
FIG = re.compile(r"[-+−]?\d[\d,]*(?:\.\d+)?(?:/10)?%?\**<!--fig [^>]*-->")
# A citation: "et al." or a year in parentheses, "(2017)", "(Ghosh et al., 2020" or "2018)".
CITATION = re.compile(r"et al\.|\((?:19|20)\d\d\)|\b(?:19|20)\d\d\)")
# A figure from the literature: a decimal, a number with thousands separators, or a
# percentage. Small integers (a year, a table's number, 28×28) are not figures.
NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+\.\d+(?!\w)|\d+%")
FIELDS = ("authors", "title", "year", "venue", "url")


def _literature() -> list[tuple]:
    """Notebook 07's published likelihoods (``tutorial_lib.compare.LITERATURE``), each with
    its entry's key, read from their data file (importing compare would load TensorFlow)."""
    path = ROOT / "tutorial_lib" / "course" / "tables" / "literature.toml"
    figures = tomllib.loads(path.read_text(encoding="utf-8"))["figure"]
    return [(f["model"], f["likelihood"], f["nats_per_image"], f["reference"]) for f in figures]


def _entries() -> dict:
    return tomllib.loads(REFERENCES.read_text(encoding="utf-8"))


def _notebook_texts(path: Path):
    """(where, text) of every cell of a notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for index, cell in enumerate(cells):
        yield f"{path.relative_to(ROOT)} cell {index}", "".join(cell["source"]), cell["cell_type"]


def _documents():
    """(where, text, kind) of every cell of the lessons and exercises, and every quiz file
    (kind "quiz")."""
    for folder in ("notebooks", "exercises"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            yield from _notebook_texts(path)
    for path in sorted((ROOT / "tutorial_lib" / "course" / "quizzes").glob("*.toml")):
        yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"), "quiz"


def _units(text: str):
    """A Markdown text cut into sentences and table rows, the units a citation covers."""
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        rows = [line for line in lines if line.lstrip().startswith("|")]
        yield from rows
        prose = " ".join(line for line in lines if not line.lstrip().startswith("|"))
        yield from re.split(r"(?<=[.!?])\s+(?=[A-Z*(\[-])(?<!al\. )", prose)


def _surname(entry: dict) -> str:
    """The first author's surname: the last word of the first name in ``authors``."""
    authors = entry["authors"]
    first = authors[0] if isinstance(authors, list) else authors.split(",")[0]
    return first.split()[-1]


def _named(unit: str, entries: dict) -> list[dict]:
    """The entries a unit names in words: the first author's surname and the year."""
    return [
        entry
        for entry in entries.values()
        if re.search(rf"\b{re.escape(_surname(entry))}\b", unit) and str(entry["year"]) in unit
    ]


def literature_figures_without_entry(text: str, entries: dict, *, by_name=False) -> list[str]:
    """Every number quoted in a sentence or table row of ``text`` that cites the literature,
    which no entry cited in that unit lists among its figures (cited by a marker, or with
    ``by_name`` also by the first author's surname and the year)."""
    missing = []
    for unit in _units(text):
        if not CITATION.search(unit):
            continue
        cited = [entries.get(key, {}) for key in REF.findall(unit)]
        if by_name:
            cited += _named(unit, entries)
        listed = " ".join(figure for entry in cited for figure in entry.get("figures", []))
        for number in NUMBER.findall(FIG.sub("", unit)):
            if number not in listed:
                missing.append(f"{number} in {unit.strip()[:120]!r}")
    return missing


def test_every_entry_has_its_fields():
    entries = _entries()
    assert entries, "references.toml is empty"
    for key, entry in entries.items():
        absent = [field for field in FIELDS if not entry.get(field)]
        assert not absent, f"references.toml [{key}] lacks {', '.join(absent)}"
        assert isinstance(entry["year"], int), f"[{key}] year should be a number"
        assert entry["url"].startswith(("https://", "http://")), f"[{key}] url: {entry['url']}"
        assert re.fullmatch(r"[a-z]+\d{4}[a-z0-9]*", key), f"[{key}]: keys read like dinh2017"


def test_every_marker_names_an_entry():
    entries = _entries()
    unknown = [
        f"{where}: <!--ref {key}-->"
        for where, text, _ in _documents()
        for key in REF.findall(text)
        if key not in entries
    ]
    assert not unknown, "no entry in references.toml for:\n" + "\n".join(unknown)


def test_every_entry_is_cited():
    cited = {key for _, text, _ in _documents() for key in REF.findall(text)}
    cited |= {row[-1] for row in _literature()}
    uncited = sorted(set(_entries()) - cited)
    assert not uncited, f"entries no lesson, exercise or quiz cites: {', '.join(uncited)}"


def test_every_literature_figure_names_the_work_that_reports_it():
    entries = _entries()
    missing = [
        f"{where}: {problem}"
        for where, text, kind in _documents()
        if kind in ("markdown", "quiz")
        for problem in literature_figures_without_entry(text, entries, by_name=kind == "quiz")
    ]
    assert not missing, (
        "a figure beside a citation needs <!--ref KEY--> after the citation, and KEY's entry "
        "must list the figure:\n" + "\n".join(missing)
    )


def test_the_published_likelihoods_of_notebook_07_are_listed_under_their_papers():
    entries = _entries()
    for name, _, value, key in _literature():
        assert key in entries, f"{name}: no entry {key}"
        assert f"{value:.2f}" in " ".join(entries[key].get("figures", [])), (name, key)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("RealNVP reaches 1.06 bits (Dinh et al., 2017).", 1),
        ("RealNVP reaches 1.06 bits (Grathwohl et al. (2019)<!--ref grathwohl2019-->).", 0),
        ("| Glow | 1.05 | Grathwohl et al. (2019)<!--ref dinh2017--> |", 1),
        (
            "Our flow reached **1.19**<!--fig runs.realnvp.bits_per_dim .2f--> (Dinh et al., 2017).",
            0,
        ),
        ("RealNVP (Dinh et al., 2017) is a flow. It reaches 1.19 bits here.", 0),
    ],
)
def test_the_figure_rule_catches_a_figure_under_the_wrong_name(text, problems):
    assert len(literature_figures_without_entry(text, _entries())) == problems


def test_a_quiz_names_the_work_in_words():
    entries = _entries()
    named = "Burda et al. (2016) report 86.76 nats per image."
    assert literature_figures_without_entry(named, entries, by_name=True) == []
    assert literature_figures_without_entry(named, entries) != []
    wrong = "Dinh et al. (2017) report 86.76 nats per image."
    assert literature_figures_without_entry(wrong, entries, by_name=True) != []
