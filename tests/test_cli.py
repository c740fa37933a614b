import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from tutorial_lib import cli


def _run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tutorial_lib", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_info_prints_the_device_report():
    result = _run("info")
    assert result.returncode == 0, result.stderr
    for key in ("tensorflow", "keras", "gpus", "profile", "precision_policy"):
        assert key in result.stdout


@pytest.mark.parametrize(
    "argv, choices",
    [
        (["train", "unicorn", "--out", "x"], "'autoencoder'"),
        (["sample", "unicorn", "--run", "x", "--out", "y.npy"], "'autoencoder'"),
        (
            ["train", "autoencoder", "--dataset", "cifar10", "--out", "x"],
            "'mnist', 'fashion_mnist'",
        ),
        (["train", "autoencoder", "--profile", "turbo", "--out", "x"], "'fast', 'cpu', 'gpu'"),
    ],
)
def test_unknown_names_exit_2_listing_the_choices(argv, choices, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and choices in err


def test_unknown_profile_in_the_environment_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_PROFILE", "turbo")
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "autoencoder", "--out", "x"])
    assert info.value.code == 2
    assert "fast, cpu, gpu" in capsys.readouterr().err


def test_train_writes_the_documented_files_and_sampling_an_autoencoder_says_why_not(tmp_path):
    run = tmp_path / "run"
    result = _run(
        "train", "autoencoder", "--dataset", "fashion_mnist", "--profile", "fast", "--out", str(run)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"model.keras", "metrics.json", "samples.png"} <= {p.name for p in run.iterdir()}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion_mnist" and metrics["profile"] == "fast"
    assert np.isfinite(metrics["test_mse"])

    result = _run("sample", "autoencoder", "--run", str(run), "--out", str(tmp_path / "s.npy"))
    assert result.returncode == 2
    assert "sampling is not defined for a plain autoencoder" in result.stderr


@pytest.fixture
def fake_family(monkeypatch):
    """A stand-in model family that samples grey images from a trained run folder."""
    from tutorial_lib.training import MODEL_FILE, load_run_model

    def sample_run(name, *, run_dir, num, seed):
        if not (run_dir / MODEL_FILE).exists():
            load_run_model(run_dir)  # raises the library's missing-run error
        return np.full((num, 28, 28, 1), 0.5)

    family = types.ModuleType("fake_family")
    family.train_run = lambda name, **kwargs: {}
    family.sample_run = sample_run
    monkeypatch.setitem(sys.modules, "fake_family", family)
    monkeypatch.setitem(cli.MODEL_FAMILIES, "fake", "fake_family")
    return "fake"


def test_sample_writes_float32_images_in_the_unit_range(tmp_path, fake_family):
    (tmp_path / "model.keras").write_text("stand-in")
    out = tmp_path / "deep" / "samples.npy"
    argv = ["sample", fake_family, "--run", str(tmp_path), "--num", "5", "--out", str(out)]
    assert cli.main(argv) == 0
    images = np.load(out)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_sampling_a_missing_run_exits_1_with_advice(tmp_path, fake_family, capsys):
    argv = ["sample", fake_family, "--run", str(tmp_path), "--out", str(tmp_path / "s.npy")]
    assert cli.main(argv) == 1
    assert "Train one first" in capsys.readouterr().err


def test_check_samples_rejects_what_the_cli_must_not_write():
    with pytest.raises(ValueError, match="shape"):
        cli.check_samples(np.zeros((2, 28, 28)), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cli.check_samples(np.full((1, 28, 28, 1), 2.0), 1)
