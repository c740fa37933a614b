"""Keras pieces shared by the checks of build tasks (a train_step to test)."""

from __future__ import annotations

import numpy as np

from tutorial_lib.grading.probe_tools import Recorder, flat, own_task_only  # noqa: E402, F401


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
