"""The first commands a learner runs: ``make lab`` and a quiet TensorFlow start-up.

``make lab`` runs ``scripts/lab.py`` (after the device report): these tests run
that script headless, as CI's root user does, and check that JupyterLab answers
on the address it prints and stops when asked. The start-up tests load a stand-in
``tensorflow`` that prints TensorFlow's known start-up notices and a real error,
and check that only the error reaches stderr.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB_SCRIPT = ROOT / "scripts" / "lab.py"


def _lab_module():
    """scripts/lab.py as a module (it imports nothing of the project)."""
    spec = importlib.util.spec_from_file_location("lab_script", LAB_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab = _lab_module()


def _make_lab_dry_run(*variables: str) -> subprocess.CompletedProcess:
    """The commands ``make lab`` would run (``-n``), the install step taken as done; no
    "Entering directory" lines, even when the suite itself runs under make."""
    installed = f"{os.environ.get('VENV', '.venv')}/.installed"
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", installed, "lab", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_make_lab_reports_the_device_then_runs_the_lab_script():
    result = _make_lab_dry_run()
    assert result.returncode == 0, result.stderr
    commands = result.stdout.splitlines()
    assert commands[0].endswith("python -m tutorial_lib info")
    assert commands[1].endswith(
        "python scripts/lab.py --ip 127.0.0.1 --port 8888 notebooks/00_setup.ipynb"
    )
    wider = _make_lab_dry_run("LAB_IP=0.0.0.0")
    assert "--ip 0.0.0.0" in wider.stdout


@pytest.mark.parametrize(
    "environ, platform, display",
    [
        ({}, "linux", False),  # a container, a cloud box
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"DISPLAY": ":0", "SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}, "linux", False),
        ({}, "darwin", True),
        ({"SSH_TTY": "/dev/pts/0"}, "darwin", False),
    ],
)
def test_the_browser_opens_only_where_someone_sits(environ, platform, display):
    assert lab.has_display(environ, platform) is display


def test_root_is_allowed_only_to_root_and_the_port_printed_is_the_port_served():
    as_root = lab.jupyter_command(
        "notebooks/00_setup.ipynb", ip="127.0.0.1", port=8890, browser=False, root=True
    )
    as_user = lab.jupyter_command(None, ip="127.0.0.1", port=8890, browser=True, root=False)
    assert "--allow-root" in as_root and "--allow-root" not in as_user
    assert "--no-browser" in as_root and "--no-browser" not in as_user
    assert "--ServerApp.port_retries=0" in as_root and "--ServerApp.ip=127.0.0.1" in as_root
    assert as_root[-1] == "notebooks/00_setup.ipynb"
    assert not any("token" in part for part in as_root)  # never on the command line: ps shows it


def test_headless_instructions_give_the_tunnel_and_the_url_with_its_token():
    environ = {"SSH_CONNECTION": "198.51.100.4 50000 203.0.113.9 22"}
    text = lab.how_to_open(
        "notebooks/00_setup.ipynb",
        ip="127.0.0.1",
        port=8890,
        token="abc",
        browser=False,
        environ=environ,
    )
    assert "ssh -N -L 8890:localhost:8890" in text and "@203.0.113.9" in text
    assert "http://localhost:8890/lab/tree/notebooks/00_setup.ipynb?token=abc" in text
    assert "logged in over SSH" in text
    everywhere = lab.how_to_open(
        None, ip="0.0.0.0", port=8890, token="abc", browser=False, environ=environ
    )
    assert "http://203.0.113.9:8890/lab?token=abc" in everywhere and "ssh -N" not in everywhere
    desktop = lab.how_to_open(
        None, ip="127.0.0.1", port=8890, token="abc", browser=True, environ={}
    )
    assert "open in your browser" in desktop and "ssh" not in desktop


def test_lab_starts_headless_answers_on_its_url_and_stops(tmp_path):
    """The README's first command as CI runs it: no display, as root (CI's user)."""
    port = lab.free_port("127.0.0.1", 18888)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DISPLAY", "WAYLAND_DISPLAY", "JUPYTER_TOKEN")
    }
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    server = subprocess.Popen(
        [sys.executable, str(LAB_SCRIPT), "--port", str(port), "notebooks/00_setup.ipynb"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    log = []
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            log.append(line)
            found = re.search(r"http://localhost:\d+/lab/tree/\S+\?token=\w+", line)
            url = found.group(0) if found else None
        assert url, "no URL printed:\n" + "".join(log)
        text = "".join(log)
        assert "ssh -N -L" in text  # how to reach it from another computer
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            assert "--allow-root" in text
        assert f"localhost:{port}/lab/tree/notebooks/00_setup.ipynb" in url
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
        status = url.replace("/lab/tree/notebooks/00_setup.ipynb?", "/api/status?")
        with urllib.request.urlopen(status, timeout=10) as answer:
            assert answer.status == 200
    finally:
        server.send_signal(signal.SIGTERM)  # the script passes it on to JupyterLab
        try:
            assert server.wait(timeout=30) == 0  # stopped as asked: no error for make
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    with pytest.raises(OSError):  # nothing answers any more
        urllib.request.urlopen(status, timeout=2)


# --------------------------------------------------------------------------
# TensorFlow's start-up notices are held back; everything else shows
# --------------------------------------------------------------------------

NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1.1 1 port.cc:153] oneDNN custom operations are on. You may see ...",
    "I0000 00:00:1.2 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
]
CUINIT = "E0000 00:00:1.3 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
REAL_ERROR = "E0000 00:00:1.4 1 something.cc:1] a real error a learner must see"


def _fake_tensorflow(folder: Path, *, crash: bool = False) -> Path:
    """A stand-in ``tensorflow`` package whose import writes TensorFlow's start-up
    notices and a real error to file descriptor 2, as the C++ code does."""
    package = folder / "tensorflow"
    (package / "config").mkdir(parents=True)
    lines = "".join(line + "\n" for line in [*NOTICES, REAL_ERROR])
    (package / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import os
            from tensorflow import config
            os.write(2, {lines.encode()!r})
            if {crash}:
                os.abort()  # a crash while loading: what came before must still show
            """
        )
    )
    (package / "config" / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import os
            probed = []

            def list_physical_devices(kind=None):
                if not probed:  # CUDA is probed once, on the first look
                    os.write(2, {(CUINIT + chr(10)).encode()!r})
                    probed.append(True)
                return []
            """
        )
    )
    return folder


def _import_tutorial_lib(fake: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "TUTORIAL_TF_LOGS"}
    environ.update(PYTHONPATH=os.pathsep.join([str(fake), str(ROOT)]), **env)
    code = "import tutorial_lib, tensorflow; tensorflow.config.list_physical_devices(); print('ok')"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )


@pytest.fixture
def no_nvidia():
    """Skip on a machine with an NVIDIA GPU, where CUDA's failure notices do show (as
    tutorial_lib.has_nvidia_device decides, without loading TensorFlow here)."""
    if os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA GPU: CUDA's failure notices show there")


def test_start_up_notices_are_held_back_and_real_errors_show(tmp_path, no_nvidia):
    result = _import_tutorial_lib(_fake_tensorflow(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert result.stderr.splitlines() == [REAL_ERROR]


def test_tutorial_tf_logs_shows_every_line(tmp_path):
    result = _import_tutorial_lib(_fake_tensorflow(tmp_path), TUTORIAL_TF_LOGS="1")
    assert result.stderr.splitlines() == [*NOTICES, REAL_ERROR, CUINIT]


def test_what_tensorflow_prints_before_a_crash_still_shows(tmp_path, no_nvidia):
    result = _import_tutorial_lib(_fake_tensorflow(tmp_path, crash=True))
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == REAL_ERROR


def test_cuda_failures_show_on_a_machine_with_an_nvidia_gpu(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nexit 0\n")
    smi.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    result = _import_tutorial_lib(_fake_tensorflow(tmp_path / "fake"), PATH=path)
    lines = result.stderr.splitlines()
    assert lines[-1] == CUINIT and NOTICES[2] in lines  # CUDA's word, a real error here
    assert NOTICES[0] not in lines and NOTICES[1] not in lines


def _imports(source: str) -> list[str]:
    """The top-level modules a cell's import statements name, in order."""
    found = []
    for line in source.splitlines():
        match = re.match(r"(?:from|import)\s+([\w.]+)", line)
        if match:
            found.append(match.group(1).split(".")[0])
    return found


@pytest.mark.parametrize(
    "path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda path: path.name
)
def test_lessons_load_tutorial_lib_before_tensorflow(path):
    """tutorial_lib holds TensorFlow's start-up notices back only if it loads
    TensorFlow itself: a lesson that imports Keras or TensorFlow first shows them."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    modules = [m for cell in nb.cells if cell.cell_type == "code" for m in _imports(cell.source)]
    first_tensorflow = next(
        (i for i, m in enumerate(modules) if m in ("keras", "tensorflow")), len(modules)
    )
    assert "tutorial_lib" in modules[:first_tensorflow], (
        f"{path.name} imports {modules[first_tensorflow]} before tutorial_lib"
    )
