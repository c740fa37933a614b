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
    """Simulates a crash (kernel restart, Ctrl-C) right after epoch ``after`` finishes."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
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

    def sample(num):
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
    assert training.progress_verbosity(PROFILES["cpu"]) == "auto"  # not in a notebook


def test_timer_measures_a_block():
    with training.Timer() as timer:
        sum(range(1000))
    assert 0 <= timer.seconds < 5


def test_loading_a_missing_run_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m tutorial_lib train"):
        training.load_run_model(tmp_path)


def test_fit_for_profile_takes_epochs_and_steps_from_the_profile():
    import tensorflow as tf

    from tutorial_lib.profiles import PROFILES

    fast = PROFILES["fast"]
    x, y = _regression_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    history = training.fit_for_profile(_small_model(), dataset, profile=fast)
    assert len(history.history["loss"]) == fast.epochs
    history = training.fit_for_profile(_small_model(), dataset, profile=fast, epochs=1)
    assert len(history.history["loss"]) == 1
