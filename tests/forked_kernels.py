"""Notebook kernels for the tests, forked from one process that has already imported
TensorFlow, Keras and the package, instead of each importing them again (about six
seconds of CPU per lesson).

Two commands:

* ``serve SOCKET``: the template. Imports the heavy modules, then listens on a Unix
  socket; for each request it forks a child that becomes an ordinary IPython kernel
  (the environment, working directory and standard streams of the request, a session
  of its own, Python's default signal handlers).
* ``launch SOCKET -f CONNECTION_FILE``: the kernel command nbval starts (through
  jupyter_client). It asks the template for a kernel and stands in for it: signals it
  receives go to the kernel, it exits when the kernel exits, and the kernel exits when
  it dies (even by SIGKILL). Where the template is missing, or was started with other
  import-time settings (the backend, TensorFlow's or Matplotlib's variables), it
  becomes an ordinary ``ipykernel`` instead.

Every cell still runs in a kernel of its own per notebook; only the imports are shared.
"""

import contextlib
import json
import os
import signal
import socket
import sys
import time

# Variables read while the heavy modules load: a request whose values differ gets an
# ordinary kernel, so that what a lesson sees never depends on the template.
IMPORT_TIME_PREFIXES = ("KERAS_", "TF_", "CUDA_", "XLA_", "MPL", "OMP_", "TUTORIAL_TF_LOGS")
PRELOAD = (
    "tutorial_lib",  # first: it loads TensorFlow with its start-up notices held back
    "numpy",
    "scipy.stats",
    "sklearn",
    "matplotlib",
    "keras",
    "ipykernel.kernelapp",
    "tutorial_lib.autoencoder",
    "tutorial_lib.checkpoints",
    "tutorial_lib.compare",
    "tutorial_lib.data",
    "tutorial_lib.device",
    "tutorial_lib.diffusion",
    "tutorial_lib.display",
    "tutorial_lib.flow_matching",
    "tutorial_lib.flows",
    "tutorial_lib.gan",
    "tutorial_lib.metrics",
    "tutorial_lib.pixelcnn",
    "tutorial_lib.course.quiz",
    "tutorial_lib.training",
    "tutorial_lib.transformer",
    "tutorial_lib.vae",
)
WAIT_FOR_TEMPLATE_S = 180


def import_time_settings(environ) -> dict:
    return {k: v for k, v in environ.items() if k.startswith(IMPORT_TIME_PREFIXES)}


def _ordinary_kernel(argv: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])


# --- the template ------------------------------------------------------------------


def serve(path: str) -> None:
    import importlib

    here = os.path.dirname(os.path.abspath(__file__))
    base_path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    for name in PRELOAD:
        importlib.import_module(name)
    settings = import_time_settings(os.environ)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(8)
    os.replace(path + ".tmp", path)  # launchers wait for the path: it appears when ready
    while True:
        conn, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(message)
        if import_time_settings(request["env"]) != settings or len(fds) != 3:
            conn.sendall(b"ordinary")
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        if os.fork() == 0:
            listener.close()
            _become_kernel(conn, fds, request, base_path)  # never returns
        for fd in fds:
            os.close(fd)
        conn.close()


def _become_kernel(conn, fds, request, base_path) -> None:
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[:] = base_path
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        conn.sendall(str(os.getpid()).encode())
        _exit_with_the_launcher(conn)
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=request["argv"])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0
    finally:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream: nothing left to say
                stream.flush()
        os._exit(code)


def _exit_with_the_launcher(conn) -> None:
    """A thread that ends this kernel (and what it started) when its launcher is gone."""
    import threading

    def watch():
        try:
            while conn.recv(64):
                pass
        except OSError:
            pass
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


# --- the launcher ------------------------------------------------------------------


def launch(path: str, argv: list[str]) -> None:
    deadline = time.monotonic() + WAIT_FOR_TEMPLATE_S
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            _ordinary_kernel(argv)
        time.sleep(0.05)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:  # the template is gone
        _ordinary_kernel(argv)
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    answer = conn.recv(64)
    if not answer.isdigit():
        conn.close()
        _ordinary_kernel(argv)
    pid = int(answer)

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    try:
        kernel = os.pidfd_open(pid)
    except ProcessLookupError:  # it has already exited
        sys.exit(0)
    import select

    while True:
        try:
            if select.select([kernel], [], [])[0]:
                break
        except InterruptedError:
            continue
    sys.exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif sys.argv[1] == "launch":
        launch(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(f"usage: {sys.argv[0]} serve SOCKET | launch SOCKET -f CONNECTION_FILE")
