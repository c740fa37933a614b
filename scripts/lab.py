"""Start JupyterLab on the series, on a desktop or on a remote, headless machine.

``make lab`` runs this (after the device report)::

    python scripts/lab.py [--ip IP] [--port PORT] [--browser | --no-browser] [NOTEBOOK]

* **Anyone, root too.** As root (a cloud GPU box, a container) JupyterLab must be
  told so (``--allow-root``); this script does when it runs as root.
* **Localhost only, unless asked.** The server binds to ``127.0.0.1``; pass
  ``--ip 0.0.0.0`` (``make lab LAB_IP=0.0.0.0``) to reach it from other machines.
* **A desktop opens the browser; a headless machine says how to get in.** Once the
  server answers, the script prints the notebook's URL with its token and, when
  there is no display or the session came in over SSH, the SSH tunnel that
  reaches it from your own computer.

It imports nothing of the project (TensorFlow stays out of this process) and
runs JupyterLab as its child: Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

DEFAULT_PORT = 8888
LOCALHOST = "127.0.0.1"
START_TIMEOUT_S = 180


def is_root() -> bool:
    """Whether this process runs as the superuser (always False where there is none)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def over_ssh(environ=os.environ) -> bool:
    """Whether this session came in over SSH (the browser would open on the wrong machine)."""
    return any(environ.get(key) for key in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))


def has_display(environ=os.environ, platform: str = sys.platform) -> bool:
    """Whether a browser opened here would show on a screen in front of the learner."""
    if over_ssh(environ):
        return False
    if platform in ("darwin", "win32", "cygwin"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def is_loopback(ip: str) -> bool:
    """Whether ``ip`` (an address or a host name) is reachable only from this machine."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def free_port(ip: str, first: int = DEFAULT_PORT, tries: int = 50) -> int:
    """The first port from ``first`` on that nothing listens on at ``ip``."""
    host = LOCALHOST if ip in ("", "0.0.0.0", "*") else ip
    for port in range(first, first + tries):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"error: no free port in {first}..{first + tries - 1} on {ip}")


def jupyter_command(
    notebook: str | None, *, ip: str, port: int, browser: bool, root: bool
) -> list[str]:
    """The ``jupyter lab`` command line this script runs."""
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={os.getcwd()}",  # the whole series: notebooks/ and exercises/
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the port printed is the port served
    ]
    if not browser:
        command.append("--no-browser")
    if root:
        command.append("--allow-root")
    if notebook:
        command.append(notebook)
    return command


def lab_url(host: str, port: int, notebook: str | None, token: str) -> str:
    """The address that opens ``notebook`` (or the file browser) with the token."""
    path = "/lab"
    if notebook:
        path += "/tree/" + urllib.parse.quote(notebook.replace(os.sep, "/"))
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{port}{path}?token={token}"


def this_machine(environ=os.environ) -> str:
    """How the learner's own computer names this machine: the address the SSH session
    came in on, or this machine's host name."""
    fields = environ.get("SSH_CONNECTION", "").split()
    return fields[2] if len(fields) == 4 else socket.gethostname()


def how_to_open(
    notebook: str | None, *, ip: str, port: int, token: str, browser: bool, environ=os.environ
) -> str:
    """What the learner reads once JupyterLab answers: where to point the browser."""
    here = lab_url("localhost", port, notebook, token)
    rule = "-" * 78
    if not is_loopback(ip):
        there = lab_url(this_machine(environ), port, notebook, token)
        lines = [
            f"JupyterLab listens on {ip}: every machine that can reach port {port} here can",
            "open it with the token (the token is the password: keep it to yourself).",
            f"  from another computer:  {there}",
            f"  on this machine:        {here}",
        ]
    elif browser:
        lines = [
            "JupyterLab is open in your browser. If no tab came up, open:",
            f"  {here}",
        ]
    else:
        why = "you are logged in over SSH" if over_ssh(environ) else "this machine has no display"
        lines = [
            f"JupyterLab is running, without a browser here: {why}.",
            "From your own computer:",
            "  1. forward the port over SSH, in a terminal on your computer (keep it open):",
            f"       ssh -N -L {port}:localhost:{port} {getpass.getuser()}@{this_machine(environ)}",
            "     (use the address and user you log in here with; if that port is taken on",
            f"     your computer, change the first {port} and the port in the address below)",
            "  2. open in your browser:",
            f"       {here}",
            "On this machine itself, open the address of step 2 directly.",
        ]
    lines.append("Stop JupyterLab with Ctrl-C here (twice, or once and answer y).")
    return "\n".join([rule, *lines, rule])


def wait_until_up(server: subprocess.Popen, ip: str, port: int, token: str) -> bool:
    """Poll the server's status page until it answers; False if the server ended first."""
    host = LOCALHOST if ip in ("", "0.0.0.0", "*") or is_loopback(ip) else ip
    url = lab_url(host, port, None, token).replace("/lab?", "/api/status?")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.25)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", help="notebook to open, relative to this folder")
    parser.add_argument(
        "--ip", default=LOCALHOST, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="first port to try (default: %(default)s)"
    )
    browser = parser.add_mutually_exclusive_group()
    browser.add_argument("--browser", dest="browser", action="store_true", default=None)
    browser.add_argument(
        "--no-browser", dest="browser", action="store_false", help="default: when there's a display"
    )
    args = parser.parse_args(argv)

    open_browser = has_display() if args.browser is None else args.browser
    port = free_port(args.ip, args.port)
    if port != args.port:
        print(f"port {args.port} is taken here: JupyterLab uses {port}")
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    command = jupyter_command(
        args.notebook, ip=args.ip, port=port, browser=open_browser, root=is_root()
    )
    print("starting JupyterLab:", " ".join(command[1:]), flush=True)
    # The token goes through the environment, where other users cannot read it
    # (a command line shows in everyone's `ps`).
    server = subprocess.Popen(command, env={**os.environ, "JUPYTER_TOKEN": token})
    # Ctrl-C reaches JupyterLab directly (same terminal): it asks, then shuts down.
    # This process only waits for it; a termination signal is passed on.
    stopped = []

    def stop(signum, frame):
        stopped.append(signum)
        server.terminate()

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    if wait_until_up(server, args.ip, port, token):
        message = how_to_open(
            args.notebook, ip=args.ip, port=port, token=token, browser=open_browser
        )
        print(message, flush=True)
    elif server.poll() is None:
        print(f"JupyterLab has not answered in {START_TIMEOUT_S} s; its log above says why.")
    code = server.wait()
    if stopped:  # stopped as asked: not a failure
        return 0
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(main())
