"""Check the course on a GPU, with Keras on JAX, and record what was measured.

    KERAS_BACKEND=jax python scripts/gpu_check.py --out gpu-check [--minutes 8]

For a machine that has a GPU and JAX (and perhaps no TensorFlow): install Keras and
this package first (``pip install keras-*.whl`` from a wheel you carried there, then
``pip install --no-deps -e .``), and point ``TUTORIAL_DATA_DIR`` at a copy of the data.
It runs, in order:

1. the device report (``python -m tutorial_lib info``): backend, accelerator, GPUs,
   precision policy;
2. every family's parity check (``tests/backend_parity.py``: train, evaluate, save,
   load and sample each family in the fast profile);
3. one gpu-profile training per family (:func:`tutorial_lib.runs.train`), with its
   record: training seconds and throughput, the family's figures, the precision policy
   in force. Families run while ``--minutes`` of the budget are left.

Everything lands in ``--out``: ``report.txt``, ``parity.json``, ``gpu_runs.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tutorial_lib import families

ROOT = Path(__file__).resolve().parents[1]
FAMILY_MODELS = families.ONE_PER_FAMILY


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu-check")
    parser.add_argument("--minutes", type=float, default=8.0, help="time for step 3")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from tutorial_lib import device, runs

    (out / "report.txt").write_text(device.format_report() + "\n")
    print(device.format_report(), flush=True)
    parity = [sys.executable, str(ROOT / "tests" / "backend_parity.py"), str(out / "parity.json")]
    subprocess.run([*parity, *FAMILY_MODELS], check=False)

    setup = device.setup("gpu")
    deadline = time.monotonic() + 60 * args.minutes
    records = {}
    for name in FAMILY_MODELS:
        if time.monotonic() > deadline:
            records[name] = {"skipped": "out of time"}
            continue
        try:
            run = runs.train(name, setup.profile)
            records[name] = {**run.record, "precision_policy": setup.precision}
        except Exception as error:  # one family's failure is a finding, not the end
            records[name] = {"error": f"{type(error).__name__}: {error}"[:2000]}
        (out / "gpu_runs.json").write_text(json.dumps(records, indent=1, default=str))
        print(name, json.dumps(records[name], default=str)[:400], flush=True)


if __name__ == "__main__":
    main()
