"""Keras pieces the probes of build tasks share: a network that records what it is
called on, weights as one vector, and the references a check sends for the earlier tasks
a build task calls (:mod:`tutorial_lib.grading.probes`)."""

from __future__ import annotations

import keras
import numpy as np

from tutorial_lib.backend import is_symbolic


class Recorder(keras.Model):
    """Wraps a network and records, when run eagerly, every batch it is called on."""

    def __init__(self, inner):
        super().__init__(name=f"recorded_{inner.name}")
        self.inner = inner
        self.seen = []

    def call(self, x, training=False):
        if not is_symbolic(x):
            self.seen.append(np.array(keras.ops.convert_to_numpy(x), dtype=np.float64))
        return self.inner(x, training=training)


def flat(weights) -> np.ndarray:
    """A list of weight arrays as one float64 vector."""
    return np.concatenate([np.ravel(w) for w in weights]).astype(np.float64)


class own_task_only:
    """Within the ``with`` block, the names ``references`` (name -> function) of the
    notebook namespace that ``method`` was defined in are the references: the check of a
    build task then counts only the build task, not a mistake in an earlier task it calls."""

    def __init__(self, method, references: dict):
        self.namespace = getattr(method, "__globals__", {})
        self.references = {k: v for k, v in references.items() if k in self.namespace}

    def __enter__(self):
        self.saved = {name: self.namespace[name] for name in self.references}
        self.namespace.update(self.references)
        return self

    def __exit__(self, *exc):
        self.namespace.update(self.saved)
        return False


def functions_from(sources: dict[str, str]) -> dict:
    """Functions defined by ``sources`` (name -> the source of ``def name(...)``), sent by the
    check: the reference of an earlier task that a build task calls."""
    namespace = {"keras": keras, "ops": keras.ops, "np": np}
    for source in sources.values():
        exec(source, namespace)
    return {name: namespace[name] for name in sources}
