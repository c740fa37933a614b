"""The series as people see it: JupyterLab and a slide deck in a real, headless Chromium.

Opt-in: these tests run with ``pytest --run-browser`` (``make test`` passes it).
They use Debian's Chromium (installed here with apt-get when missing and
running as root) driven by Playwright, with no browser download. Screenshots
are written to ``test-artifacts/screenshots/`` and checked not to be blank.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tutorial_lib import slides

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


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback with a token, serving a copy of the lessons.

    A copy, so that nothing the browser does (autosave, trust) touches the
    repository; with its own settings (no news pop-up) and workspaces.
    """
    root = tmp_path_factory.mktemp("lab_root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
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
    ]
    env = {
        **os.environ,
        "TUTORIAL_PROFILE": "fast",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path_factory.mktemp("lab_workspaces")),
    }
    with log.open("w") as handle:
        server = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.terminate()
                pytest.fail(f"JupyterLab did not start; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield url, token, root
    server.terminate()
    server.wait(timeout=30)


def _open(browser, lab, path: str, workspace: str, height: int = 900):
    """A new page with ``path`` open in a fresh JupyterLab workspace (nothing else open)."""
    url, token, _ = lab
    page = browser.new_page(viewport={"width": 1280, "height": height})
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{path}?reset&token={token}")
    return page


def _not_blank(path: Path) -> float:
    """Pixel standard deviation of a screenshot (0 for a blank, single-colour page)."""
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(pixels.std())


@pytest.mark.parametrize("lesson", slides.lesson_notebooks(), ids=lambda p: p.stem)
def test_lesson_renders_in_jupyterlab(browser, lab, lesson):
    page = _open(browser, lab, f"notebooks/{lesson.name}", workspace=lesson.stem)
    page.wait_for_selector(".jp-NotebookPanel .jp-MarkdownCell h1", timeout=180_000)
    title = nbformat.read(lesson, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
    assert title.split(":")[0] in page.inner_text(".jp-MarkdownCell h1")
    shot = SHOTS / f"lab_{lesson.stem}.png"
    page.screenshot(path=str(shot))
    page.close()
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


def test_quiz_widget_gives_feedback_in_the_browser(browser, lab):
    """A wrong pick gets its own feedback and a hint (not the answer), the right pick the
    explanation, and once every question is answered the summary line appears."""
    from tutorial_lib import quiz

    knowledge_check = quiz.load_quiz("01_autoencoder")
    scratch = lab[2] / "quiz_check.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            'from tutorial_lib import quiz\nquiz.load_quiz("01_autoencoder").show()'
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, scratch)
    page = _open(browser, lab, "quiz_check.ipynb", workspace="quiz", height=1000)
    page.wait_for_selector(".jp-CodeCell .cm-content", timeout=180_000)
    page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=180_000)
    page.click(".jp-CodeCell .cm-content")
    page.keyboard.press("Shift+Enter")
    boxes = page.locator(".quiz-question")
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
    summary = page.locator(".quiz-summary")
    summary.get_by_text(f"Summary: {total - 1} of {total} right at the first attempt.").wait_for(
        timeout=30_000
    )
    assert "Worth another look: Q1." in summary.inner_text()
    summary.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "lab_quiz_summary.png"))
    page.close()
    assert _not_blank(shot) > 10


def test_slide_deck_renders_in_chromium(browser, tmp_path):
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
