"""Every family on Keras's other two backends, JAX and PyTorch, without TensorFlow.

The rest of the suite runs on TensorFlow, the default backend. Here one model of every
family trains (fast profile, fewer steps), is evaluated, saved, loaded back and sampled
on JAX and on PyTorch, each in a process of its own (``tests/backend_parity.py``) in
which ``import tensorflow`` fails, as on a machine that has only that backend. The two
processes run side by side.
"""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from backend_parity import QUICK_XLA_FLAGS

from tutorial_lib import captions, families, metrics

# The GAN recipe runs two optimizers, the R1 input gradient and the weight average;
# latent diffusion runs its VAE stage too.
PARITY_MODELS = families.ONE_PER_FAMILY
BACKENDS = ("jax", "torch")
SCRIPT = Path(__file__).resolve().parent / "backend_parity.py"
TIMEOUT_S = 600


def _imports_tensorflow(source: str) -> bool:
    """Whether ``source`` imports TensorFlow (directly or through ``backend.import_tensorflow``)."""
    if "import_tensorflow(" in source:
        return True
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name.split(".")[0] == "tensorflow" for name in names):
            return True
    return False


def _without_magics(cell: str) -> str:
    """A notebook cell's Python, its IPython magics and shell lines left out."""
    return "\n".join(line for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def test_the_exercises_and_their_checks_need_no_tensorflow():
    """A learner on JAX or PyTorch does the exercises as they are: no solution (nor the
    learner's copy) and nothing its checks run in the learner's process imports TensorFlow.
    (Each solution runs on all three backends with
    ``KERAS_BACKEND=jax python -m pytest exercises``; here, what keeps it so.)"""
    root = Path(__file__).resolve().parent.parent
    modules = [
        *sorted((root / "tutorial_lib" / "checks").glob("*.py")),
        *sorted((root / "tutorial_lib" / "grading").glob("probe*.py")),
        root / "tutorial_lib" / "grading" / "remote.py",
        root / "tutorial_lib" / "grading" / "worker.py",
    ]
    found = [path.name for path in modules if _imports_tensorflow(path.read_text())]
    for path in sorted((root / "exercises").glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        code = [c.source for c in cells if c.cell_type == "code"]
        if any(_imports_tensorflow(_without_magics(source)) for source in code):
            found.append(path.name)
    assert not found, f"these import TensorFlow: {found}"


def test_the_parity_models_cover_every_family():
    modules = {families.get(name).module for name in families.names()}
    assert {families.get(name).module for name in PARITY_MODELS} == modules


@pytest.fixture(scope="module")
def parity(tmp_path_factory) -> dict:
    """Both backends' results, from two processes started together."""
    folder = tmp_path_factory.mktemp("backends")
    # The classifier's outputs for the test split and the captions' terciles, into the
    # session's cache (stores.cache_dir) before the processes start: they read them
    # instead of each computing them again.
    metrics.classifier_accuracy("mnist")
    captions.thresholds("mnist")
    started = {}
    for backend in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
        env["XLA_FLAGS"] = QUICK_XLA_FLAGS
        log = open(folder / f"{backend}.log", "w")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(folder / f"{backend}.json"), *PARITY_MODELS],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started[backend] = (process, log)
    results = {}
    try:
        for backend, (process, log) in started.items():
            try:
                code = process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = f"no end after {TIMEOUT_S} s"
            log.close()
            output = (folder / f"{backend}.log").read_text(errors="replace")
            results[backend] = (
                json.loads((folder / f"{backend}.json").read_text())
                if code == 0
                else f"the {backend} process failed ({code}):\n{output[-4000:]}"
            )
    finally:
        for process, log in started.values():
            process.kill()
            log.close()
    return results


def _result(parity, backend) -> dict:
    result = parity[backend]
    if isinstance(result, str):
        pytest.fail(result)
    return result


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_device_report_names_the_backend_and_the_accelerator(parity, backend):
    result = _result(parity, backend)
    assert result["backend"] == backend
    lines = dict(line.split(None, 1) for line in result["report"].splitlines() if line[:1] != " ")
    assert lines["backend"].startswith(backend)
    assert lines["accelerator"] == "CPU"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", PARITY_MODELS)
def test_every_family_trains_evaluates_and_samples(parity, backend, name):
    entry = _result(parity, backend)["models"][name]
    assert entry["finite"], f"{name} on {backend}: a loss or figure is not finite: {entry}"
    assert entry["losses"], f"{name} on {backend} logged no loss"
    family = families.get(name)
    if family.samples == "images":
        assert entry["sample_shape"] == [4, 28, 28, 1]
        low, high = entry["sample_range"]
        assert 0.0 <= low <= high <= 1.0
    elif family.samples == "text":
        assert len(entry["sample_text"]) == 40
    if family.likelihood != "none":
        figures = [v for k, v in entry["record"].items() if "nll" in k or "bits" in k]
        assert figures and all(math.isfinite(v) and v > 0 for v in figures), entry["record"]
