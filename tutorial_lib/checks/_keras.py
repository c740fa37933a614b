"""Keras pieces shared by the checks of build tasks (a train_step to test)."""

from __future__ import annotations

import keras
import numpy as np


class Recorder(keras.Model):
    """Wraps a network and records, when run eagerly, every batch it is called on."""

    def __init__(self, inner):
        super().__init__(name=f"recorded_{inner.name}")
        self.inner = inner
        self.seen = []

    def call(self, x, training=False):
        import tensorflow as tf

        if tf.executing_eagerly():
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


def expect_fit_trains(model, data, logs: tuple[str, ...], network, **fit_options) -> None:
    """One epoch of ``model.fit`` (train_step compiled into a tf.function) logs ``logs``
    and changes the weights of ``network``."""
    from tutorial_lib.checks import expect

    before = flat(network.get_weights())
    history = model.fit(data, epochs=1, verbose=0, shuffle=False, **fit_options)
    expect(
        set(logs) <= set(history.history),
        f"model.fit should log {', '.join(logs)}, got {sorted(history.history)}.",
    )
    expect(
        not np.allclose(before, flat(network.get_weights())),
        f"in model.fit (a compiled tf.function) the {network.name} did not train: use "
        "keras.ops (or tf) inside train_step, no NumPy.",
    )
