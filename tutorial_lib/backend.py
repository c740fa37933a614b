"""Which of Keras's backends is in use, and what it computes on.

Keras 3 runs on TensorFlow (the default), JAX or PyTorch, chosen with ``KERAS_BACKEND``
before Keras is first imported. Each library finds the machine's accelerator its own
way; :func:`accelerator` asks the one in use and names it: ``"CUDA"`` (an NVIDIA GPU),
``"MPS"`` (an Apple-silicon GPU, through PyTorch), ``"ROCm"``, ``"TPU"`` or ``"CPU"``.
"""

from __future__ import annotations

import keras
import numpy as np

BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def import_tensorflow():
    """Import TensorFlow on first use (JAX and PyTorch run without it)."""
    import tensorflow as tf

    return tf


def backend() -> str:
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def backend_version() -> str:
    """The version of the backend's library."""
    import importlib

    return importlib.import_module(backend()).__version__


def jax_gpus() -> list:
    """The GPUs among JAX's devices."""
    import jax

    return [d for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")]


def accelerator() -> str:
    """What the backend computes on: ``"CUDA"``, ``"MPS"``, ``"ROCm"``, ``"TPU"`` or ``"CPU"``."""
    name = backend()
    if name == "torch":
        import torch

        if torch.cuda.is_available():
            return "CUDA"
        mps = getattr(torch.backends, "mps", None)
        return "MPS" if mps is not None and mps.is_available() else "CPU"
    if name == "jax":
        import jax

        platform_name = jax.devices()[0].platform.lower()
        return {"gpu": "CUDA", "cuda": "CUDA", "rocm": "ROCm", "tpu": "TPU"}.get(
            platform_name, "MPS" if platform_name == "metal" else "CPU"
        )
    return "CUDA" if gpu_names() else "CPU"


def gpu_names() -> list[str]:
    """Names of the GPUs the backend can see (empty on a CPU-only machine)."""
    name = backend()
    if name == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if name == "jax":
        return [str(d) for d in jax_gpus()]
    try:
        tf = import_tensorflow()
    except ImportError:
        return []
    return [gpu.name for gpu in tf.config.list_physical_devices("GPU")]


def is_tensor(value) -> bool:
    """Whether ``value`` is a tensor or a variable of a backend (TensorFlow, JAX, PyTorch)
    or of Keras."""
    return type(value).__module__.startswith(("tensorflow", "keras", "jax", "torch"))


def numpy_of(value):
    """A tensor or variable of any backend (a PyTorch tensor that tracks gradients
    included) as a NumPy array; anything else as it is."""
    return keras.ops.convert_to_numpy(value) if is_tensor(value) else value


def float32_tensor(values):
    """``values`` (an array, a list, a tensor of any backend) as a float32 tensor of the
    backend in use: what a training step hands a learner's function."""
    return keras.ops.convert_to_tensor(np.asarray(numpy_of(values), np.float32))


def to_numpy(x):
    """A tensor of any backend (or a structure of them) as NumPy arrays: what a plot or a
    printout needs. (``np.asarray`` cannot read a PyTorch tensor that tracks gradients, nor
    one on a GPU; Keras's converter can.)"""
    return keras.ops.convert_to_numpy(x)


def compiled(fn, layer):
    """``fn``, a function of ``layer``'s weights, compiled once with XLA on JAX
    (``jax.jit``); ``fn`` itself on the other backends.

    JAX runs an uncompiled model one small operation at a time, each with its own cost;
    sampling calls a model hundreds of times (a PixelCNN once per pixel, a GPT once per
    token), so on JAX it compiles. XLA compiles pure functions only, and a Keras layer's
    weights are state: the compiled function takes their current values as arguments,
    and the layer reads them through a ``keras.StatelessScope``. After more training the
    next call sees the new weights, without compiling again (a new input shape compiles
    once more).

    ``fn`` must only read the weights (inference: no seed generator, no batch statistics
    updated), and take arrays as positional arguments.
    """
    if backend() != "jax":
        return fn
    import jax

    variables = list(layer.variables)

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return fn(*args)

    jitted = jax.jit(pure)

    def call(*args):
        return jitted([v.value for v in variables], *args)

    return call


def as_in_a_training_step(function):
    """``function`` called the way a compiled training step calls it: inside a
    ``tf.function`` on TensorFlow, under ``jax.jit`` on JAX, as it is on PyTorch (whose
    steps run eagerly).

    Its arguments are then symbolic tensors with no values yet (TensorFlow's graph
    tensors, JAX's tracers): NumPy on them, ``.numpy()`` or ``float(...)`` fail here as
    they would in ``model.fit``. A check calls a learner's function this way to say so
    before ``fit`` does, less clearly.
    """
    name = backend()
    if name == "tensorflow":
        return import_tensorflow().function(function)
    if name == "jax":
        import jax

        return jax.jit(function)
    return function


def is_symbolic(x) -> bool:
    """Whether ``x`` is a tensor being traced into a compiled function (it holds no values
    yet): a ``tf.function``'s graph tensor or a ``jax.jit`` tracer."""
    name = backend()
    if name == "tensorflow":
        return not import_tensorflow().executing_eagerly()
    if name == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    return False
