"""Instructor slides, built from the very notebooks the learners run.

Every notebook cell carries ``metadata.slideshow.slide_type``: ``slide`` (a new
slide), ``subslide`` (a new slide below the current one), ``fragment`` (appears
on the next key press), ``skip`` (setup code, not shown) or ``notes`` (speaker
notes, shown in reveal.js's speaker view, key ``S``).

Two ways to present:

* **Live** in JupyterLab with RISE (``pip install -e ".[slides]"``, then the
  "Render as slideshow" button, or Alt-R): the code runs as you present.
* **Static** reveal.js decks, executed first so every plot is in them (the
  decks show the cells' outputs: plots, tables, and the key code the lessons
  display with ``display.show_source``)::

      python -m tutorial_lib slides --profile cpu --out slides
      # open slides/01_autoencoder.slides.html

  When ``sphinx-revealjs`` is installed (the ``slides`` extra), its copy of
  reveal.js is placed beside the decks, so they work offline; without it the
  decks load reveal.js from a CDN.
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tutorial_lib.course.notebook_tools import (
    environment_set,
    error_outputs,
    execute,
    lesson_notebooks,
)

ROOT = Path(__file__).resolve().parents[2]
REVEAL_DIR = "reveal.js"
# Loads reveal.js without require.js (which only comes from a CDN): see the file.
SHIM = Path(__file__).with_name("slide_assets") / "require-shim.js"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def slide_type(cell) -> str:
    """A cell's slide type; cells without one continue the current slide ("-")."""
    return cell.metadata.get("slideshow", {}).get("slide_type", "-")


def count_slides(nb) -> int:
    """How many slides a deck of ``nb`` shows: one per ``slide`` and ``subslide`` cell,
    plus a first slide if the notebook does not start with one."""
    shown = [cell for cell in nb.cells if slide_type(cell) not in ("skip", "notes")]
    count = sum(slide_type(cell) in ("slide", "subslide") for cell in shown)
    if shown and slide_type(shown[0]) not in ("slide", "subslide"):
        count += 1
    return count


def deck_slide_count(html: str) -> int:
    """Slides in a built deck: reveal.js nests one ``<section>`` per (sub)slide inside
    one ``<section>`` per horizontal slide; count the inner ones."""
    import re

    depth, count = 0, 0
    for tag in re.findall(r"<section\b|</section>", html):
        if tag == "</section>":
            depth -= 1
        else:
            count += depth == 1
            depth += 1
    return count


@contextlib.contextmanager
def kernel_environment(profile: str):
    """Set what the notebook kernels inherit while they run: the profile, and the
    inline Matplotlib backend, which puts every plot into the cell's output (a
    non-interactive MPLBACKEND such as Agg, which the tests set, would leave the
    deck without its figures)."""
    with environment_set({"TUTORIAL_PROFILE": profile, "MPLBACKEND": INLINE_BACKEND}):
        yield


def local_reveal() -> Path | None:
    """The reveal.js folder shipped by sphinx-revealjs, if that package is installed."""
    try:
        import sphinx_revealjs
    except ImportError:
        return None
    folder = Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"
    return folder if (folder / "dist" / "reveal.js").is_file() else None


def drop_stderr(nb) -> None:
    """Remove stderr streams (library warnings, progress logs): they are not slide content."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")
            ]


def build_deck(nb, name: str, out_dir: Path, *, offline: bool) -> Path:
    """Write ``<name>.slides.html``, a reveal.js deck of an (executed) notebook."""
    from nbconvert import SlidesExporter

    drop_stderr(nb)
    # Slides show what the cells produce (plots, tables, key code shown with
    # display.show_source); the code that produced them stays in the notebook.
    exporter = SlidesExporter(
        reveal_theme="simple",
        reveal_scroll=not offline,  # the scroll helper needs jQuery from a CDN
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    if offline:
        exporter.reveal_url_prefix = REVEAL_DIR
        exporter.require_js_url = f"{REVEAL_DIR}/{SHIM.name}"
    body, _ = exporter.from_notebook_node(nb)
    path = out_dir / f"{name}.slides.html"
    path.write_text(body, encoding="utf-8")
    return path


def prepare_folder(out_dir: Path) -> bool:
    """Make ``out_dir`` and copy reveal.js into it when it is installed; whether the decks
    written there work offline."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reveal = local_reveal()
    if reveal is None:
        return False
    shutil.copytree(reveal, out_dir / REVEAL_DIR, dirs_exist_ok=True)
    shutil.copy(SHIM, out_dir / REVEAL_DIR / SHIM.name)
    return True


def build_all(
    profile: str = "cpu",
    out_dir: str | Path = "slides",
    notebooks: list[Path] | None = None,
    *,
    workers: int = 2,
) -> list[Path]:
    """Execute every lesson under ``profile`` and write one deck each to ``out_dir``.

    ``workers`` notebooks run at once, each in its own kernel: much of a short
    run is kernel start-up and Python, which a second kernel overlaps.
    Raises RuntimeError naming the notebook and the error if a notebook fails.
    """
    out_dir = Path(out_dir)
    offline = prepare_folder(out_dir)
    paths = [Path(path) for path in notebooks or lesson_notebooks()]
    with kernel_environment(profile), ThreadPoolExecutor(max_workers=workers) as pool:
        executed = list(pool.map(lambda path: execute(path, timeout=1800), paths))
    decks = []
    for path, nb in zip(paths, executed, strict=True):
        errors = error_outputs(nb)
        if errors:
            raise RuntimeError(f"{path.name} failed under the {profile} profile: {errors[0]}")
        decks.append(build_deck(nb, path.stem, out_dir, offline=offline))
    return decks
