import dataclasses
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


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    train_examples: int = 8
    grey: float = 0.5


def _fake_module():
    """A family module with the six names of the contract: grey images from a tiny model."""
    import keras

    from tutorial_lib.training import Trained

    module = types.ModuleType("fake_family")
    module.CONFIGS = {name: FakeConfig() for name in ("fast", "cpu", "gpu")}
    module.config_for = lambda name, profile, **options: dataclasses.replace(
        module.CONFIGS[profile], **options
    )

    def build_model(config, *, seed=None):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)], name="fake")
        model.compile("sgd", "mse")
        return model

    def train_model(config, *, dataset, profile, seed=0, run_dir=None, callbacks=None):
        model = build_model(config)
        history = model.fit(
            np.zeros((8, 1)), np.zeros((8, 1)), epochs=1, verbose=0, callbacks=callbacks
        )
        return Trained(model, history.history, config.train_examples)

    module.build_model, module.train_model = build_model, train_model
    module.sample = lambda model, num, *, seed=0, grey=None: np.full((num, 28, 28, 1), grey or 0.5)
    module.evaluate = lambda model, config, *, dataset, profile: {}
    return module


@pytest.fixture
def fake_family(monkeypatch):
    """A new family: its module and one registry entry, nothing else."""
    from tutorial_lib import families

    monkeypatch.setitem(sys.modules, "fake_family", _fake_module())
    entry = families.Family(
        name="fake",
        module="fake_family",
        title="grey images",
        lesson="00_setup",
        samples="images",
        options=(families.Option("--grey", "sample", "how grey", type=float),),
    )
    monkeypatch.setitem(families.FAMILIES, "fake", entry)
    return "fake"


def test_a_new_family_trains_and_samples_from_its_registry_entry(tmp_path, fake_family):
    run = tmp_path / "run"
    assert cli.main(["train", fake_family, "--profile", "fast", "--out", str(run)]) == 0
    record = json.loads((run / "metrics.json").read_text())
    assert record["model"] == "fake" and record["config"] == {"train_examples": 8, "grey": 0.5}
    out = tmp_path / "deep" / "samples.npy"
    argv = ["sample", fake_family, "--run", str(run), "--num", "5", "--out", str(out)]
    assert cli.main([*argv, "--grey", "0.25"]) == 0
    images = np.load(out)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert np.all(images == 0.25)


def test_sampling_a_missing_run_exits_1_with_advice(tmp_path, fake_family, capsys):
    argv = ["sample", fake_family, "--run", str(tmp_path), "--out", str(tmp_path / "s.npy")]
    assert cli.main(argv) == 1
    assert "never finished" in capsys.readouterr().err


def test_sampling_a_damaged_run_exits_1_in_one_line(tmp_path, fake_family, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", fake_family, "--profile", "fast", "--out", str(run)]) == 0
    (run / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    argv = ["sample", fake_family, "--run", str(run), "--out", str(tmp_path / "s.npy")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and err.count("\n") == 1 and "Traceback" not in err


def test_check_samples_rejects_what_the_cli_must_not_write():
    with pytest.raises(ValueError, match="shape"):
        cli.check_samples(np.zeros((2, 28, 28)), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cli.check_samples(np.full((1, 28, 28, 1), 2.0), 1)
