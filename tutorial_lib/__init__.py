"""tutorial_lib: the companion package of the genai-notebooks series.

The notebooks explain; this package does the work. One module per concern:

* :mod:`tutorial_lib.profiles` -- the ``TUTORIAL_PROFILE`` switch (fast, cpu, gpu)
* :mod:`tutorial_lib.backend` -- which Keras backend runs, on what (CUDA, MPS, CPU)
* :mod:`tutorial_lib.device` -- GPUs, mixed precision, distribution strategy, report
* :mod:`tutorial_lib.gradients` -- a training step's gradient on every backend
* :mod:`tutorial_lib.data` -- MNIST, Fashion-MNIST, Tiny Shakespeare, batches for training
* :mod:`tutorial_lib.captions` -- an English caption for every MNIST digit
* :mod:`tutorial_lib.bpe` -- byte-pair encoding, the tokenizer chat models use
* :mod:`tutorial_lib.text_to_image` -- a text encoder and cross-attention to its tokens
* :mod:`tutorial_lib.training` -- seeding, resumable fit, sample-grid callback, run folders
* :mod:`tutorial_lib.plotting` -- image grids, reconstructions, loss curves, latent scatter
* :mod:`tutorial_lib.cli` -- ``python -m tutorial_lib info|download|train|sample``

and one module per model family (:mod:`tutorial_lib.autoencoder`, ...).

On the TensorFlow backend (the default), importing the package loads TensorFlow
quietly (see :func:`load_tensorflow_quietly`): TensorFlow's C++ start-up notices are
held back, everything else it prints still shows. ``TUTORIAL_TF_LOGS=1`` shows all of
TensorFlow's logs again. With ``KERAS_BACKEND=jax`` or ``torch`` TensorFlow is not loaded.
"""

import contextlib
import os
import shutil
import subprocess
import sys

__version__ = "0.1.0"

LOGS_ENV = "TUTORIAL_TF_LOGS"

# What TensorFlow prints while it loads and first looks for devices, and that asks
# nothing of a learner. absl writes these lines before its logging is set up, so
# no log level (TF_CPP_MIN_LOG_LEVEL=3 included) can hold them back: they are
# filtered out of the process's stderr instead, line by line.
STARTUP_NOTICES = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",  # the second line of the one above
    "Unable to register cuDNN factory",  # GPU builds register their plugins twice
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
)
# TensorFlow's word that CUDA is not there: the expected news on a machine without
# an NVIDIA GPU (the device report says it in plain words), but a real error on one
# with a GPU, so these show there.
NO_CUDA_NOTICES = (
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
)

# The filter runs in a process of its own, so that what TensorFlow prints just
# before a crash still reaches the terminal.
_FILTER = """
import sys
hidden = sys.argv[1:]
for line in sys.stdin.buffer:
    if not any(notice in line.decode("utf-8", "replace") for notice in hidden):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def has_nvidia_device() -> bool:
    """Whether this machine shows signs of an NVIDIA GPU (its driver's device or tool)."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def show_tensorflow_logs() -> bool:
    """Whether ``TUTORIAL_TF_LOGS`` asks for all of TensorFlow's logs (set, and not 0)."""
    return os.environ.get(LOGS_ENV, "").strip() not in ("", "0")


def hidden_notices() -> tuple[str, ...]:
    """The start-up lines held back on this machine (none with ``TUTORIAL_TF_LOGS`` set)."""
    if show_tensorflow_logs():
        return ()
    return STARTUP_NOTICES + (() if has_nvidia_device() else NO_CUDA_NOTICES)


def load_tensorflow_quietly() -> None:
    """Import TensorFlow and let it look for devices, with its start-up notices held back.

    While TensorFlow loads, the process's stderr (file descriptor 2, where its C++
    code writes) runs through a filter that drops the lines of
    :func:`hidden_notices` and passes every other line on unchanged. Does nothing
    if TensorFlow is already loaded (its notices are out) or not installed.
    """
    import importlib.util

    hidden = hidden_notices()
    if not hidden or "tensorflow" in sys.modules or not sys.executable:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return  # Keras runs on JAX or PyTorch: TensorFlow is not needed, and not loaded
    if importlib.util.find_spec("tensorflow") is None:
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep quiet
        return
    try:
        filter_process = subprocess.Popen(
            [sys.executable, "-S", "-c", _FILTER, *hidden], stdin=subprocess.PIPE, stdout=saved
        )
    except OSError:
        os.close(saved)
        return
    _flush_stderr()
    os.dup2(filter_process.stdin.fileno(), 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA is probed (and reports) on the first look
    except ImportError:
        pass  # the backend may be another; modules that need TensorFlow say so themselves
    finally:
        _flush_stderr()
        os.dup2(saved, 2)
        os.close(saved)
        filter_process.stdin.close()
        filter_process.wait()


def _flush_stderr() -> None:
    with contextlib.suppress(AttributeError, OSError, ValueError):  # no, or a closed, stderr
        sys.stderr.flush()


if not show_tensorflow_logs():
    # Keep TensorFlow's C++ info and warning lines out of notebooks and logs; errors
    # still show. Set before TensorFlow loads.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
load_tensorflow_quietly()
