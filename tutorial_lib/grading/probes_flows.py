"""Probes of exercise 06 (flows): a learner's width coupling run with a stand-in s_and_t
network, and a learner's invertible 1x1 convolution layer built, assigned a kernel, run
forward and inverse, differentiated, compiled and put in a flow sequence, where they live.
Each returns what happened as arrays (and an error's type and message where the check
judges a failure); the check holds the references and decides.
"""

from __future__ import annotations

import numpy as np


def stand_in_s_and_t(kept) -> tuple[np.ndarray, np.ndarray]:
    """A fixed stand-in for the coupling's network: s and t shaped like ``kept``, each
    number depending on several numbers of the kept half (so a half in the wrong order,
    or the wrong half, gives other values)."""
    kept = np.asarray(kept, np.float64)
    flat = kept.reshape(len(kept), -1)
    mixed = 1.3 * flat + 0.4 * np.cumsum(flat, axis=1) / np.sqrt(flat.shape[1])
    s = 0.6 * np.tanh(mixed - 0.2)
    t = 0.5 * flat**2 - 0.3 * np.roll(flat, 1, axis=1) + 0.1
    return s.reshape(kept.shape), t.reshape(kept.shape)


class RecordingST:
    """The stand-in network, recording the arrays it is called on."""

    def __init__(self):
        self.seen = []

    def __call__(self, kept):
        if hasattr(kept, "numpy"):
            kept = kept.numpy()
        self.seen.append(np.asarray(kept, np.float64))
        return stand_in_s_and_t(kept)


def width_coupling(coupling, images, parity, inverse=False) -> dict:
    """``coupling(images, s_and_t, parity, inverse=inverse)`` with the recording stand-in:
    {"result": what it returned, "seen": every array s_and_t got}."""
    network = RecordingST()
    result = coupling(np.array(images, np.float32), network, int(parity), inverse=bool(inverse))
    return {"result": result, "seen": network.seen}


def _error(error: BaseException) -> dict:
    return {"type": type(error).__name__, "message": str(error)}


def _built(layer_class, shape):
    """A new layer, called once on zeros of ``shape`` (batch 1): (layer, what it returned)."""
    import tensorflow as tf

    layer = layer_class()
    return layer, layer(tf.zeros((1, *[int(d) for d in shape[1:]])))


def _assigned(layer_class, matrix, shape):
    layer, first = _built(layer_class, shape)
    kernel = getattr(layer, "kernel", None)
    if kernel is not None:
        kernel.assign(np.asarray(matrix, np.float32))
    return layer, first, kernel is not None


def conv_fresh(layer_class, shape) -> dict:
    """A new layer: {"first": its output on zeros, "has_kernel", "kernel" (its initial
    value), "kernel_shape", "trainable" (the kernel is one of its trainable weights)}."""
    layer, first = _built(layer_class, shape)
    kernel = getattr(layer, "kernel", None)
    report = {"first": first, "has_kernel": kernel is not None}
    if kernel is not None:
        report.update(
            kernel=np.asarray(kernel),
            kernel_shape=[int(d) for d in kernel.shape],
            trainable=any(v is kernel for v in layer.trainable_weights),
        )
    return report


def conv_run(layer_class, matrix, shape, inputs=None, back_of=None, catch=False) -> dict:
    """A layer with ``matrix`` as its kernel: {"first", "has_kernel", "result" (call on
    ``inputs``), "back" (inverse of ``back_of``, or of the result's y when ``back_of`` is
    None)}; with ``catch``, a failure is reported as {"error": ...} instead of raised."""
    import tensorflow as tf

    try:
        layer, first, has_kernel = _assigned(layer_class, matrix, shape)
        report = {"first": first, "has_kernel": has_kernel}
        if not has_kernel:
            return report
        if inputs is not None:
            report["result"] = layer(tf.constant(np.asarray(inputs, np.float32)))
        if back_of is not None or (catch and inputs is not None):
            source = back_of if back_of is not None else np.asarray(report["result"][0])
            report["back"] = layer.inverse(tf.constant(np.asarray(source, np.float32)))
        return report
    except Exception as error:
        if not catch:
            raise
        return {"error": _error(error)}


def conv_jacobian(layer_class, matrix, shape, point) -> dict:
    """{"first", "has_kernel", "result": call on ``point``, "jacobian": dy/dx by
    automatic differentiation (None when y does not depend on x for TensorFlow)}."""
    import tensorflow as tf

    layer, first, has_kernel = _assigned(layer_class, matrix, shape)
    report = {"first": first, "has_kernel": has_kernel}
    if not has_kernel:
        return report
    point = tf.constant(np.asarray(point, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(point)
        result = layer(point)
    jacobian = tape.jacobian(result[0], point)
    report.update(result=result, jacobian=None if jacobian is None else np.asarray(jacobian))
    return report


def conv_compiled(layer_class, matrix, shape, inputs) -> dict:
    """The gradient of the summed log_det w.r.t. the kernel inside a ``tf.function``:
    {"first", "has_kernel", "grad" (None when there is none)} or {"error": ...}."""
    import tensorflow as tf

    layer, first, has_kernel = _assigned(layer_class, matrix, shape)
    report = {"first": first, "has_kernel": has_kernel}
    if not has_kernel:
        return report
    kernel = layer.kernel

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            _, log_det = layer(x)
            total = tf.reduce_sum(log_det)
        return tape.gradient(total, kernel)

    try:
        grad = gradient(tf.constant(np.asarray(inputs, np.float32)))
    except Exception as error:  # NumPy on a symbolic tensor raises (any type)
        return {**report, "error": _error(error)}
    report["grad"] = None if grad is None else np.asarray(grad)
    return report


def conv_in_a_sequence(layer_class, inputs) -> dict:
    """The layer after a coupling in ``flows.FlowSequence``: {"result": forward,
    "back": inverse of its y}."""
    import tensorflow as tf

    from tutorial_lib import flows

    flow = flows.FlowSequence([flows.AffineCoupling("channel", 0, hidden=4), layer_class()])
    result = flow(tf.constant(np.asarray(inputs, np.float32)))
    report = {"result": result}
    if isinstance(result, tuple | list) and len(result) == 2:
        report["back"] = flow.inverse(tf.constant(np.asarray(result[0], np.float32)))
    return report


PROBES = {
    "width_coupling": width_coupling,
    "conv_fresh": conv_fresh,
    "conv_run": conv_run,
    "conv_jacobian": conv_jacobian,
    "conv_compiled": conv_compiled,
    "conv_in_a_sequence": conv_in_a_sequence,
}
