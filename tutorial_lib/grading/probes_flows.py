"""Probes of exercise 06 (flows): a learner's width coupling run with a stand-in s_and_t
network, and a learner's invertible 1x1 convolution layer built, assigned a kernel, run
forward and inverse, differentiated, compiled and put in a flow sequence, where they live.
Each returns what happened as arrays (and an error's type and message where the check
judges a failure); the check holds the references and decides.
"""

from __future__ import annotations

import numpy as np

from tutorial_lib.backend import float32_tensor, numpy_of


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
        kept = numpy_of(kept)
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
    layer = layer_class()
    return layer, layer(float32_tensor(np.zeros((1, *[int(d) for d in shape[1:]]))))


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
            kernel=np.asarray(numpy_of(kernel)),
            kernel_shape=[int(d) for d in kernel.shape],
            trainable=any(v is kernel for v in layer.trainable_weights),
        )
    return report


def conv_run(layer_class, matrix, shape, inputs=None, back_of=None, catch=False) -> dict:
    """A layer with ``matrix`` as its kernel: {"first", "has_kernel", "result" (call on
    ``inputs``), "back" (inverse of ``back_of``, or of the result's y when ``back_of`` is
    None)}; with ``catch``, a failure is reported as {"error": ...} instead of raised."""
    try:
        layer, first, has_kernel = _assigned(layer_class, matrix, shape)
        report = {"first": first, "has_kernel": has_kernel}
        if not has_kernel:
            return report
        if inputs is not None:
            report["result"] = layer(float32_tensor(inputs))
        if back_of is not None or (catch and inputs is not None):
            source = back_of if back_of is not None else report["result"][0]
            report["back"] = layer.inverse(float32_tensor(source))
        return report
    except Exception as error:
        if not catch:
            raise
        return {"error": _error(error)}


def conv_jacobian(layer_class, matrix, shape, point) -> dict:
    """{"first", "has_kernel", "result": call on ``point``, "jacobian": dy/dx by
    automatic differentiation on the backend in use (None when y does not depend on x for
    it)}."""
    from tutorial_lib.gradients import jacobian

    layer, first, has_kernel = _assigned(layer_class, matrix, shape)
    report = {"first": first, "has_kernel": has_kernel}
    if not has_kernel:
        return report
    point = np.asarray(point, np.float32)
    report["result"] = layer(float32_tensor(point))
    try:
        matrix = jacobian(lambda x: layer(x)[0], point)
    except Exception:  # y computed outside the backend (NumPy): no path back to x
        matrix = None
    # PyTorch gives zeros for an output that does not depend on the input.
    report["jacobian"] = None if matrix is None or not np.any(matrix) else matrix
    return report


def conv_compiled(layer_class, matrix, shape, inputs) -> dict:
    """The gradient of the summed log_det w.r.t. the kernel inside a compiled training
    step (a ``tf.function``, ``jax.jit``; PyTorch's steps run eagerly): {"first",
    "has_kernel", "grad" (None when log_det does not depend on the kernel)} or
    {"error": ...}."""
    from keras import ops

    from tutorial_lib.backend import as_in_a_training_step, backend
    from tutorial_lib.gradients import value_and_gradients

    layer, first, has_kernel = _assigned(layer_class, matrix, shape)
    report = {"first": first, "has_kernel": has_kernel}
    if not has_kernel:
        return report
    kernel = layer.kernel

    def total_log_det(x):
        _, log_det = layer(x)
        return ops.sum(log_det), None

    def gradient(x):
        _, (grad,) = value_and_gradients(lambda: total_log_det(x), [kernel])
        return grad

    x = float32_tensor(inputs)
    try:
        if backend() == "torch":  # eager: a log_det outside the graph tracks no gradient
            total, _ = total_log_det(x)
            if not getattr(total, "requires_grad", False):
                return {**report, "grad": None}
        grad = as_in_a_training_step(gradient)(x)
    except Exception as error:  # NumPy on a symbolic tensor raises (any type)
        return {**report, "error": _error(error)}
    grad = None if grad is None else np.asarray(numpy_of(grad))
    # TensorFlow and JAX give zeros for a kernel the log_det does not depend on.
    report["grad"] = None if grad is None or not np.any(grad) else grad
    return report


def conv_in_a_sequence(layer_class, inputs) -> dict:
    """The layer after a coupling in ``flows.FlowSequence``: {"result": forward,
    "back": inverse of its y}."""
    from tutorial_lib import flows

    flow = flows.FlowSequence([flows.AffineCoupling("channel", 0, hidden=4), layer_class()])
    result = flow(float32_tensor(inputs))
    report = {"result": result}
    if isinstance(result, tuple | list) and len(result) == 2:
        report["back"] = flow.inverse(float32_tensor(result[0]))
    return report


PROBES = {
    "width_coupling": width_coupling,
    "conv_fresh": conv_fresh,
    "conv_run": conv_run,
    "conv_jacobian": conv_jacobian,
    "conv_compiled": conv_compiled,
    "conv_in_a_sequence": conv_in_a_sequence,
}
