"""The series as people see it: JupyterLab and a slide deck in a real, headless Chromium.

Opt-in: these tests run with ``pytest --run-browser`` (``make test`` passes it).
They use Debian's Chromium (installed here with apt-get when missing and
running as root) driven by Playwright, with no browser download. Screenshots
are written to ``test-artifacts/screenshots/`` and checked not to be blank.

One JupyterLab server and one page with the app booted serve the whole module:
each lesson is opened in it as a tab (with no kernel: rendering needs none),
checked, photographed and closed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import nbformat
import numpy as np
import pytest

from tutorial_lib.course import slides

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """Path of the system Chromium, installing Debian's package if it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("Chromium is not installed (Debian/Ubuntu: apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]'")
    executable = _chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SHOTS}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


QUIZ_NOTEBOOK = "quiz_check.ipynb"
QUIZ_LESSON = "01_autoencoder"


def _write_quiz_notebook(path: Path) -> None:
    """A one-cell notebook that shows the knowledge check of ``QUIZ_LESSON``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f'from tutorial_lib.course import quiz\nquiz.load_quiz("{QUIZ_LESSON}").show()'
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


class Lab(NamedTuple):
    """A JupyterLab server started in the background (see ``lab``)."""

    url: str
    token: str
    root: Path
    server: subprocess.Popen
    log: Path

    def wait_until_up(self, seconds: float = 120) -> None:
        """Return once the server answers, or fail the test with the end of its log."""
        deadline = time.time() + seconds
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                if time.time() > deadline or self.server.poll() is not None:
                    pytest.fail(f"JupyterLab did not start; log:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.25)


@pytest.fixture(scope="module", autouse=True)
def lab(tmp_path_factory):
    """JupyterLab on loopback with a token, serving a copy of the lessons.

    A copy, so that nothing the browser does (autosave, trust) touches the
    repository; with its own settings (no news pop-up) and workspaces. The
    server is started as the module starts and not waited for here, so that its
    start overlaps Chromium's and the slide-deck test (``lab_page`` waits).
    """
    root = tmp_path_factory.mktemp("lab_root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    _write_quiz_notebook(root / QUIZ_NOTEBOOK)
    settings = tmp_path_factory.mktemp("lab_settings")
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    port, token = _free_port(), "genai-notebooks-test"
    log = tmp_path_factory.mktemp("lab_log") / "lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, see OPEN_NOTEBOOK
    ]
    env = {
        **os.environ,
        "TUTORIAL_PROFILE": "fast",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path_factory.mktemp("lab_workspaces")),
    }
    with log.open("w") as handle:
        server = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    yield Lab(f"http://127.0.0.1:{port}", token, root, server, log)
    server.terminate()
    server.wait(timeout=30)


# JupyterLab is booted once, in one page, for the whole module; every notebook is then
# opened inside that running app with its ``docmanager:open`` command (what a double
# click in the file browser runs), and its tab closed again before the next one.
# ``shouldStart: false`` opens a lesson without starting a kernel: rendering needs none.
OPEN_NOTEBOOK = """async ([path, startKernel]) => {
  const panel = await window.jupyterapp.commands.execute('docmanager:open', {
    path,
    factory: 'Notebook',
    kernelPreference: startKernel ? {} : {shouldStart: false},
  });
  await panel.context.ready;
  return panel.id;
}"""
CLOSE_NOTEBOOK = """async (id) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.id === id) {
      if (widget.sessionContext.session) {
        await widget.sessionContext.shutdown();
      }
      widget.dispose();  // closes the tab without asking to save
    }
  }
}"""
# The quiz notebook's kernel is started as soon as the app is up, and made to import
# tutorial_lib.course.quiz (which loads TensorFlow, most of the quiz cell's run time) while
# the lessons render. The quiz notebook, opened later, connects to this running
# session of its path (as after a page reload); ``window.quizKernelWarm`` resolves
# once the import is done and this extra connection is let go (left open, it would
# close the quiz widgets' comms: it has no handler for them).
WARM_QUIZ_KERNEL = """(path) => {
  window.quizKernelWarm = (async () => {
    const session = await window.jupyterapp.serviceManager.sessions.startNew({
      path, name: path, type: 'notebook', kernel: {name: 'python3'},
    });
    try {
      const reply = await session.kernel.requestExecute({code: 'import tutorial_lib.course.quiz'}).done;
      return reply.content.status;
    } finally {
      session.dispose();
    }
  })();
}"""


@pytest.fixture(scope="module")
def lab_page(lab, browser):
    """One page with JupyterLab booted and its layout restored (an empty workspace).

    It also starts the quiz notebook's kernel (see ``WARM_QUIZ_KERNEL``).
    """
    lab.wait_until_up()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{lab.url}/lab/workspaces/tests?reset&token={lab.token}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=180_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.evaluate(WARM_QUIZ_KERNEL, QUIZ_NOTEBOOK)
    yield page
    page.close()


@contextlib.contextmanager
def _notebook(page, path: str, start_kernel: bool = False):
    """The panel (a locator) of notebook ``path`` opened in the running JupyterLab.

    Without ``start_kernel`` no kernel is started. The tab is closed (its kernel
    shut down) on the way out, whatever happened inside.
    """
    panel_id = page.evaluate(OPEN_NOTEBOOK, [path, start_kernel])
    panel = page.locator(f'[id="{panel_id}"]')
    try:
        yield panel
    finally:
        page.evaluate(CLOSE_NOTEBOOK, panel_id)
        panel.wait_for(state="detached", timeout=30_000)


def _not_blank(path: Path) -> float:
    """Pixel standard deviation of a screenshot (0 for a blank, single-colour page)."""
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(pixels.std())


def test_slide_deck_renders_in_chromium(browser, tmp_path):
    # First in the module: it needs no JupyterLab and runs while the server starts.
    lesson = ROOT / "notebooks" / "00_setup.ipynb"
    # The deck's machinery, not the lesson's outputs (the lessons' executed decks are
    # checked where nbval runs them): a deck of the notebook as committed.
    offline = slides.prepare_folder(tmp_path)
    deck = slides.build_deck(
        nbformat.read(lesson, as_version=4), lesson.stem, tmp_path, offline=offline
    )
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(deck.as_uri())
    if slides.local_reveal() is not None:  # offline reveal.js: the deck is live
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        total = page.evaluate("Reveal.getTotalSlides()")
        assert total == slides.count_slides(nbformat.read(lesson, as_version=4))
    shot = SHOTS / "deck_00_setup.png"
    page.screenshot(path=str(shot))
    page.close()
    assert _not_blank(shot) > 10, f"{shot} looks blank"


@pytest.mark.parametrize("lesson", slides.lesson_notebooks(), ids=lambda p: p.stem)
def test_lesson_renders_in_jupyterlab(lab_page, lesson):
    title = nbformat.read(lesson, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
    shot = SHOTS / f"lab_{lesson.stem}.png"
    with _notebook(lab_page, f"notebooks/{lesson.name}") as panel:
        heading = panel.locator(".jp-MarkdownCell h1").first
        heading.wait_for(timeout=180_000)
        assert title.split(":")[0] in heading.inner_text()
        lab_page.screenshot(path=str(shot))
    assert _not_blank(shot) > 10, f"{shot} looks blank"


def _pick(question_box, question):
    """Select the marked answer of ``question`` in its widget box (not yet checked)."""
    if question.kind == "choice":
        question_box.locator("input[type=radio]").nth(question.answer).check()
    elif question.kind == "multiple":
        boxes = question_box.locator("input[type=checkbox]")
        for index in range(len(question.options)):
            if index in question.answer:
                boxes.nth(index).check()
            else:
                boxes.nth(index).uncheck()
    else:
        question_box.locator("input[type=text]").fill(f"{question.answer:g}")
        question_box.locator("input[type=text]").press("Tab")


def _words(text: str) -> str:
    return " ".join(text.split())


def test_quiz_widget_gives_feedback_in_the_browser(lab_page):
    """A wrong pick gets its own feedback and a hint (not the answer), the right pick the
    explanation, and once every question is answered the summary line appears."""
    from tutorial_lib.course import quiz

    knowledge_check = quiz.load_quiz(QUIZ_LESSON)
    warmed = lab_page.evaluate("() => window.quizKernelWarm")
    assert warmed == "ok", (
        f"the quiz notebook's kernel could not import tutorial_lib.course.quiz: {warmed}"
    )
    with _notebook(lab_page, QUIZ_NOTEBOOK, start_kernel=True) as panel:
        _check_quiz(lab_page, panel, knowledge_check)
    assert _not_blank(SHOTS / "lab_quiz_feedback.png") > 10


def _check_quiz(page, panel, knowledge_check):
    """Run the quiz cell in ``panel`` and answer every question, the first one wrong."""
    panel.locator(".jp-CodeCell .cm-content").wait_for(timeout=180_000)
    page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=180_000)
    panel.locator(".jp-CodeCell .cm-content").click()
    page.keyboard.press("Shift+Enter")
    boxes = panel.locator(".quiz-question")
    boxes.first.wait_for(timeout=180_000)
    assert boxes.count() == len(knowledge_check.questions)

    first = knowledge_check.questions[0]
    assert first.kind == "choice"
    wrong = next(i for i in range(len(first.options)) if i != first.answer)
    question = boxes.first
    question.locator("input[type=radio]").nth(wrong).check()
    question.get_by_role("button", name="Check").click()
    question.get_by_text("Not quite.").wait_for(timeout=30_000)
    shown = _words(question.locator(".quiz-feedback").inner_text())
    assert _words(first.feedback[wrong]) in shown  # feedback for this very option
    assert _words(first.hint) in shown
    assert _words(first.options[first.answer]) not in shown
    assert _words(first.explanation) not in shown and "Explanation" not in shown
    shot = SHOTS / "lab_quiz_feedback.png"
    question.screenshot(path=str(shot))

    _pick(question, first)
    question.get_by_role("button", name="Check").click()
    question.get_by_text("Correct!").wait_for(timeout=30_000)
    assert _words(first.explanation) in _words(question.locator(".quiz-feedback").inner_text())

    for number, other in enumerate(knowledge_check.questions[1:], start=1):
        box = boxes.nth(number)
        _pick(box, other)
        box.get_by_role("button", name="Check").click()
        box.get_by_text("Correct!").wait_for(timeout=30_000)
    total = len(knowledge_check.questions)
    summary = panel.locator(".quiz-summary")
    summary.get_by_text(f"Summary: {total - 1} of {total} right at the first attempt.").wait_for(
        timeout=30_000
    )
    assert "Worth another look: Q1." in summary.inner_text()
    summary.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "lab_quiz_summary.png"))
