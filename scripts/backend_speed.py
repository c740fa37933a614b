"""Training speed of every family on Keras's three backends, on this machine, in one run.

    python scripts/backend_speed.py --out bench/backends      # about 10 minutes on 2 cores

Each backend runs in a process of its own (Keras picks its backend once). In it, every
model below trains with its cpu-profile config through the life cycle a lesson uses
(:func:`tutorial_lib.runs.train`, no evaluation) and a callback times its training steps:
the first calls (tracing, compiling, warming caches) are left out, the next ones timed,
then the training stops. Throughput is examples per second; the table gives each
backend's as a ratio to TensorFlow's, measured minutes apart on the same machine (compare
ratios, not absolute figures, across machines). Writes ``backends.json`` and
``backends.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tutorial_lib import families

MODELS = families.ONE_PER_FAMILY
BACKENDS = ("tensorflow", "jax", "torch")
WARMUP_CALLS, TIMED_CALLS = 8, 32


def measure(name: str) -> dict:
    """Examples per second of ``name``'s cpu-profile training on the backend in force."""
    import keras

    from tutorial_lib import runs, training, vae

    class StepTimer(keras.callbacks.Callback):
        """Times the training calls of the last fit it sees, then stops that fit."""

        def __init__(self, calls: int):
            super().__init__()
            self.calls = calls

        def on_train_begin(self, logs=None):
            self.times = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())
            if len(self.times) > self.calls:
                self.model.stop_training = True

    config = runs.config_of(name, "cpu")
    steps = training.steps_per_call(getattr(config, "steps_per_execution", 1))
    # A call may make several steps (steps_per_execution): time as many steps either way.
    warmup, timed_calls = max(2, WARMUP_CALLS // steps), max(4, TIMED_CALLS // steps)
    timer = StepTimer(warmup + timed_calls)
    # A latent model's VAE stage is timed with the VAE; here an untrained one gives codes.
    stages = {}
    if getattr(config, "autoencoder", None) is not None:
        stages["autoencoder"] = vae.build_model(config.autoencoder, seed=0)
    run = runs.train(name, "cpu", callbacks=[timer], evaluate=False, stages=stages)
    per_call = config.batch_size * steps
    timed = timer.times[warmup:]
    seconds = timed[-1] - timed[0]
    return {
        "examples_per_second": per_call * (len(timed) - 1) / seconds,
        "seconds_per_call": seconds / (len(timed) - 1),
        "examples_per_call": per_call,
        "parameters": int(run.model.count_params()),
    }


def run_backend(backend: str, out: Path, models: list[str]) -> dict:
    """Measure ``models`` in a fresh process on ``backend``; its results."""
    path = out / f"{backend}.json"
    env = {**os.environ, "KERAS_BACKEND": backend, "TUTORIAL_PROFILE": "cpu"}
    if backend == "jax":
        env.setdefault("JAX_PLATFORMS", "cpu")
    command = [sys.executable, __file__, "--measure", str(path), *models]
    subprocess.run(command, env=env, check=True)
    return json.loads(path.read_text())


def markdown(results: dict, machine: str) -> str:
    lines = [
        f"Training throughput on {machine} (examples per second, cpu-profile configs; "
        f"about {TIMED_CALLS} training steps timed after {WARMUP_CALLS}), and each "
        "backend's speed as a ratio to TensorFlow's:",
        "",
        "| model | TensorFlow | JAX | PyTorch | JAX / TF | PyTorch / TF |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in results["tensorflow"]:
        speed = {b: results[b][name]["examples_per_second"] for b in BACKENDS}
        lines.append(
            f"| {name} | {speed['tensorflow']:,.0f} | {speed['jax']:,.0f} | "
            f"{speed['torch']:,.0f} | {speed['jax'] / speed['tensorflow']:.2f} | "
            f"{speed['torch'] / speed['tensorflow']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/backends")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one backend's process
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args(argv)
    if args.measure:
        import keras

        results = {name: measure(name) for name in args.models}
        for name, row in results.items():
            print(f"{keras.backend.backend()} {name}: {row['examples_per_second']:,.0f} /s")
        Path(args.measure).write_text(json.dumps(results, indent=1))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {backend: run_backend(backend, out, args.models) for backend in BACKENDS}
    from tutorial_lib import device

    machine = device.machine_description()
    (out / "backends.json").write_text(json.dumps({"machine": machine, **results}, indent=1))
    (out / "backends.md").write_text(markdown(results, machine))
    print(markdown(results, machine))


if __name__ == "__main__":
    main()
