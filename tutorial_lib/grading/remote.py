"""The grader's side of a learner's process: :class:`Worker` starts
:mod:`tutorial_lib.grading.worker` (in the sandbox), sends it the learner's cells, and
:class:`Remote` stands for one of the learner's functions or classes there.

A check called with a :class:`Remote` instead of the function itself sends the inputs of
its cases and receives plain data back (:mod:`~tutorial_lib.grading.wire`); everything it
compares runs in the grader's process. :func:`run_probe` is how a check exercises a class
(a ``train_step``): the probe of :mod:`~tutorial_lib.grading.probes` runs where the class
lives (in the learner's process when it is a :class:`Remote`, in the notebook otherwise) and
returns arrays.
"""

from __future__ import annotations

import builtins
import functools
import select
import sys
import tempfile
import time
from pathlib import Path

from tutorial_lib.grading import sandbox, wire

STARTUP_S = 120  # the worker's start (Python, TensorFlow) before it reads its first request


class LearnerError(Exception):
    """The learner's code raised (in its own process): ``learner_type`` is the type's name."""

    def __init__(self, learner_type: str, message: str):
        super().__init__(message)
        self.learner_type = learner_type


_BUILTIN_ERRORS = {
    name: getattr(builtins, name)
    for name in ("ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError")
}


@functools.cache
def _typed(name: str) -> type:
    """A :class:`LearnerError` that is also the builtin exception ``name`` when there is one:
    a check's ``except ValueError`` catches the learner's ValueError from its process."""
    if name not in _BUILTIN_ERRORS:
        return LearnerError
    return type(name, (LearnerError, _BUILTIN_ERRORS[name]), {})


class LearnerTimeout(LearnerError):
    def __init__(self, seconds: float):
        super().__init__(
            "TimeoutError",
            f"no answer within {seconds:.0f} s (a loop that never ends?); it was stopped",
        )


class GradingError(RuntimeError):
    """The grader's side failed (the sandbox, the install): no submission is to blame, and
    the submission is left ungraded (nbgrader reports it) rather than given zeros."""

    aborts_grading = True


class LearnerCrashed(LearnerError):
    def __init__(self, detail: str):
        super().__init__(
            "ProcessEnded",
            f"the process running your code ended ({detail}): out of memory, or os._exit?",
        )


class Worker:
    """One learner's code in its own (sandboxed) process.

    ``cells`` (label, source) are executed in order when the process starts, and again
    whenever it has to be restarted (after a call that never returned, or a crash); a cell
    that never ends is skipped from then on. ``errors`` holds what each failing cell raised.
    """

    def __init__(
        self,
        cells: list[tuple[str, str]],
        limits: sandbox.Limits,
        *,
        sandboxed: bool = True,
        hide_checks: bool = True,
        hidden: list[Path] = (),
    ):
        self.cells, self.limits = list(cells), limits
        self.sandboxed, self.hide_checks, self.hidden = sandboxed, hide_checks, list(hidden)
        self.process = None
        self.errors: dict[str, str] = {}
        self.skipped: set[str] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="grading-worker-")

    # -- the process -------------------------------------------------------------
    def _start(self) -> None:
        workdir = Path(self._tmp.name) / "submission"
        workdir.mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "tutorial_lib.grading.worker"]
        if self.hide_checks:
            argv.append("--hide-checks")
        log = self._log()
        self.process = sandbox.launch(
            argv,
            workdir,
            self.limits,
            sandboxed=self.sandboxed,
            hidden=self.hidden,
            hide_checks=self.hide_checks,
            stdin=sandbox.subprocess.PIPE,
            stdout=sandbox.subprocess.PIPE,
            stderr=log,
            bufsize=0,
        )
        log.close()
        self._first = True
        for index, (label, source) in enumerate(self.cells):
            if label in self.skipped:
                continue
            try:
                reply = self._send({"op": "exec", "source": source, "label": label})
            except LearnerCrashed as crash:
                if index == 0:  # the exercise's own setup cell: the grader's side failed
                    raise GradingError(
                        "the learner's process did not start (it ended before the exercise's "
                        f"setup cell ran); its last words: {self.last_words()}"
                    ) from crash
                raise
            except LearnerTimeout:
                self.skipped.add(label)
                self.errors[label] = "TimeoutError: the cell never ended"
                self.close()
                return self._start()
            if "error" in reply:
                self.errors[label] = f"{reply['error']['type']}: {reply['error']['message']}"

    def _log(self):
        """The process's stderr (the learner's prints too), kept for :meth:`last_words`."""
        return open(Path(self._tmp.name) / "stderr.txt", "ab")  # noqa: SIM115

    def last_words(self, lines: int = 5) -> str:
        path = Path(self._tmp.name) / "stderr.txt"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:]) or "(nothing)"

    def close(self) -> None:
        if self.process is not None:
            sandbox.stop(self.process)
            self.process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        self._tmp.cleanup()
        return False

    def _send(self, message: dict) -> dict:
        process = self.process
        try:
            wire.write(process.stdin, message)
        except BrokenPipeError:  # it had already ended: a crash, whatever it was asked
            code = process.poll()
            self.close()
            raise LearnerCrashed(f"exit code {code}; it had stopped") from None
        seconds = self.limits.cell_s + (STARTUP_S if self._first else 0)  # (TF's import)
        self._first = False
        deadline = time.monotonic() + seconds
        ready, _, _ = select.select([process.stdout], [], [], seconds)
        if not ready:
            self.close()
            raise LearnerTimeout(self.limits.cell_s)
        try:
            reply = wire.read(_Deadline(process.stdout, deadline))
        except wire.WireError as error:
            self.close()
            raise LearnerError("ValueError", f"its answer could not be read: {error}") from None
        except TimeoutError:
            self.close()
            raise LearnerTimeout(self.limits.cell_s) from None
        if reply is None:
            code = process.poll()
            self.close()
            raise LearnerCrashed(f"exit code {code}")
        return reply

    def request(self, message: dict):
        """Send one request; the learner's value, or :class:`LearnerError`."""
        if self.process is None:
            self._start()
        reply = self._send(message)
        if "error" in reply:
            error = reply["error"]
            if error["type"] == "NotImplementedError":
                raise NotImplementedError(error["message"])
            raise _typed(error["type"])(error["type"], error["message"])
        return reply

    def __getitem__(self, name: str) -> Remote:
        return Remote(self, name)


class _Deadline:
    """A pipe read that gives up at ``deadline`` (a reply that never completes)."""

    def __init__(self, stream, deadline: float):
        self.stream, self.deadline = stream, deadline

    def read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            wait = self.deadline - time.monotonic()
            if wait <= 0 or not select.select([self.stream], [], [], wait)[0]:
                raise TimeoutError
            chunk = self.stream.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def _encode(value):
    """A check's argument for the wire: tensors and stand-ins become specs."""
    spec = getattr(value, "grading_spec", None)
    if callable(spec):
        return {"__spec__": type(value).__name__, **spec()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    from tutorial_lib.backend import is_tensor, numpy_of

    if is_tensor(value):
        return {"__spec__": "tensor", "value": numpy_of(value)}
    return value


class Remote:
    """A learner's function (or class) in a :class:`Worker`, called with plain data."""

    def __init__(self, worker: Worker, name: str):
        self.worker, self.__name__ = worker, name

    def __call__(self, *args, **kwargs):
        request = {"op": "call", "target": self.__name__, "args": _encode(list(args))}
        request["kwargs"] = {k: _encode(v) for k, v in kwargs.items()}
        return self.worker.request(request)["value"]

    def in_graph(self, *args):
        """Call it as a compiled ``train_step`` does
        (:func:`tutorial_lib.backend.as_in_a_training_step`)."""
        reply = self.worker.request(
            {"op": "call", "target": self.__name__, "args": _encode(list(args)), "graph": True}
        )
        return reply["value"]

    def __repr__(self) -> str:
        return f"<{self.__name__} in the learner's process>"


def run_probe(target, probe: str, **params):
    """Run ``probes.PROBES[probe](target, **params)`` where ``target`` lives: in the learner's
    process for a :class:`Remote`, here otherwise. Returns plain data."""
    from tutorial_lib.grading import probes

    if isinstance(target, Remote):
        reply = target.worker.request(
            {"op": "probe", "probe": probe, "target": target.__name__, "params": params}
        )
        return reply["value"]
    return probes.PROBES[probe](target, **params)


def in_graph(function, *args):
    """``function(*args)`` as a compiled training step calls it (a ``tf.function``,
    ``jax.jit``: :func:`tutorial_lib.backend.as_in_a_training_step`), wherever ``function``
    lives."""
    if isinstance(function, Remote):
        return function.in_graph(*args)
    from tutorial_lib.backend import as_in_a_training_step

    return as_in_a_training_step(function)(*args)
