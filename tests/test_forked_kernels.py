"""The lessons' kernels under test (tests/forked_kernels.py): each is a process of its own
with the environment and folder it was asked for, it dies with its launcher, and a
request with other import-time settings gets an ordinary kernel."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "forked_kernels.py"


@pytest.fixture(scope="module")
def template():
    """The template of this run (conftest.py starts one), or one of this test's own."""
    if os.environ.get("TUTORIAL_KERNEL_TEMPLATE"):
        yield os.environ["TUTORIAL_KERNEL_TEMPLATE"]
        return
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "template")
        server = subprocess.Popen([sys.executable, str(SCRIPT), "serve", path])
        try:
            yield path
        finally:
            server.kill()
            server.wait()


def _kernel(template, tmp_path, **env):
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ForkedOnly(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            argv = [sys.executable, str(SCRIPT), "launch", template, "-f", "{connection_file}"]
            return KernelSpec(argv=argv, display_name="forked", language="python")

    manager = KernelManager(kernel_name="forked", kernel_spec_manager=ForkedOnly())
    manager.start_kernel(cwd=str(tmp_path), env={**os.environ, **env})
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    return manager, client


def _printed(client, expression: str) -> str:
    lines = []

    def hook(message):
        if message["msg_type"] == "stream":
            lines.append(message["content"]["text"])

    client.execute_interactive(f"print(repr({expression}))", timeout=60, output_hook=hook)
    return "".join(lines).strip()


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_a_forked_kernel_has_its_own_process_folder_and_environment(template, tmp_path):
    manager, client = _kernel(template, tmp_path, LESSON_MARK="forty-two")
    try:
        pid = int(_printed(client, "__import__('os').getpid()"))
        assert pid not in (os.getpid(), manager.provisioner.pid), "a process of its own"
        assert _printed(client, "__import__('os').getcwd()") == repr(str(tmp_path))
        assert _printed(client, "__import__('os').environ['LESSON_MARK']") == "'forty-two'"
        assert _printed(client, "'tensorflow' in __import__('sys').modules") == "True"
        assert _printed(client, "'keras' in globals()") == "False", "imported, not given"
        os.kill(manager.provisioner.pid, signal.SIGKILL)  # the launcher, killed
        assert _gone(pid), "a kernel whose launcher is gone ends"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_other_import_time_settings_get_an_ordinary_kernel(template, tmp_path):
    manager, client = _kernel(template, tmp_path, TF_NUM_INTEROP_THREADS="3")
    try:
        pid = int(_printed(client, "__import__('os').getpid()"))
        assert pid == manager.provisioner.pid, "the launcher became the kernel"
        assert _printed(client, "'tensorflow' in __import__('sys').modules") == "False"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
