"""The device layer: what hardware is there, and how to use it well.

Keras runs on one of three backends, TensorFlow (the default), JAX or PyTorch
(``KERAS_BACKEND``); each sees the machine's accelerator its own way, and
:func:`accelerator` names the one in use: CUDA (an NVIDIA GPU), MPS (an Apple-silicon
GPU, through PyTorch) or the CPU.

One call at the top of every notebook, :func:`setup`, does three things:

1. **GPU memory growth** (TensorFlow), so several notebooks can share one GPU instead
   of the first one grabbing all its memory.
2. **Mixed precision** where the GPU gains from it: ``mixed_bfloat16`` on GPUs
   of compute capability 8.0+ (Ampere, Hopper), ``mixed_float16`` on 7.x
   (Volta, Turing: tensor cores, but no bfloat16). Layers compute in 16 bits
   and keep float32 weights; models keep their outputs and losses in float32.
   On a CPU everything stays float32.
3. **A distribution strategy**: on TensorFlow, ``tf.distribute.MirroredStrategy`` over
   all visible GPUs when there are two or more (each GPU takes a slice of every
   batch; gradients are summed across them), the default strategy otherwise; on JAX,
   Keras's own ``keras.distribution.DataParallel`` over all its devices (of every
   process: more than one host trains as one); one device on PyTorch. Build and
   compile models inside ``with strategy.scope():``.

:func:`report` returns what is in force; :func:`print_report` prints it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import sys

import keras

from tutorial_lib.backend import (
    BACKEND_NAMES,
    accelerator,
    backend,
    backend_version,
    gpu_names,
    import_tensorflow,
    jax_gpus,
)
from tutorial_lib.profiles import PROFILE_ENV, Profile, get_profile


def gpu_details() -> list[dict]:
    """Model name, compute capability and total memory (GiB, if known) per GPU."""
    name = backend()
    if name == "torch":
        import torch

        return [
            {
                "device": f"cuda:{i}",
                "name": torch.cuda.get_device_name(i),
                "compute_capability": tuple(torch.cuda.get_device_capability(i)),
                "memory_gib": _total_memory_gib(i),
            }
            for i in range(torch.cuda.device_count())
        ]
    if name == "jax":
        return [
            {
                "device": str(d),
                "name": getattr(d, "device_kind", "unknown GPU"),
                "compute_capability": _capability(getattr(d, "compute_capability", None)),
                "memory_gib": _total_memory_gib(i),
            }
            for i, d in enumerate(jax_gpus())
        ]
    tf = import_tensorflow()
    details = []
    for index, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        info = tf.config.experimental.get_device_details(gpu)
        details.append(
            {
                "device": gpu.name,
                "name": info.get("device_name", "unknown GPU"),
                "compute_capability": info.get("compute_capability"),
                "memory_gib": _total_memory_gib(index),
            }
        )
    return details


def _capability(text) -> tuple[int, int] | None:
    """``"8.6"`` -> ``(8, 6)``; None when unknown."""
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def _total_memory_gib(index: int) -> float | None:
    """Total memory of GPU ``index`` from nvidia-smi, or None if not available."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                f"--id={index}",
                "--query-gpu=memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return round(float(out.strip().splitlines()[0]) / 1024, 1)
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def enable_memory_growth() -> None:
    """Let TensorFlow take GPU memory as it needs it rather than all at once.

    Must run before any GPU is used; later calls are harmless no-ops. (JAX and PyTorch
    take GPU memory as they need it already, with JAX's ``XLA_PYTHON_CLIENT_PREALLOCATE``
    set to false before it loads, as :mod:`tutorial_lib` does.)
    """
    if backend() != "tensorflow":
        return
    tf = import_tensorflow()
    for gpu in tf.config.list_physical_devices("GPU"):
        # A RuntimeError means the GPU is already initialised: its setting is fixed.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)


def best_precision_policy() -> str:
    """The Keras dtype policy that suits the visible hardware.

    ``mixed_bfloat16`` if every GPU has compute capability >= 8.0,
    ``mixed_float16`` if every GPU has >= 7.0, else ``float32`` (CPUs and older
    GPUs gain nothing from 16-bit compute).
    """
    gpus = gpu_details() if gpu_names() else []
    if not gpus:
        return "float32"
    capabilities = [g["compute_capability"] or (0, 0) for g in gpus]
    if all(tuple(c) >= (8, 0) for c in capabilities):
        return "mixed_bfloat16"
    if all(tuple(c) >= (7, 0) for c in capabilities):
        return "mixed_float16"
    return "float32"


def set_precision(policy: str) -> str:
    """Set Keras's global dtype policy (``float32``, ``mixed_float16``, ``mixed_bfloat16``).

    Models built afterwards compute in the policy's compute dtype; every model
    in this package still returns float32 outputs and float32 losses.
    """
    valid = ("float32", "mixed_float16", "mixed_bfloat16")
    if policy not in valid:
        raise ValueError(f"Unknown precision policy {policy!r}; choose one of {valid}.")
    keras.mixed_precision.set_global_policy(policy)
    return policy


class KerasDistribution:
    """The strategy on JAX and PyTorch: ``scope()`` puts Keras's own distribution (JAX:
    ``keras.distribution.DataParallel`` over every device of every process) in force, or
    nothing with one device. Each replica's loss needs no division: the step computes on
    the whole batch, sharded across the devices."""

    num_replicas_in_sync = 1

    def __init__(self, distribution=None):
        self.distribution = distribution

    def scope(self):
        return contextlib.nullcontext() if self.distribution is None else self.distribution.scope()

    @property
    def devices(self) -> int:
        """How many devices a batch is sharded across."""
        if self.distribution is None:
            return 1
        return int(self.distribution.device_mesh.devices.size)


def get_strategy(devices: list[str] | None = None):
    """Return the strategy to build and train models under.

    On TensorFlow, with ``devices`` given (for example two logical CPUs in a test), a
    MirroredStrategy over exactly those; otherwise a MirroredStrategy over all GPUs when
    there are two or more, else the default (single-device) strategy. On JAX, a
    :class:`KerasDistribution` with data parallelism over every device of every process
    when there are two or more; on PyTorch, one device.
    """
    if backend() == "jax":
        import jax

        if devices is None and jax.device_count() < 2:
            return KerasDistribution()
        from keras import distribution

        listed = distribution.list_devices() if devices is None else devices
        # Across processes each one feeds fit its own part of every batch
        # (tutorial_lib.hosts.shard_batches, in training.fit_for_profile): Keras must not
        # split the batches again (and would refuse any pipeline but tf.data).
        return KerasDistribution(
            distribution.DataParallel(devices=listed, auto_shard_dataset=False)
        )
    if backend() != "tensorflow":
        return KerasDistribution()
    tf = import_tensorflow()
    if devices is not None:
        return tf.distribute.MirroredStrategy(devices)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) >= 2:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()


@dataclasses.dataclass
class DeviceSetup:
    """What :func:`setup` put in force."""

    profile: Profile
    precision: str
    strategy: object
    gpus: list[str]

    @property
    def replicas(self) -> int:
        """How many devices each batch is split across."""
        return getattr(self.strategy, "devices", None) or getattr(
            self.strategy, "num_replicas_in_sync", 1
        )


def replicas_in_sync() -> int:
    """How many replicas the strategy in force splits each batch across (1 outside one).

    Inside a ``train_step`` each replica's loss is divided by this: the replicas'
    gradients are summed, so the division makes them an average. (On JAX and PyTorch,
    1: a step sees the whole batch.)
    """
    if backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def setup(profile: str | Profile | None = None, precision: str | None = None) -> DeviceSetup:
    """One call at the top of every notebook: profile, GPU memory, precision, strategy.

    Args:
        profile: a profile name or object; by default from ``TUTORIAL_PROFILE``
            or the hardware (see :func:`tutorial_lib.profiles.get_profile`).
        precision: force a dtype policy; by default :func:`best_precision_policy`.
    """
    enable_memory_growth()
    if not isinstance(profile, Profile):
        profile = get_profile(profile)
    gpus = gpu_names()
    if profile.name == "gpu" and not gpus:
        import warnings

        warnings.warn(
            f"The 'gpu' profile is in force but Keras's backend ({backend()}) sees no GPU: "
            "training will be very slow on the CPU. Set TUTORIAL_PROFILE=cpu, or check the "
            "GPU driver and that the backend's GPU build is installed (TensorFlow: "
            "pip install 'tensorflow[and-cuda]' on Linux; JAX: pip install 'jax[cuda12]').",
            stacklevel=2,
        )
    set_precision(precision or best_precision_policy())
    return DeviceSetup(
        profile=profile,
        precision=keras.mixed_precision.global_policy().name,
        strategy=get_strategy(),
        gpus=gpus,
    )


def report() -> dict:
    """Versions, devices, profile, precision and XLA status, as a dict."""
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "keras": keras.__version__,
        "backend": f"{backend()} {backend_version()}",
        "accelerator": accelerator(),
    }
    if backend() == "tensorflow":
        info.update(_tensorflow_report())
    else:
        info["devices"] = _backend_devices()
        info["gpus"] = gpu_details()
        info["strategy"] = type(get_strategy()).__name__
    try:
        info["profile"] = get_profile().name
        info["profile_source"] = (
            f"{PROFILE_ENV}={os.environ[PROFILE_ENV]}"
            if os.environ.get(PROFILE_ENV)
            else "default for this hardware"
        )
    except ValueError as error:
        info["profile"] = f"invalid: {error}"
    info["precision_policy"] = keras.mixed_precision.global_policy().name
    info["recommended_precision"] = best_precision_policy()
    info["data_dir"] = os.environ.get("TUTORIAL_DATA_DIR") or "Keras cache (downloads when missing)"
    return info


def _tensorflow_report() -> dict:
    """TensorFlow's version, devices, XLA status and strategy."""
    try:
        tf = import_tensorflow()
    except ImportError:
        return {"tensorflow": "not installed", "gpus": []}
    info = {
        "tensorflow": tf.__version__,
        "built_with_cuda": tf.test.is_built_with_cuda(),
        "devices": [d.name for d in tf.config.list_physical_devices()],
        "gpus": gpu_details(),
    }
    if tf.config.optimizer.get_jit():
        info["xla_jit"] = "on everywhere (tf.config.optimizer.set_jit)"
    elif info["gpus"]:
        info["xla_jit"] = "on for Keras train steps (jit_compile='auto' with a GPU)"
    else:
        info["xla_jit"] = "off: CPU only (Keras's jit_compile='auto' uses XLA when a GPU is seen)"
    info["strategy"] = type(get_strategy()).__name__
    return info


def _backend_devices() -> list[str]:
    """The devices JAX or PyTorch computes on."""
    if backend() == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    return gpu_names() or ["cpu"]


def no_gpu_explanation() -> list[str]:
    """What it means that the backend sees no GPU here, in plain words (a few short lines)."""
    from tutorial_lib import LOGS_ENV, has_nvidia_device

    library = BACKEND_NAMES[backend()]
    if accelerator() == "MPS":
        return [
            f"none from NVIDIA: {library} trains on this Mac's own GPU (MPS).",
            "The cpu profile's sizes suit it; every notebook runs.",
        ]
    if has_nvidia_device():
        fix = {
            "tensorflow": "TensorFlow's GPU build (pip install 'tensorflow[and-cuda]')",
            "jax": "JAX's GPU build (pip install 'jax[cuda12]')",
            "torch": "PyTorch's CUDA build (pip install torch)",
        }[backend()]
        return [
            f"none usable: this machine has an NVIDIA GPU, but {library} cannot use it,",
            "so training would run on the CPU. Check the driver with `nvidia-smi` and install",
            f"{fix}; {library}'s own",
            f"error is printed above ({LOGS_ENV}=1 shows all of its logs).",
        ]
    return [
        f"none found: no NVIDIA GPU on this machine, so {library} trains on the CPU.",
        "Nothing is wrong: every notebook runs, and the cpu profile (the default",
        "without a GPU) keeps each lesson's training to a few minutes.",
    ]


def format_report(info: dict | None = None) -> str:
    """The report as aligned ``key: value`` lines, one GPU per line."""
    info = report() if info is None else info
    lines = []
    for key, value in info.items():
        if key == "gpus":
            if not value:
                first, *more = no_gpu_explanation()
                lines.append(f"{'gpus':<22} {first}")
                lines.extend(f"{'':<22} {line}" for line in more)
            for gpu in value:
                memory = f", {gpu['memory_gib']} GiB" if gpu["memory_gib"] else ""
                capability = gpu["compute_capability"]
                cc = f", compute capability {capability[0]}.{capability[1]}" if capability else ""
                lines.append(f"{'gpu':<22} {gpu['device']}: {gpu['name']}{cc}{memory}")
        elif isinstance(value, list):
            lines.append(f"{key:<22} {', '.join(map(str, value))}")
        else:
            lines.append(f"{key:<22} {value}")
    return "\n".join(lines)


def machine_description() -> str:
    """CPU model, core count and GPUs, in one line (records say where a figure was measured)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpus = gpu_names()
    return f"{cpu}, {os.cpu_count()} cores" + (f", GPUs: {', '.join(gpus)}" if gpus else ", no GPU")


def print_report() -> None:
    """Print :func:`format_report`."""
    print(format_report())


def check_environment() -> list[dict]:
    """Checks for the setup notebook, each a dict: ``check``, ``ok``, ``detail``, ``fix``.

    ``fix`` says, in plain words, what to do when ``ok`` is False. No GPU is not
    a failure: the cpu profile is made for that case.
    """
    import importlib.util

    rows = []

    def add(check: str, ok: bool, detail: str, fix: str) -> None:
        rows.append({"check": check, "ok": ok, "detail": detail, "fix": "" if ok else fix})

    add(
        "Python 3.11 or newer",
        sys.version_info >= (3, 11),
        sys.version.split()[0],
        "Install Python 3.11+ (python.org or conda), then run `make lab` again.",
    )
    add(
        "Keras 3",
        keras.__version__.startswith("3."),
        keras.__version__,
        "Run `pip install -e .` in the project folder to get Keras 3.",
    )
    try:
        tf_version = import_tensorflow().__version__
        major, minor = (int(part) for part in tf_version.split(".")[:2])
        add(
            "TensorFlow 2.16 or newer",
            (major, minor) >= (2, 16),
            tf_version,
            "Run `pip install -e .` in the project folder (TensorFlow 2.16+ pairs with Keras 3).",
        )
    except ImportError:
        add(
            "TensorFlow 2.16 or newer",
            False,
            "not installed",
            "Run `pip install -e .` in the project folder.",
        )
    add(
        "Keras backend is TensorFlow",
        keras.backend.backend() == "tensorflow",
        keras.backend.backend(),
        "Unset KERAS_BACKEND (or set it to tensorflow) and restart the kernel.",
    )
    add(
        "ipywidgets (for the knowledge checks)",
        importlib.util.find_spec("ipywidgets") is not None,
        "installed" if importlib.util.find_spec("ipywidgets") else "missing",
        "Run `pip install ipywidgets` and reload the page.",
    )
    gpus = gpu_names()
    add(
        "GPU",
        True,
        ", ".join(gpus) if gpus else " ".join(no_gpu_explanation()),
        "",
    )
    return rows


def format_checks(rows: list[dict]) -> str:
    """One line per check: ``[ok]`` or ``[!!]``, the check, its detail, and the fix if needed."""
    lines = []
    for row in rows:
        mark = "[ok]" if row["ok"] else "[!!]"
        line = f"{mark} {row['check']}: {row['detail']}"
        if row["fix"]:
            line += f"\n     -> {row['fix']}"
        lines.append(line)
    return "\n".join(lines)
