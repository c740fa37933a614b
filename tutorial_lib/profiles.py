"""Run profiles: one switch that sets every size a notebook uses.

``TUTORIAL_PROFILE`` picks one of three profiles:

* ``fast`` -- tests and CI: tiny subsets and a handful of steps, every notebook
  runs in seconds. Results are not meant to look good.
* ``cpu`` -- the default where no GPU is seen: a learner on a 2-core laptop gets
  recognisable results in at most about five minutes of training per notebook.
* ``gpu`` -- the default where a GPU is seen: full data, full-width models.

Notebooks take every size (epochs, steps, subset, widths, batch) from the
profile, and nothing else differs between profiles. A model family that needs
sizes of its own (a sequence length, a number of diffusion steps) keeps a small
table keyed by ``profile.name`` in its own module.
"""

from __future__ import annotations

import dataclasses
import os

PROFILE_ENV = "TUTORIAL_PROFILE"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes shared by every notebook.

    Attributes:
        name: ``"fast"``, ``"cpu"`` or ``"gpu"``.
        train_examples: how many training images to use (``None``: all 60,000).
        test_examples: how many test images to evaluate on (``None``: all 10,000).
        epochs: passes over the (sub)set of training data.
        batch_size: examples per gradient step.
        width: multiplier on the number of units/filters of every model
            (1.0 is the full-size model of the lesson).
        steps_per_epoch: cap on gradient steps per epoch (``None``: a full pass).
        eval_samples: how many samples to generate for quality metrics.
    """

    name: str
    train_examples: int | None
    test_examples: int | None
    epochs: int
    batch_size: int
    width: float
    steps_per_epoch: int | None
    eval_samples: int

    def scaled(self, units: int, minimum: int = 4) -> int:
        """Return ``units`` multiplied by :attr:`width`, rounded, at least ``minimum``."""
        return max(minimum, int(round(units * self.width)))


PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast",
        train_examples=512,
        test_examples=256,
        epochs=2,
        batch_size=64,
        width=0.25,
        steps_per_epoch=4,
        eval_samples=128,
    ),
    "cpu": Profile(
        name="cpu",
        train_examples=20_000,
        test_examples=2_000,
        epochs=5,
        batch_size=128,
        width=0.5,
        steps_per_epoch=None,
        eval_samples=1_000,
    ),
    "gpu": Profile(
        name="gpu",
        train_examples=None,
        test_examples=None,
        epochs=30,
        batch_size=256,
        width=1.0,
        steps_per_epoch=None,
        eval_samples=10_000,
    ),
}


class UnknownProfileError(ValueError):
    """Raised for a profile name that is not one of :data:`PROFILES`."""


def profile_names() -> list[str]:
    """The valid profile names, in order from smallest to largest."""
    return list(PROFILES)


def get_profile(name: str | None = None) -> Profile:
    """Return the profile in force.

    Order of precedence: the ``name`` argument, then the ``TUTORIAL_PROFILE``
    environment variable, then ``gpu`` if TensorFlow sees a GPU, else ``cpu``.
    """
    source = "argument"
    if name is None:
        name = os.environ.get(PROFILE_ENV) or None
        source = f"environment variable {PROFILE_ENV}"
    if name is None:
        from tutorial_lib.device import gpu_names

        return PROFILES["gpu" if gpu_names() else "cpu"]
    key = name.strip().lower()
    if key not in PROFILES:
        raise UnknownProfileError(
            f"Unknown profile {name!r} (from the {source}). Choose one of: {', '.join(PROFILES)}."
        )
    return PROFILES[key]
