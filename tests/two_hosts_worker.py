"""One process of a small data-parallel VAE run on JAX, for tests/test_two_hosts.py.

The test starts this script twice on 127.0.0.1 (``--num-processes 2``, process ids 0 and
1, one CPU device each) and once alone (``--num-processes 1``, one device). Every process
trains the same VAE from the same seed on the same global batches, with the gpu
profile's traced training steps at test sizes, then writes into ``--out``:

* ``weights_<process id>.npz`` and ``initial_<process id>.npz``: the model's weights at
  the end and at the start of the training, in order;
* ``result_<process id>.json``: its place among the processes, how its weights are laid
  out over the devices, and its per-epoch losses.

By hand (two terminals, KERAS_BACKEND=jax JAX_PLATFORMS=cpu in both)::

    python tests/two_hosts_worker.py --out /tmp/two --coordinator 127.0.0.1:4455 \\
        --num-processes 2 --process-id 0      # and --process-id 1 in the other
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

import keras
import numpy as np

STARTED = time.perf_counter()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--coordinator", help="host:port of process 0 (several processes)")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3, help="gradient steps per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    return parser.parse_args(argv)


class StartingWeights(keras.callbacks.Callback):
    """Keeps the weights the training starts from."""

    weights: list = []

    def on_train_begin(self, logs=None):
        self.weights = self.model.get_weights()


def main(argv=None) -> int:
    args = parse_args(argv)
    from tutorial_lib import hosts

    # First, before JAX computes anything: join the other processes.
    if args.num_processes > 1:
        place = hosts.join(args.coordinator, args.num_processes, args.process_id)
    else:
        place = hosts.current()
    joined = time.perf_counter()

    from tutorial_lib import device, training, vae
    from tutorial_lib.profiles import PROFILES

    # The gpu profile's way of training (traced steps), at test sizes: 2 epochs of 3
    # steps, global batches of 32 images (16 per process when there are two). The dense
    # VAE: the conv one spends twice as long compiling, for nothing more to check here.
    profile = dataclasses.replace(PROFILES["gpu"], test_examples=64, steps_per_epoch=args.steps)
    config = dataclasses.replace(
        vae.CONFIGS["vae"]["fast"],
        kind="dense",
        epochs=args.epochs,
        train_examples=256,
        batch_size=32,
    )
    device.set_precision("float32")
    training.set_seed(0)
    strategy = device.get_strategy()
    start = StartingWeights()
    with strategy.scope():
        trained = vae.train_model(config, profile=profile, seed=0, callbacks=[start])
    model = trained.model

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / f"weights_{place.process_id}.npz", *model.get_weights())
    np.savez(args.out / f"initial_{place.process_id}.npz", *start.weights)
    result = {
        **dataclasses.asdict(place),
        "strategy_devices": strategy.devices,
        # Data parallelism keeps a whole copy of every weight on every device.
        "replicated": all(v.value.sharding.is_fully_replicated for v in model.variables),
        "weight_devices": sorted({len(v.value.sharding.device_set) for v in model.variables}),
        "history": {k: [float(x) for x in values] for k, values in trained.history.items()},
        "seconds_to_join": round(joined - STARTED, 2),
        "seconds": round(time.perf_counter() - STARTED, 2),
        "cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
    }
    (args.out / f"result_{place.process_id}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
