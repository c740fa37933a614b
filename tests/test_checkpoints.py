"""Shipped checkpoints: the switch, record then load, damage, half precision, and the store."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from tutorial_lib import checkpoints, runs, training
from tutorial_lib.course import figures, fingerprints


@pytest.mark.parametrize(
    "value, mode",
    [
        (None, "train"),
        (False, "train"),
        (True, "load"),
        ("1", "load"),
        ("auto", "auto"),
        ("record", "record"),
        ("off", "train"),
    ],
)
def test_the_switch(value, mode, monkeypatch):
    monkeypatch.delenv(checkpoints.PRETRAINED_ENV, raising=False)
    assert checkpoints.mode_of(value) == mode


def test_the_environment_variable_sets_the_switch_when_the_lesson_does_not(monkeypatch):
    monkeypatch.setenv(checkpoints.PRETRAINED_ENV, "1")
    assert checkpoints.mode_of(None) == "load"
    assert checkpoints.mode_of(False) == "train"  # the lesson's own variable wins
    monkeypatch.setenv(checkpoints.PRETRAINED_ENV, "maybe")
    with pytest.raises(ValueError, match="TUTORIAL_PRETRAINED"):
        checkpoints.mode_of(None)


def test_half_precision_models_are_smaller_and_close(tmp_path):
    training.set_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(8)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 64)), np.ones((8, 8)), verbose=0)  # optimizer state to leave out
    model.save(tmp_path / "full.keras")
    checkpoints.save_model(model, tmp_path / "half.keras")
    assert (tmp_path / "half.keras").stat().st_size < 0.4 * (tmp_path / "full.keras").stat().st_size
    loaded = checkpoints.load_model(tmp_path / "half.keras")
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_a_shipped_run_keeps_its_model_but_not_the_stages_trained_on_the_way(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for folder in (tmp_path, tmp_path / "autoencoder"):
        folder.mkdir(exist_ok=True)
        model.save(folder / training.MODEL_FILE)
    (tmp_path / "backup").mkdir()
    checkpoints.Lesson._shrink_run(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [training.MODEL_FILE]
    assert checkpoints.load_model(tmp_path / training.MODEL_FILE).get_weights()[0].shape == (4, 2)


def test_a_model_with_a_weight_average_ships_the_average_in_both_places(tmp_path):
    import dataclasses

    from tutorial_lib import diffusion

    # a U-Net of one level: the smallest denoiser that keeps a weight average
    config = dataclasses.replace(
        diffusion.CONFIGS["diffusion"]["fast"], space="pixel", channel_mults=(1,)
    )
    model = diffusion.build_model(config, seed=0)
    model.ema_network.set_weights([w + 0.5 for w in model.network.get_weights()])
    trained = model.network.get_weights()
    checkpoints.save_model(model, tmp_path / "model.keras")
    for a, b in zip(trained, model.network.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the model in memory is left as it was
    loaded = checkpoints.load_model(tmp_path / "model.keras")
    for a, b in zip(loaded.network.get_weights(), model.ema_network.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path))
    return tmp_path / "fast"


def test_a_loaded_experiment_keeps_the_order_of_its_rows(store):
    rows = {f"DDIM {steps}": np.full((1, 2), steps) for steps in (5, 10, 25, 50, 100)}
    recorded = checkpoints.Lesson("00_test", "fast", pretrained="record")
    recorded.experiment("steps", lambda: {"images": rows})
    recorded.install()
    loaded = checkpoints.Lesson("00_test", "fast", pretrained="1")
    shipped = loaded.experiment("steps", lambda: pytest.fail("it should load, not compute"))
    assert list(shipped["images"]) == list(rows)


def _record_a_lesson():
    lesson = checkpoints.Lesson("00_test", "fast", pretrained="record")
    quality_free = training.SampleGrid(lambda model, n: np.zeros((n, 28, 28, 1)), num=2)
    run = lesson.train("autoencoder", callbacks=[quality_free])
    result = lesson.experiment(
        "sums", lambda: {"total": 3, "values": np.arange(4.0), "nested": {"label": "a"}}
    )
    assert lesson.note("measured", {"auc": np.float32(0.5)}) == {"auc": np.float32(0.5)}
    lesson.install()
    return run, result


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A lesson recorded once (a trained autoencoder, an experiment, a note) into a store
    of its own: (the store's root, the run as trained, the experiment's result)."""
    root = tmp_path_factory.mktemp("recorded")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(checkpoints.STORE_ENV, str(root))
        run, result = _record_a_lesson()
    return root, run, result


@pytest.fixture
def recorded_store(recorded, tmp_path, monkeypatch):
    """This test's own copy of the recorded store (to load from, or to damage)."""
    root, run, result = recorded
    shutil.copytree(root, tmp_path / "store")
    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path / "store"))
    return tmp_path / "store" / "fast", run, result


def test_a_lesson_records_then_loads_the_same_results(recorded_store, capsys):
    _, run, result = recorded_store
    grid = training.SampleGrid(lambda model, n: np.ones((n, 28, 28, 1)), num=2)
    lesson = checkpoints.Lesson("00_test", "fast", pretrained=True)
    loaded = lesson.train("autoencoder", callbacks=[grid])
    assert loaded.record == json.loads(json.dumps(run.record))
    assert loaded.config == run.config and loaded.history.keys() == run.history.keys()
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(
        loaded.model.predict(x, verbose=0), run.model.predict(x, verbose=0), atol=2e-3
    )
    assert [epoch for epoch, _ in grid.grids] == [1, 2], "the callback got its grids back"
    again = lesson.experiment("sums", lambda: pytest.fail("a shipped result is not computed"))
    assert again["total"] == 3 and again["nested"] == {"label": "a"}
    np.testing.assert_array_equal(again["values"], result["values"])
    assert lesson.figure("runs.autoencoder.test_mse") == run.record["test_mse"]
    assert lesson.figure("experiments.measured.auc") == 0.5, "a noted figure is in the record"
    assert lesson.note("measured", {"auc": 0.7}) == {"auc": 0.7}, "only recording keeps it"
    assert lesson.figure("experiments.measured.auc") == 0.5
    assert "(" not in capsys.readouterr().out


def test_a_missing_result_stops_when_asked_for_and_trains_on_auto(recorded_store, capsys):
    with pytest.raises(checkpoints.CheckpointError, match="PRETRAINED = False"):
        checkpoints.Lesson("00_test", "fast", pretrained=True).experiment("other", dict)
    auto = checkpoints.Lesson("00_test", "fast", pretrained="auto")
    assert auto.experiment("other", lambda: {"fresh": 1}) == {"fresh": 1}
    assert "Training instead" in capsys.readouterr().out


def test_a_damaged_checkpoint_says_so_in_one_line(recorded_store, capsys):
    store = recorded_store[0]
    model_file = store / "00_test" / "autoencoder" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:100])  # a download cut short
    with pytest.raises(checkpoints.CheckpointError, match="damaged") as info:
        checkpoints.Lesson("00_test", "fast", pretrained=True).train("autoencoder")
    assert "\n" not in str(info.value) and "model.keras" in str(info.value)
    auto = checkpoints.Lesson("00_test", "fast", pretrained="auto")
    assert isinstance(auto.train("autoencoder"), runs.Run)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "damaged" in printed[0] and "Training instead" in printed[0]


def test_figures_are_written_and_checked_from_the_record():
    root = {
        "lessons": {"03_gan": {"runs": {"gan": {"frechet_distance": 114.6, "coverage": 1.0}}}},
        "spread": {"03_gan": {"gan": {"frechet_distance": [114.6, 120.2, 98.1]}}},
        "bench": {},
    }
    text = (
        "FD **99**<!--fig runs.gan.frechet_distance .0f--> (seeds: up to "
        "121<!--fig spread.03_gan.gan.frechet_distance.max .0f-->), coverage "
        "**1/10**<!--fig runs.gan.coverage tenths-->, and <!--fig runs.gan.nothing-->"
    )
    filled, missing = figures.fill(text, root, "03_gan")
    assert "**115**<!--fig" in filled and "120<!--fig" in filled and "**10/10**<!--fig" in filled
    assert missing == []  # a marker without a number before it is not a figure
    _, missing = figures.fill("**3**<!--fig runs.gan.speed-->", root, "03_gan")
    assert missing == ["runs.gan.speed"]
    assert figures.render(90.0, "min") == "1.5" and figures.render(0.0123, "ms") == "12.3"


def test_a_marker_reads_a_table_row_whose_keys_have_spaces():
    rows = [{"sampler": "DDIM", "Fréchet distance": 86.7, "coverage": "100%"}]
    root = {"lessons": {"05_diffusion": {"experiments": {"steps": {"rows": rows}}}}}
    text = (
        "FD **1**<!--fig experiments.steps.rows.0.Fréchet_distance .1f-->, coverage "
        "**9%**<!--fig experiments.steps.rows.-1.coverage-->"
    )
    filled, missing = figures.fill(text, root, "05_diffusion")
    assert missing == [] and "**86.7**<!--fig" in filled and "**100%**<!--fig" in filled


def test_the_facilitator_table_comes_from_the_timings_and_the_notebooks():
    timings = {"record_seconds": {"01_autoencoder": 150.0}, "load_seconds": {}, "fast_seconds": {}}
    text = "Before\n<!-- begin lessons -->\nold table\n<!-- end lessons -->\nAfter"
    filled = figures.fill_tables(text, {"timings": timings})
    row = next(line for line in filled.splitlines() if line.startswith("| 01 "))
    assert row.endswith("| 2.5 | – | – |") and "old table" not in filled
    assert figures.fill_tables(filled, {"timings": timings}) == filled


def test_a_lesson_timed_before_its_split_shows_its_whole_time_on_part_one_only():
    timings = {
        "record_seconds": {"02b_vae_latent_space": 60.0},
        "load_seconds": {},
        "fast_seconds": {},
        "whole_lesson_seconds": {"record_seconds": {"02_vae": 300.0}, "load_seconds": {}},
    }
    assert figures.lesson_minutes(timings, "02_vae") == ["5.0 (both parts)", "–", "–"]
    assert figures.lesson_minutes(timings, "02b_vae_latent_space") == ["1.0", "–", "–"]
    assert figures.lesson_minutes(timings, "03b_gan_what_helps") == ["–", "–", "–"]
    assert figures.lesson_minutes(timings, "01_autoencoder") == ["–", "–", "–"]
    timings["record_seconds"] = {}
    assert figures.lesson_minutes(timings, "02b_vae_latent_space")[0] == "in 02's"


SHIPPED = checkpoints.store_dir("cpu")


@pytest.mark.skipif(not (SHIPPED / checkpoints.CHECKSUMS_FILE).is_file(), reason="no store yet")
def test_every_marked_figure_in_the_prose_agrees_with_the_record():
    problems = figures.disagreements()
    assert not problems, "\n".join(problems[:10])


def test_a_fingerprint_that_drifted_is_named_part_by_part():
    image = np.linspace(0.0, 1.0, 2 * 28 * 28, dtype="float32").reshape(2, 28, 28, 1)
    reference = {"nll": np.float64(90.0), "samples": image}
    assert fingerprints._differences(dict(reference), reference) == []
    assert fingerprints._differences({"nll": 90.05, "samples": image + 1e-4}, reference) == []
    drifted = fingerprints._differences({"nll": 90.5, "samples": image[::-1]}, reference)
    assert len(drifted) == 2 and drifted[0].startswith("nll 90.5") and "samples" in drifted[1]
    assert fingerprints._differences({"nll": 90.0}, reference)[0].startswith("holds ['nll']")
    text = {"samples": np.asarray("To be, or not")}
    assert fingerprints._differences(text, {"samples": np.asarray("To be, or not")}) == []
    assert fingerprints._differences(text, {"samples": np.asarray("To be, or nor")})


def test_a_reference_is_written_after_the_full_check_and_a_drifted_one_is_named(
    tmp_path, monkeypatch
):
    shipped = checkpoints.store_dir("cpu") / "01_autoencoder" / "autoencoder"
    if not shipped.is_dir():
        pytest.skip("no store yet")
    folder = tmp_path / "cpu" / "01_test" / "autoencoder"
    shutil.copytree(shipped, folder, ignore=shutil.ignore_patterns(fingerprints.REFERENCE_FILE))
    checkpoints.write_checksums(tmp_path / "cpu")
    missing = fingerprints.reference_problems(folder)
    assert "`python -m tutorial_lib.course.fingerprints record`" in missing[-1]
    # (the full check itself is the opt-in test below: here it fails, then passes)
    monkeypatch.setattr(fingerprints, "full_check", lambda run: ["test_mse: recorded 1, ..."])
    with pytest.raises(checkpoints.CheckpointError, match="no reference written"):
        fingerprints.record_reference(folder)
    assert not (folder / fingerprints.REFERENCE_FILE).exists()
    monkeypatch.setattr(fingerprints, "full_check", lambda run: [])
    fingerprints.record_reference(folder)
    assert fingerprints.reference_problems(folder) == [], "written with its checksum"
    reference = dict(np.load(folder / fingerprints.REFERENCE_FILE))
    reference["test_mse"] = reference["test_mse"] * 1.01  # code that drifted by 1%
    with open(folder / fingerprints.REFERENCE_FILE, "wb") as file:
        np.savez(file, **reference)
    problems = fingerprints.reference_problems(folder)
    assert "damaged" in problems[0] and "test_mse" in problems[1], problems


SHIPPED_RUNS = fingerprints.shipped_runs("cpu")
FULL_CHECK = "TUTORIAL_FULL_CHECK"


@pytest.mark.skipif(not SHIPPED_RUNS, reason="no store yet")
@pytest.mark.parametrize("folder", SHIPPED_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_shipped_model_gives_its_reference(folder):
    """Its files match SHA256SUMS, and loaded as a lesson loads it, it gives the figure and
    the first samples it gave when its recorded figures were last reproduced in full (the
    reference was written only then: python -m tutorial_lib.course.fingerprints record)."""
    problems = fingerprints.reference_problems(folder)
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(
    not os.environ.get(FULL_CHECK),
    reason=f"the full reproduction (minutes): {FULL_CHECK}=1, or "
    "python -m tutorial_lib.course.fingerprints check",
)
@pytest.mark.parametrize("folder", SHIPPED_RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_shipped_model_reproduces_its_recorded_figures(folder):
    problems = fingerprints.full_check(fingerprints.load(folder))
    assert not problems, "; ".join(problems)
