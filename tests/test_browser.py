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


def test_quiz_widget_gives_feedback_in_the_browser(browser, lab):
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
    question = page.locator(".quiz-question").first
    question.wait_for(timeout=180_000)

    question.locator("input[type=radio]").nth(0).check()  # a wrong answer
    question.get_by_role("button", name="Check").click()
    question.get_by_text("Not quite.").wait_for(timeout=30_000)
    question.locator("input[type=radio]").nth(1).check()  # the right one
    question.get_by_role("button", name="Check").click()
    question.get_by_text("Correct!").wait_for(timeout=30_000)
    shot = SHOTS / "lab_quiz_feedback.png"
    question.screenshot(path=str(shot))
    page.close()
    assert _not_blank(shot) > 10


def test_slide_deck_renders_in_chromium(browser, tmp_path):
    lesson = ROOT / "notebooks" / "00_setup.ipynb"
    deck = slides.build_all("fast", tmp_path, [lesson])[0]
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
