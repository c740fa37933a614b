"""Run profiles: one switch for how big every run is.

``TUTORIAL_PROFILE`` picks one of three profiles:

* ``fast`` -- tests and CI: tiny subsets and a handful of steps, every notebook
  runs in seconds. Results are not meant to look good.
* ``cpu`` -- the default where no GPU is seen: a learner on a 2-core laptop gets
  recognisable results in at most about five minutes of training per notebook.
* ``gpu`` -- the default where a GPU is seen: full data, full-width models.

A profile holds only what every notebook shares: how many test images to
evaluate on, how many samples to score, and the cap on steps per epoch and the
eager steps that keep the ``fast`` profile fast. Every size a model *trains* with (its data
subset, epochs or steps, batch, widths) lives in its family's config table,
``CONFIGS``, keyed by the model name, then the profile's name (for example
``vae.CONFIGS["vae"]["cpu"]``).
"""

from __future__ import annotations

import dataclasses
import os

PROFILE_ENV = "TUTORIAL_PROFILE"


@dataclasses.dataclass(frozen=True)
class Profile:
    """What every notebook of a profile shares.

    Attributes:
        name: ``"fast"``, ``"cpu"`` or ``"gpu"``; the key of every family's ``CONFIGS``.
        test_examples: how many test images to evaluate on (``None``: all 10,000).
        eval_samples: how many samples to generate for quality metrics.
        eval_characters: how many characters a text model writes to time its sampling.
        steps_per_epoch: cap on gradient steps per epoch for every model
            (``None``: no cap). Only the ``fast`` profile caps, so that tests run
            a handful of steps whatever a family's own epochs are.
        run_eagerly: take the training steps one operation at a time instead of
            tracing them into a graph first. Tracing a step costs a second or
            more per model, which pays back over thousands of steps but not over
            the handful of the ``fast`` profile; ``cpu`` and ``gpu`` trace.
    """

    name: str
    test_examples: int | None
    eval_samples: int
    steps_per_epoch: int | None
    run_eagerly: bool = False
    eval_characters: int = 200


PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast", test_examples=256, eval_samples=128, steps_per_epoch=4, run_eagerly=True
    ),
    "cpu": Profile(name="cpu", test_examples=2_000, eval_samples=1_000, steps_per_epoch=None),
    "gpu": Profile(name="gpu", test_examples=None, eval_samples=10_000, steps_per_epoch=None),
}


class UnknownProfileError(ValueError):
    """Raised for a profile name that is not one of :data:`PROFILES`."""


def profile_names() -> list[str]:
    """The valid profile names, in order from smallest to largest."""
    return list(PROFILES)


def sees_a_gpu() -> bool:
    """Whether Keras's backend computes on a CUDA or ROCm GPU or a TPU (the gpu profile's
    hardware); an Apple GPU (MPS) keeps a laptop's cpu profile."""
    from tutorial_lib.backend import accelerator

    try:
        return accelerator() in ("CUDA", "ROCm", "TPU")
    except ImportError:  # TensorFlow, the default backend, is not installed
        return False


def get_profile(name: str | Profile | None = None) -> Profile:
    """Return the profile in force.

    Order of precedence: the ``name`` argument (a name or a profile), then the
    ``TUTORIAL_PROFILE`` environment variable, then ``gpu`` if TensorFlow sees
    a GPU, else ``cpu``.
    """
    if isinstance(name, Profile):
        return name
    source = "argument"
    if name is None:
        name = os.environ.get(PROFILE_ENV) or None
        source = f"environment variable {PROFILE_ENV}"
    if name is None:
        return PROFILES["gpu" if sees_a_gpu() else "cpu"]
    key = name.strip().lower()
    if key not in PROFILES:
        raise UnknownProfileError(
            f"Unknown profile {name!r} (from the {source}). Choose one of: {', '.join(PROFILES)}."
        )
    return PROFILES[key]
