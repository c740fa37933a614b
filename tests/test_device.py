import json
import math
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tutorial_lib import device


def test_report_describes_this_machine():
    info = device.report()
    for key in ("python", "tensorflow", "keras", "backend", "gpus", "profile", "precision_policy"):
        assert key in info
    assert info["keras"] == keras.__version__
    assert info["profile"] == "fast"  # set by tests/conftest.py
    text = device.format_report(info)
    assert "keras" in text and "profile" in text


def test_report_formats_gpus():
    info = {
        "gpus": [
            {
                "device": "/physical_device:GPU:0",
                "name": "NVIDIA H100",
                "compute_capability": (9, 0),
                "memory_gib": 79.6,
            }
        ]
    }
    assert "NVIDIA H100, compute capability 9.0, 79.6 GiB" in device.format_report(info)


def test_report_says_in_plain_words_what_no_gpu_means(monkeypatch):
    import tutorial_lib

    monkeypatch.setattr(tutorial_lib, "has_nvidia_device", lambda: False)
    text = device.format_report({"gpus": []})
    assert text.startswith("gpus                   none found: no NVIDIA GPU on this machine")
    assert "Nothing is wrong" in text and "cpu profile" in text
    assert all(line.startswith(" " * 23) for line in text.splitlines()[1:])  # aligned
    monkeypatch.setattr(tutorial_lib, "has_nvidia_device", lambda: True)
    text = device.format_report({"gpus": []})
    assert "none usable: this machine has an NVIDIA GPU" in text
    assert "tensorflow[and-cuda]" in text and "TUTORIAL_TF_LOGS=1" in text
    checks = {row["check"]: row for row in device.check_environment()}
    if not checks["GPU"]["detail"].startswith("/physical_device"):
        assert "none usable" in checks["GPU"]["detail"]


def test_precision_policy_follows_compute_capability(monkeypatch):
    monkeypatch.setattr(device, "gpu_names", lambda: ["gpu0"])
    for capability, expected in [
        ((8, 6), "mixed_bfloat16"),
        ((7, 5), "mixed_float16"),
        ((6, 1), "float32"),
    ]:
        details = [{"compute_capability": capability}]
        monkeypatch.setattr(device, "gpu_details", lambda d=details: d)
        assert device.best_precision_policy() == expected
    monkeypatch.setattr(device, "gpu_names", lambda: [])
    assert device.best_precision_policy() == "float32"


def test_setup_on_cpu_keeps_float32_and_one_replica():
    setup = device.setup("fast")
    assert setup.precision == "float32"
    assert setup.replicas == 1
    assert setup.profile.name == "fast"


def test_gpu_profile_without_gpu_warns_with_advice(monkeypatch):
    monkeypatch.setattr(device, "gpu_names", lambda: [])
    with pytest.warns(UserWarning, match="TUTORIAL_PROFILE=cpu"):
        device.setup("gpu")
    keras.mixed_precision.set_global_policy("float32")


def test_unknown_precision_policy_is_refused():
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        device.set_precision("float8")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_outputs_and_losses(policy):
    """A forced mixed policy: 16-bit compute inside, float32 weights, outputs and loss."""
    try:
        device.set_precision(policy)
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((20,)),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(1, dtype="float32"),  # the float32 output layer
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(128, 20)).astype("float32")
        y = x[:, :1] * 2.0
        history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        assert model.layers[0].compute_dtype == policy.split("_")[1]
        assert all(w.dtype == "float32" for w in model.weights)
        assert model(x[:4]).dtype == "float32"
        losses = history.history["loss"]
        assert all(math.isfinite(v) for v in losses)
        assert losses[-1] < losses[0]
    finally:
        device.set_precision("float32")


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    """Two replicas each take half of every batch; the summed gradient is the same.

    The two runs do the same arithmetic except for the order of float32
    additions (each replica sums its half, then the halves are all-reduced), so
    they agree to float32 rounding (about 1e-7 relative per operation, seen as
    6e-8 here). Over 24 steps we allow 1e-5: a hundred times that, yet a
    wrongly scaled loss (say, summed instead of averaged over replicas) would
    be off by a factor of two and fail.
    """
    script = Path(__file__).with_name("two_device_check.py")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["replicas"] == 2
    np.testing.assert_allclose(out["two_device_loss"], out["one_device_loss"], rtol=1e-5)
    assert out["max_weight_diff"] < 1e-5
