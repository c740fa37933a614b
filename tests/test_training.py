import io
import sys

import keras
import numpy as np
import pytest

from tutorial_lib import training


def _small_model():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _regression_data():
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def test_set_seed_makes_initialisation_reproducible():
    training.set_seed(7)
    first = _small_model().get_weights()
    training.set_seed(7)
    again = _small_model().get_weights()
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


class _Interrupt(keras.callbacks.Callback):
    """Simulates a crash (kernel restart, Ctrl-C) right after epoch ``after`` finishes:
    as the next one begins, once every callback has seen the finished one."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.after:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_without_losing_a_finished_epoch(tmp_path):
    x, y = _regression_data()
    kwargs = dict(epochs=5, batch_size=16, shuffle=False, verbose=0)

    training.set_seed(1)
    uninterrupted = _small_model()
    full = training.fit_resumable(uninterrupted, x, y=y, run_dir=tmp_path / "full", **kwargs)

    training.set_seed(1)
    model = _small_model()
    with pytest.raises(KeyboardInterrupt):
        training.fit_resumable(
            model, x, y=y, run_dir=tmp_path / "run", callbacks=[_Interrupt(3)], **kwargs
        )
    assert (tmp_path / "run" / "backup").exists()

    training.set_seed(1)
    restarted = _small_model()  # a fresh process would rebuild the model from scratch
    resumed = training.fit_resumable(restarted, x, y=y, run_dir=tmp_path / "run", **kwargs)

    assert resumed.epoch == [3, 4]  # only the two unfinished epochs were trained
    assert len(resumed.history["loss"]) == 5  # but the history covers the whole run
    np.testing.assert_allclose(resumed.history["loss"], full.history["loss"], rtol=1e-5)
    # Weights and optimizer state were restored: the result equals the uninterrupted run.
    for a, b in zip(restarted.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "run" / "backup").exists()  # cleaned up once complete


def test_a_new_run_in_an_old_folder_starts_its_history_afresh(tmp_path):
    x, y = _regression_data()
    training.fit_resumable(_small_model(), x, y=y, run_dir=tmp_path, epochs=3, verbose=0)
    again = training.fit_resumable(_small_model(), x, y=y, run_dir=tmp_path, epochs=2, verbose=0)
    assert len(again.history["loss"]) == 2
    assert "val_loss" not in again.history  # a metric never logged is left out


def test_sample_grid_runs_every_n_epochs():
    x, y = _regression_data()
    calls = []

    def sample(model, num):
        assert isinstance(model, keras.Model)
        calls.append(num)
        return np.random.default_rng(0).random((num, 28, 28, 1))

    grid = training.SampleGrid(sample, every=2, num=4)
    _small_model().fit(x, y, epochs=5, verbose=0, callbacks=[grid])
    assert [epoch for epoch, _ in grid.grids] == [2, 4]
    assert calls == [4, 4]
    with pytest.raises(ValueError, match="positive"):
        training.SampleGrid(sample, every=0)


def test_progress_is_quiet_in_the_fast_profile():
    from tutorial_lib.profiles import PROFILES

    assert training.progress_verbosity(PROFILES["fast"]) == 0


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_epoch_elsewhere(monkeypatch):
    from tutorial_lib.profiles import PROFILES

    cpu = PROFILES["cpu"]
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert training.progress_verbosity(cpu) == 1  # Keras's live progress bar
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # `train ... > log.txt`, a pipe
    assert training.progress_verbosity(cpu) == 2
    monkeypatch.setattr(training, "_in_notebook", lambda: True)
    assert training.progress_verbosity(cpu) == 2  # a notebook keeps one line per epoch


def test_training_into_a_file_logs_each_epoch_once_without_redraws(capsys):
    import tensorflow as tf

    from tutorial_lib.profiles import PROFILES

    x, y = _regression_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    training.fit_for_profile(
        _small_model(), dataset, profile=PROFILES["cpu"], epochs=3, steps_per_epoch=16
    )
    out = capsys.readouterr().out  # captured: not a terminal
    assert "\r" not in out and "\x08" not in out  # no progress-bar redraws
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("Epoch ")] == [
        "Epoch 1/3",
        "Epoch 2/3",
        "Epoch 3/3",
    ]
    assert len(lines) == 6 and all("loss:" in line for line in lines[1::2])


def _interrupted_run(run_dir):
    """A run folder as an interruption after the first of three epochs leaves it."""
    x, y = _regression_data()
    with pytest.raises(KeyboardInterrupt):
        training.fit_resumable(
            _small_model(), x, y=y, run_dir=run_dir, epochs=3, verbose=0, callbacks=[_Interrupt(1)]
        )
    return x, y


@pytest.mark.parametrize(
    "name, content",
    [
        ("latest.keras", b"PK\x03\x04 cut short"),
        ("training_metadata.json", b'{"epoch": '),
    ],
)
def test_a_damaged_backup_says_what_to_do(tmp_path, name, content):
    x, y = _interrupted_run(tmp_path)
    (tmp_path / "backup" / name).write_bytes(content)
    with pytest.raises(training.RunError) as info:
        training.fit_resumable(_small_model(), x, y=y, run_dir=tmp_path, epochs=3, verbose=0)
    message = str(info.value)
    assert str(tmp_path / "backup") in message and "damaged" in message
    assert f"Delete {tmp_path} and train again" in message and "\n" not in message


@pytest.mark.parametrize("content", ['{"legs": [1.5, ', '{"legs": ["soon"]}', '{"legs": [-3]}'])
def test_a_damaged_clock_says_what_to_do(tmp_path, content):
    (tmp_path / training.CLOCK_FILE).write_text(content)
    with pytest.raises(training.RunError, match="Delete it to resume") as info:
        training.TrainingClock(tmp_path)
    assert str(tmp_path / training.CLOCK_FILE) in str(info.value)


def test_a_damaged_history_says_what_to_do(tmp_path):
    (tmp_path / training.HISTORY_FILE).write_text("epoch,loss\n0,0.5\n1\n")  # cut short
    with pytest.raises(training.RunError, match="delete it to use the run without them"):
        training.load_run_history(tmp_path)
    (tmp_path / training.HISTORY_FILE).write_text("epoch,loss,val_loss\n0,0.5,NA\n1,0.4,NA\n")
    assert training.load_run_history(tmp_path) == {"loss": [0.5, 0.4]}  # NA: never logged


def test_a_damaged_stage_names_the_run_folder_to_train_again(tmp_path):
    (tmp_path / training.METRICS_FILE).write_text('{"model": "diffusion", "profile": "cpu"}')
    (tmp_path / "autoencoder").mkdir()
    (tmp_path / "autoencoder" / training.MODEL_FILE).write_bytes(b"PK\x03\x04")
    with pytest.raises(training.RunError) as info:
        training.load_run_model(tmp_path / "autoencoder", model="diffusion")
    assert f"train diffusion --out {tmp_path}`" in str(info.value)


def test_timer_measures_a_block():
    with training.Timer() as timer:
        sum(range(1000))
    assert 0 <= timer.seconds < 5


def test_loading_a_missing_run_says_how_to_make_one(tmp_path):
    with pytest.raises(training.RunError, match="python -m tutorial_lib train"):
        training.load_run_model(tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (b"", "damaged"),  # an empty file, e.g. a copy that never finished
        (b"PK\x03\x04 not really a zip", "damaged"),
    ],
)
def test_loading_a_damaged_model_says_what_to_do(tmp_path, damage, message):
    (tmp_path / training.MODEL_FILE).write_bytes(damage)
    with pytest.raises(training.RunError, match=message) as info:
        training.load_run_model(tmp_path)
    assert "train" in str(info.value) and "\n" not in str(info.value)


def test_a_damaged_record_says_what_to_do(tmp_path):
    with pytest.raises(training.RunError, match="never finished"):
        training.load_run_metrics(tmp_path)
    (tmp_path / training.METRICS_FILE).write_text('{"model": "vae", "nll": 8')
    with pytest.raises(training.RunError, match="damaged"):
        training.load_run_metrics(tmp_path)


def test_fit_for_profile_caps_the_steps_in_the_fast_profile():
    import tensorflow as tf

    from tutorial_lib.profiles import PROFILES

    fast = PROFILES["fast"]
    x, y = _regression_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    model = _small_model()
    history = training.fit_for_profile(model, dataset, profile=fast, epochs=2)
    assert len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations) == 2 * fast.steps_per_epoch
    assert training.capped_steps(100, fast) == fast.steps_per_epoch
    assert training.capped_steps(None, PROFILES["cpu"]) is None


def test_examples_seen_follows_the_cap():
    from tutorial_lib.profiles import PROFILES

    assert training.examples_seen(1000, 3, 100, PROFILES["cpu"]) == 3000
    assert training.examples_seen(1000, 3, 100, PROFILES["fast"]) == 3 * 4 * 100


def test_a_resumed_run_adds_up_the_seconds_of_every_leg(tmp_path):
    x, y = _regression_data()
    kwargs = dict(epochs=4, batch_size=16, shuffle=False, verbose=0)
    first = training.TrainingClock(tmp_path)
    assert not first.resumed
    with pytest.raises(KeyboardInterrupt):
        training.fit_resumable(
            _small_model(), x, y=y, run_dir=tmp_path, callbacks=[first, _Interrupt(2)], **kwargs
        )
    assert training.is_resuming(tmp_path)
    second = training.TrainingClock(tmp_path)
    assert second.resumed and len(second.earlier) == 1
    assert 0 < second.earlier[0] <= first.legs()[0]  # the first leg, up to its last epoch's end
    training.fit_resumable(_small_model(), x, y=y, run_dir=tmp_path, callbacks=[second], **kwargs)
    legs = second.finish()
    assert len(legs) == 2 and sum(legs) > legs[1]
    assert not training.is_resuming(tmp_path)  # the run is complete
