import dataclasses
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

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
    env = {key: "" for key in ("TUTORIAL_TF_LOGS", "TF_CPP_MIN_LOG_LEVEL")}  # the defaults
    result = _run("info", env=env)
    assert result.returncode == 0, result.stderr
    for key in ("tensorflow", "keras", "gpus", "profile", "precision_policy"):
        assert key in result.stdout
    # TensorFlow's start-up notices are held back: on a machine without a GPU the
    # report says so in plain words instead of CUDA's error line.
    for notice in ("absl::InitializeLog", "oneDNN", "cpu_feature_guard"):
        assert notice not in result.stderr
    if "none found" in result.stdout:
        assert "cuInit" not in result.stderr and "cuda drivers" not in result.stderr
        assert "Nothing is wrong" in result.stdout


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


def test_train_writes_the_documented_files_and_sampling_an_autoencoder_says_why_not(
    tmp_path, capsys
):
    """In this process: `python -m tutorial_lib` runs this same `main` (test_info proves the
    entry point in a fresh process)."""
    run = tmp_path / "run"
    argv = ["train", "autoencoder", "--dataset", "fashion_mnist", "--profile", "fast"]
    assert cli.main([*argv, "--out", str(run)]) == 0
    assert {"model.keras", "metrics.json", "samples.png"} <= {p.name for p in run.iterdir()}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion_mnist" and metrics["profile"] == "fast"
    assert np.isfinite(metrics["test_mse"])

    argv = ["sample", "autoencoder", "--run", str(run), "--out", str(tmp_path / "s.npy")]
    assert cli.main(argv) == 2
    assert "sampling is not defined for a plain autoencoder" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    train_examples: int = 8
    grey: float = 0.5


def _fake_module():
    """A family module with the five names of the contract: grey images from a tiny model."""
    import keras

    from tutorial_lib.training import Trained

    module = types.ModuleType("fake_family")
    module.CONFIGS = {"fake": {profile: FakeConfig() for profile in ("fast", "cpu", "gpu")}}

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
    return _register_fake_family(monkeypatch)


def _register_fake_family(monkeypatch) -> str:
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


def test_a_new_family_appears_in_the_bench_and_in_the_comparison_table(tmp_path, fake_family):
    """The bench and notebook 07's tables take every family of the registry: the new one
    too, from its module and its entry alone."""
    from tutorial_lib import bench, compare, data, runs
    from tutorial_lib.profiles import PROFILES

    out = tmp_path / "bench"
    rows = bench.run_bench(PROFILES["fast"], models=[fake_family], out_dir=out)
    assert [row["model"] for row in rows] == [fake_family] and rows[0]["train_seconds"] > 0
    assert f"| {fake_family} |" in (out / "bench.md").read_text()
    assert fake_family in compare.table_families()
    run = runs.load(out / "runs" / fake_family)
    images, _ = data.load_images("mnist", "test", limit=2)
    found = compare.measure(fake_family, run, images, samples=20)
    assert found["samples"].shape == (10, 28, 28, 1) and "interpolation" not in found
    row = compare.table_row(fake_family, found["record"])
    assert row["model"] == fake_family and row["lesson"] == "00_setup"
    assert row["latent space"] == compare.LATENT_SPACES["none"]
    assert set(compare.MEASURED_COLUMNS + compare.NATURE_COLUMNS) <= set(row)


def test_sampling_a_missing_run_exits_1_with_advice(tmp_path, fake_family, capsys):
    argv = ["sample", fake_family, "--run", str(tmp_path), "--out", str(tmp_path / "s.npy")]
    assert cli.main(argv) == 1
    assert "never finished" in capsys.readouterr().err


# Every file of a run folder that `sample` reads, damaged as files get damaged: cut
# short by a full disk or an interrupted copy, overwritten, edited by hand.
RETRAIN = "train fake --out {run}`"  # the advice: train again, into the run folder
AGAIN = "Train the run again"  # a record: the model it names may be damaged too
DROP_LOG = "delete it to use the run without them"  # only the per-epoch log is lost
DAMAGE = {
    "model.keras cut short": ("model.keras", b"PK\x03\x04 truncated", RETRAIN),
    "model.keras empty": ("model.keras", b"", RETRAIN),
    "metrics.json cut short": ("metrics.json", b'{"model": "fake", "prof', AGAIN),
    "metrics.json not a record": ("metrics.json", b"[1, 2, 3]", AGAIN),
    "metrics.json unknown profile": ("metrics.json", b'{"model": "fake", "profile": "x"}', AGAIN),
    "metrics.json not text": ("metrics.json", b"\xff\xfe\x00garbage", AGAIN),
    "history.csv not text": ("history.csv", b"\x89PNG\r\n\x1a\n\x00\x00", DROP_LOG),
    "history.csv without epochs": ("history.csv", b"loss,val_loss\n0.5,0.6\n", DROP_LOG),
    "history.csv row cut short": ("history.csv", b"epoch,loss\n0,0.5\n1\n", DROP_LOG),
    "history.csv not numbers": ("history.csv", b"epoch,loss\n0,<html>\n", DROP_LOG),
    # latent diffusion keeps its VAE in a stage folder: the run folder trains again
    "stage autoencoder/model.keras": ("autoencoder/model.keras", b"not a keras file", RETRAIN),
}


@pytest.fixture(scope="module")
def trained_fake_run(tmp_path_factory):
    """One run folder of the fake family, trained once for the tests that damage it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        name = _register_fake_family(monkeypatch)
        run = tmp_path_factory.mktemp("fake") / "run"
        assert cli.main(["train", name, "--profile", "fast", "--out", str(run)]) == 0
    return run


@pytest.fixture
def fake_run(trained_fake_run, tmp_path, fake_family):
    """A copy of that run folder, this test's to damage."""
    return Path(shutil.copytree(trained_fake_run, tmp_path / "run"))


@pytest.mark.parametrize("kind", DAMAGE)
def test_sampling_a_damaged_run_exits_1_in_one_line(kind, fake_run, tmp_path, capsys):
    name, content, advice = DAMAGE[kind]
    (fake_run / name).parent.mkdir(exist_ok=True)
    (fake_run / name).write_bytes(content)
    capsys.readouterr()
    argv = ["sample", "fake", "--run", str(fake_run), "--out", str(tmp_path / "s.npy")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(fake_run / name) in err and "damaged" in err
    assert advice.format(run=fake_run) in err


def test_training_over_a_damaged_clock_exits_1_in_one_line(fake_run, capsys):
    (fake_run / "clock.json").write_text('{"legs": [12.5, ')  # cut short
    capsys.readouterr()
    assert cli.main(["train", "fake", "--profile", "fast", "--out", str(fake_run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(fake_run / "clock.json") in err and "Delete it" in err


def test_training_on_damaged_data_exits_1_in_one_line(no_data_dir, tmp_path, capsys):
    path = no_data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir()
    path.write_bytes(b"\x1f\x8b\x08 cut short")
    argv = ["train", "autoencoder", "--profile", "fast", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "Fix:" in err


def test_an_interrupted_cli_run_resumes_and_records_every_leg(tmp_path, monkeypatch, capsys):
    """`train`, stopped after its first epoch, then the same command again: the record
    adds up both legs' seconds and says there were two."""
    from tutorial_lib import training

    run = tmp_path / "run"
    argv = ["train", "autoencoder", "--profile", "fast", "--out", str(run)]

    def stop_after_the_first_epoch(self, epoch, logs=None):
        if epoch == 1 and not self.resumed:  # epoch 0 is logged, backed up and timed...
            raise KeyboardInterrupt  # ...and Ctrl-C comes before epoch 1 starts

    monkeypatch.setattr(training.TrainingClock, "on_epoch_begin", stop_after_the_first_epoch)
    assert cli.main(argv) == 130  # Ctrl-C: no traceback, but what to do
    assert capsys.readouterr().err == (
        f"\ninterrupted; run the same command again to resume the run in {run}\n"
    )
    first_leg = json.loads((run / "clock.json").read_text())["legs"]
    assert len(first_leg) == 1 and not (run / "metrics.json").exists()
    assert (run / "backup").is_dir()  # the next leg resumes; it does not start over

    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"resuming the interrupted run in {run}")
    record = json.loads((run / "metrics.json").read_text())
    assert record["train_legs"] == 2
    assert record["train_seconds"] > first_leg[0] > 0
    assert not (run / "clock.json").exists()
    with open(run / "history.csv") as handle:
        assert [line.split(",")[0] for line in handle][1:] == ["0", "1"]  # both epochs


def test_check_samples_rejects_what_the_cli_must_not_write():
    with pytest.raises(ValueError, match="shape"):
        cli.check_samples(np.zeros((2, 28, 28)), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cli.check_samples(np.full((1, 28, 28, 1), 2.0), 1)
