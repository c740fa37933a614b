"""More than one host: two JAX processes train one VAE as one (tutorial_lib.hosts).

Two CPU processes on this machine stand in for two hosts: each runs
tests/two_hosts_worker.py with one CPU device, they join through a coordinator on
127.0.0.1, and Keras's ``DataParallel`` splits every global batch of 32 images between
them (16 each), summing the gradients across the processes (JAX's gloo collectives on
CPUs). A third process trains alone, one device, on the same global batches from the
same seed. The checks:

* both processes end with *bitwise* the same weights, laid out whole on both devices:
  after the all-reduce each applies the same update to the same values;
* those weights match the one-process run to within ``WEIGHT_TOLERANCE``, and every
  logged loss (training and validation) to within ``LOSS_RTOL``. Not exactly: one device
  sums the 32 examples' gradients in one order, two devices sum 16 each and then add the
  two sums; float32 addition is not associative, so the gradients differ in their last
  bits (about 1e-7 relative), and Adam carries that through the 6 steps. Measured:
  8.6e-8 at most on the weights, 1.1e-7 relative on the losses. The tolerances, 1e-5,
  leave a hundredfold margin and stay far below what training moved the weights (6e-3;
  Adam moves a weight by up to its learning rate, 1e-3, per step) and below what a
  mistake costs: both processes fed the whole batch, 9.3e-3 off; the validation images
  split into other batches than one process's (the VAE's seed then advances differently),
  4e-3 off; processes that train apart fail the first check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from backend_parity import QUICK_XLA_FLAGS

from tutorial_lib import hosts

WORKER = Path(__file__).with_name("two_hosts_worker.py")
ROOT = WORKER.parent.parent
TIMEOUT_SECONDS = 150  # all three processes together; they take about 25 s on 2 cores
WEIGHT_TOLERANCE = 1e-5
LOSS_RTOL = 1e-5

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX")


# --------------------------------------------------------------------------
# Helpers of tutorial_lib.hosts, in this process (no JAX computation)
# --------------------------------------------------------------------------


def test_each_process_feeds_its_own_equal_part_of_a_batch():
    x, y = np.arange(12).reshape(6, 2), np.arange(6)
    parts = [hosts.local_rows((x, y), process_id=i, num_processes=3) for i in range(3)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
    np.testing.assert_array_equal(parts[1][1], [2, 3])
    with pytest.raises(ValueError, match="divisible by 4"):
        hosts.local_rows(x, process_id=0, num_processes=4)


def test_a_process_shard_of_numpy_batches_keeps_its_rows_of_each():
    from tutorial_lib.data import ArrayBatches

    images = np.random.default_rng(0).random((40, 28, 28, 1)).astype(np.float32)

    def batches():
        return ArrayBatches(
            images,
            batch_size=8,
            shuffle=True,
            seed=3,
            targets="none",
            drop_remainder=False,
            repeat=False,
            binarize="threshold",
        )

    shards = [hosts.ProcessShard(batches(), hosts.Hosts(i, 2, 1, 2)) for i in range(2)]
    whole = batches()
    assert len(shards[0]) == len(whole) == 5
    for index in range(len(whole)):
        assert shards[0][index].shape == (4, 28, 28, 1)
        np.testing.assert_array_equal(np.concatenate([s[index] for s in shards]), whole[index])
    assert hosts.shard_batches(whole) is whole  # one process: nothing to split


def test_shard_batches_splits_only_under_a_distribution_across_processes(monkeypatch):
    x, y = np.arange(22).reshape(11, 2), np.arange(11)
    assert hosts.shard_batches((x, y))[0] is x  # this process alone: nothing to split
    monkeypatch.setattr(hosts, "current", lambda: hosts.Hosts(1, 2, 1, 2))
    assert hosts.shard_batches((x, y))[0] is x  # no distribution in force: a local model
    monkeypatch.setattr(keras.distribution, "distribution", lambda: object())
    batches = hosts.shard_batches((x, y), batch_size=4)  # process 1 of 2: rows 2-3 of 0-3, ...
    assert len(batches) == 3  # batches of 4, 4 and 2 rows (the 11th row left out)
    np.testing.assert_array_equal(batches[0][1], [2, 3])
    np.testing.assert_array_equal(batches[2][0], x[9:10])
    assert hosts.shard_batches(None) is None
    with pytest.raises(TypeError, match="split it yourself"):
        hosts.shard_batches(iter([x]))


def test_joining_needs_the_jax_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=jax"):
        hosts.join("127.0.0.1:1234", 2, 0)


@needs_jax
def test_joining_says_what_is_missing(monkeypatch):
    # Checked before JAX is touched: nothing here starts a backend.
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    for name in (hosts.COORDINATOR_ENV, hosts.NUM_PROCESSES_ENV, hosts.PROCESS_ID_ENV):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=hosts.COORDINATOR_ENV) as missing:
        hosts.join(num_processes=2, process_id=0)
    assert "argument num_processes" not in str(missing.value)  # only what is missing
    monkeypatch.setenv(hosts.NUM_PROCESSES_ENV, "2")
    with pytest.raises(ValueError, match="0 to 1"):
        hosts.join("127.0.0.1:1234", process_id=2)
    with pytest.raises(ValueError, match="port"):
        hosts.join("127.0.0.1", process_id=1)


# --------------------------------------------------------------------------
# Two processes train as one
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment() -> dict:
    env = dict(os.environ)
    for name in list(env):  # nothing of an outer run's distribution or device split
        if name.startswith("KERAS_DISTRIBUTION_") or name == "XLA_FLAGS":
            del env[name]
    env.update(
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        TF_CPP_MIN_LOG_LEVEL="2",
        XLA_FLAGS=QUICK_XLA_FLAGS,  # a few steps: compile quickly (the same in every run)
    )
    return env


def _run_workers(runs: dict[str, list[str]], out: Path) -> dict[str, str]:
    """Start one worker per entry of ``runs`` (name: its arguments), all at once, and
    wait for them; stop every one of them as soon as one fails or time runs out.
    Returns each worker's log."""
    env, processes, logs = _environment(), {}, {}
    try:
        for name, arguments in runs.items():
            log = open(out / f"{name}.log", "wb")  # noqa: SIM115 (closed below)
            logs[name] = log
            processes[name] = subprocess.Popen(
                [sys.executable, str(WORKER), *arguments],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while any(p.poll() is None for p in processes.values()):
            failed = [n for n, p in processes.items() if p.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for log in logs.values():
            log.close()
    texts = {n: (out / f"{n}.log").read_text(errors="replace") for n in runs}
    problems = [
        f"--- {name}: exit status {p.returncode}"
        + ("" if p.returncode != -9 else " (stopped: another failed, or time ran out)")
        + "\n"
        + texts[name][-3000:]
        for name, p in processes.items()
        if p.returncode != 0
    ]
    assert not problems, "\n".join(problems)
    return texts


def _load(path: Path) -> list[np.ndarray]:
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def _largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [w.shape for w in a] == [w.shape for w in b]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


@needs_jax
def test_two_processes_train_one_vae_as_one_process_does(tmp_path):
    coordinator = f"127.0.0.1:{_free_port()}"
    pair = ["--coordinator", coordinator, "--num-processes", "2"]
    _run_workers(
        {
            "process_0": ["--out", str(tmp_path / "two"), *pair, "--process-id", "0"],
            "process_1": ["--out", str(tmp_path / "two"), *pair, "--process-id", "1"],
            "alone": ["--out", str(tmp_path / "one")],
        },
        tmp_path,
    )
    two = [json.loads((tmp_path / "two" / f"result_{i}.json").read_text()) for i in (0, 1)]
    one = json.loads((tmp_path / "one" / "result_0.json").read_text())
    for i, result in enumerate(two):
        assert (result["process_id"], result["num_processes"]) == (i, 2)
        assert result["local_devices"] == 1 and result["devices"] == 2
        assert result["strategy_devices"] == 2  # each batch split over both processes
        assert result["replicated"] and result["weight_devices"] == [2]
    assert one["devices"] == one["strategy_devices"] == 1

    weights = [_load(tmp_path / "two" / f"weights_{i}.npz") for i in (0, 1)]
    alone = _load(tmp_path / "one" / "weights_0.npz")
    initial = _load(tmp_path / "one" / "initial_0.npz")

    # (a) Both processes hold the same weights, to the last bit.
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert two[0]["history"] == two[1]["history"]
    np.testing.assert_array_equal(
        np.concatenate([w.ravel() for w in _load(tmp_path / "two" / "initial_0.npz")]),
        np.concatenate([w.ravel() for w in initial]),
    )  # and started where the one-process run started

    # (b) ... and they are the one-process run's weights, to rounding.
    moved = _largest_difference(alone, initial)
    assert moved > 100 * WEIGHT_TOLERANCE, f"training barely moved the weights ({moved:.1e})"
    difference = _largest_difference(weights[0], alone)
    assert difference < WEIGHT_TOLERANCE, (
        f"two processes ended {difference:.1e} away from one process (moved {moved:.1e})"
    )
    assert sorted(two[0]["history"]) == sorted(one["history"])
    for key, values in one["history"].items():  # the validation images split alike
        np.testing.assert_allclose(two[0]["history"][key], values, rtol=LOSS_RTOL, err_msg=key)
