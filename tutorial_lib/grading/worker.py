"""The process that runs a learner's code while it is graded (``python -m
tutorial_lib.grading.worker``), started by :class:`tutorial_lib.grading.remote.Worker` in
the sandbox.

It executes the cells it is sent (the exercise's setup cell and the learner's answer cells)
and then answers requests: call a function of the learner's on these arrays, run a probe of
:mod:`tutorial_lib.grading.probes` on a learner's class. Every reply is plain data
(:mod:`tutorial_lib.grading.wire`); the grader compares it with its own references, so
nothing that the learner's code does in this process (patching modules, classes, builtins)
can change a verdict.

With ``--hide-checks`` the package's checks are replaced by inert stand-ins before any of
the learner's code runs: a check called here does nothing, and their private helpers (the
references) cannot be imported. Learner output goes to stderr; the protocol has its own
copies of stdin and stdout.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types

from tutorial_lib.grading import wire


class _InertChecks(types.ModuleType):
    """``tutorial_lib.checks`` while grading: checks that do nothing, no private helpers."""

    def __getattr__(self, name):
        if name.startswith("check_") or name in ("hint", "assert_passed"):
            return _inert
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.__name__}.{name} is not available while your notebook is graded"
        )


def _inert(*args, **kwargs):
    return None


class _InertFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves :class:`_InertChecks` for ``tutorial_lib.checks`` and its submodules."""

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if parts[:2] == ["tutorial_lib", "checks"] and len(parts) <= 3:  # the check modules
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _InertChecks(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def hide_checks() -> None:
    for name in [n for n in sys.modules if n.startswith("tutorial_lib.checks")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _InertFinder())


def plain(value):
    """A learner's result as plain data: tensors become NumPy arrays."""
    import numpy as np

    if value is None or isinstance(value, (bool, int, float, str, np.ndarray, np.number)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    try:
        import keras

        return np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:
        raise wire.WireError(f"returned a {type(value).__name__}, not numbers or arrays") from None


def build(value):
    """Arguments from the grader: arrays stay arrays, specs become tensors or stand-ins."""
    if isinstance(value, list):
        return [build(v) for v in value]
    if isinstance(value, dict) and "__spec__" in value:
        from tutorial_lib.grading import probes

        fields = {k: build(v) for k, v in value.items() if k != "__spec__"}
        return probes.SPECS[value["__spec__"]](**fields)
    if isinstance(value, dict):
        return {k: build(v) for k, v in value.items()}
    return value


def _describe(error: BaseException) -> dict:
    try:
        message = str(error)
    except Exception:
        message = "(an error whose message cannot be shown)"
    return {"error": {"type": type(error).__name__, "message": message[:1000]}}


def _defined(namespace: dict, name: str):
    if name not in namespace:
        raise NameError(f"{name} is not defined: its cell raised an error or never defines it")
    return namespace[name]


def handle(request: dict, namespace: dict):
    op = request["op"]
    if op == "exec":
        exec(compile(request["source"], request.get("label", "<cell>"), "exec"), namespace)
        return {"ok": True}
    if op == "call":
        function = _defined(namespace, request["target"])
        args, kwargs = build(request["args"]), build(request.get("kwargs", {}))
        if request.get("graph"):
            from tutorial_lib.backend import as_in_a_training_step

            return {"value": plain(as_in_a_training_step(function)(*args, **kwargs))}
        return {"value": plain(function(*args, **kwargs))}
    if op == "probe":
        from tutorial_lib.grading import probes

        target = _defined(namespace, request["target"])
        return {"value": plain(probes.PROBES[request["probe"]](target, **build(request["params"])))}
    raise ValueError(f"unknown request {op!r}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # the learner's prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    if "--hide-checks" in argv:
        hide_checks()
    namespace = {"__name__": "__main__", "display": _inert}
    while True:
        request = wire.read(requests)
        if request is None:
            return 0
        try:
            frame = wire.dumps(handle(request, namespace))
        except BaseException as error:  # noqa: BLE001 - whatever the learner's code raises
            frame = wire.dumps(_describe(error))
        replies.write(frame)
        replies.flush()


if __name__ == "__main__":
    sys.exit(main())
