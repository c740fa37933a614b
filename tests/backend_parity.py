"""Train, save, load, sample and evaluate models on the backend in ``KERAS_BACKEND``.

Run by ``tests/test_backends.py`` in a process of its own (Keras picks its backend once,
when it is first imported)::

    KERAS_BACKEND=jax python tests/backend_parity.py OUT.json NAME [NAME ...]

Each model trains in the fast profile (with fewer steps and samples) through the life cycle a learner's lesson uses
(:func:`tutorial_lib.runs.train`: train, evaluate, save the run folder), is loaded back
from its folder and draws samples. ``OUT.json`` gets, per model, its record's figures and
what the loaded model drew; and what the process saw: the backend and the accelerator
that ``python -m tutorial_lib info`` names.

TensorFlow is made unimportable first, as on a machine that has only JAX or PyTorch (a
GPU machine, a Mac): nothing here may need it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# For runs of a handful of steps: XLA compiles quickly rather than well (a third less time
# for JAX, which compiles every step and every new shape it meets).
QUICK_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

# The fast configs for one epoch, smaller still where a model's depth is what costs: JAX
# compiles every new function and shape it meets, so the fewer layers, the sooner.
SMALLER = {
    "realnvp": {"levels": 1, "epochs": 1},
    "transformer": {"layers": 1, "steps": 4},  # one epoch of 4 steps
}


def numbers(record: dict) -> dict:
    """The record's scalar figures."""
    return {
        key: value
        for key, value in record.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def main(out: str, names: list[str]) -> None:
    from tutorial_lib import device, runs
    from tutorial_lib.profiles import PROFILES

    # The fast profile's sizes with fewer steps and fewer things to score: every code path
    # of training, evaluation and sampling runs, in seconds.
    profile = dataclasses.replace(
        PROFILES["fast"], steps_per_epoch=1, test_examples=32, eval_samples=16, eval_characters=20
    )

    results = {"backend": device.backend(), "report": device.format_report(), "models": {}}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            start = time.perf_counter()
            options = SMALLER.get(name, {"epochs": 1})
            trained = runs.train(name, profile, out_dir=Path(folder) / name, **options)
            loaded = runs.load(Path(folder) / name)
            entry = {
                "record": numbers(trained.record),
                "losses": {k: v[-1] for k, v in trained.history.items() if v},
                "seconds": round(time.perf_counter() - start, 1),
            }
            if loaded.family.samples == "images":
                images = np.asarray(loaded.sample(4, seed=1))
                entry["sample_shape"] = list(images.shape)
                entry["sample_range"] = [float(images.min()), float(images.max())]
            elif loaded.family.samples == "text":
                entry["sample_text"] = loaded.sample(40, seed=1)
            entry["finite"] = all(
                math.isfinite(v) for v in [*entry["record"].values(), *entry["losses"].values()]
            )
            results["models"][name] = entry
            print(f"{results['backend']} {name}: {entry['seconds']} s", flush=True)
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.modules["tensorflow"] = None  # `import tensorflow` fails from here on
    main(sys.argv[1], sys.argv[2:])
