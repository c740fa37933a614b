"""python -m tutorial_lib pretrain: each lesson's results are verified before the next
lesson runs, so a lesson that loads an earlier one's (pretrained="auto") loads them."""

import json
from pathlib import Path

import pytest

from tutorial_lib import checkpoints, training
from tutorial_lib.course import pretrain


def test_a_later_lesson_loads_an_earlier_ones_results_while_pretrain_records(tmp_path, monkeypatch):
    monkeypatch.delenv(checkpoints.STORE_ENV, raising=False)  # unset again afterwards
    loaded = {}

    def record(path, profile, root, mode="record"):
        monkeypatch.setenv(checkpoints.STORE_ENV, str(root))
        if mode != "record":  # pretrain then times each lesson from what was recorded
            return 0.05
        lesson = checkpoints.Lesson(path.stem, profile, pretrained="record")
        if path.stem == "02_later":
            earlier = checkpoints.Lesson("01_earlier", profile, pretrained="auto")
            loaded.update(earlier.experiment("numbers", lambda: {"value": "trained again"}))
        lesson.experiment("numbers", lambda: {"value": f"recorded by {path.stem}"})
        return 0.1

    monkeypatch.setattr(pretrain, "record_lesson", record)
    monkeypatch.setattr(pretrain.notebook_tools, "code_digest", lambda path: f"code of {path.stem}")
    monkeypatch.setattr(pretrain, "seed_recipes", lambda *args: {"rows": []})
    store = pretrain.pretrain(
        "fast", lessons=[Path("01_earlier.ipynb"), Path("02_later.ipynb")], seeds=1, root=tmp_path
    )
    assert loaded == {"value": "recorded by 01_earlier"}
    later = json.loads((store / "02_later" / checkpoints.RECORD_FILE).read_text())
    assert later["experiments"]
    assert later["code_sha256"] == "code of 02_later", "which code the results came from"
    checkpoints.Lesson("02_later", "fast", pretrained=True).check()  # its checksums hold
    timings = json.loads((store / pretrain.LESSONS_FILE).read_text())
    assert set(timings["load_seconds"]) == {"01_earlier", "02_later"}


def test_recording_one_lesson_again_keeps_the_others_timings_and_spread(tmp_path, monkeypatch):
    monkeypatch.delenv(checkpoints.STORE_ENV, raising=False)  # unset again afterwards
    runs_of = {"record": [], "1": [], "0": []}

    def record(path, profile, root, mode="record"):
        monkeypatch.setenv(checkpoints.STORE_ENV, str(root))
        runs_of[mode].append((path.stem, profile.name))
        if mode == "record":
            lesson = checkpoints.Lesson(path.stem, profile, pretrained="record")
            (lesson.folder / "tiny").mkdir(exist_ok=True)  # a run the lesson trained
            (lesson.folder / "tiny" / training.METRICS_FILE).write_text("{}")
        return {"record": 100.0, "1": 10.0, "0": 1.0}[mode]

    lessons = [Path("00_setup.ipynb"), Path("01_trains.ipynb"), Path("02_trains.ipynb")]
    monkeypatch.setattr(pretrain, "record_lesson", record)
    monkeypatch.setattr(pretrain.notebook_tools, "code_digest", lambda path: "")
    monkeypatch.setattr(pretrain, "training_lessons", lambda: lessons[1:])
    monkeypatch.setattr(pretrain.notebook_tools, "lesson_notebooks", lambda: lessons)
    monkeypatch.setattr(pretrain, "seed_recipes", lambda *args: {"rows": []})
    monkeypatch.setattr(
        pretrain,
        "spread",
        lambda store, profile, seeds, names: {n: {"seeds": seeds} for n in names},
    )
    referenced = []
    monkeypatch.setattr(pretrain.fingerprints, "record_reference", referenced.append)
    store = pretrain.pretrain("cpu", seeds=3, root=tmp_path)
    assert referenced == [store / "01_trains" / "tiny", store / "02_trains" / "tiny"]
    timings = json.loads((store / pretrain.LESSONS_FILE).read_text())
    assert timings["record_seconds"] == {"00_setup": 1.0, "01_trains": 100.0, "02_trains": 100.0}
    assert timings["load_seconds"]["00_setup"] == 1.0, "a lesson that trains nothing loads nothing"
    assert set(timings["fast_seconds"]) == {"00_setup", "01_trains", "02_trains"}
    assert ("01_trains", "fast") in runs_of["0"]

    runs_of["record"].clear()
    pretrain.pretrain("cpu", lessons=[lessons[2]], seeds=3, root=tmp_path)
    assert runs_of["record"] == [("02_trains", "cpu")]
    again = json.loads((store / pretrain.LESSONS_FILE).read_text())
    assert again["fast_seconds"] == timings["fast_seconds"], "the other timings stay"
    assert set(json.loads((store / pretrain.SPREAD_FILE).read_text())) == {"01_trains", "02_trains"}


def test_a_lesson_that_fails_while_recording_leaves_its_last_version(tmp_path, monkeypatch):
    """A failing cell (or a kill) half-way through a lesson: the store keeps the lesson as
    it was, checksums and all; the next pretrain swaps the new one in. Without --out, the
    store goes to the per-user data folder, not into the package."""
    monkeypatch.delenv(checkpoints.STORE_ENV, raising=False)  # unset again afterwards
    attempts = []

    def record(path, profile, root, mode="record"):
        monkeypatch.setenv(checkpoints.STORE_ENV, str(root))
        if mode == "record":
            attempts.append(path.stem)
            lesson = checkpoints.Lesson(path.stem, profile, pretrained="record")
            lesson.experiment("numbers", lambda: {"attempt": len(attempts)})
            if len(attempts) == 2:
                raise RuntimeError("01_lesson failed in the fast profile: a cell raised")
        return 0.1

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(pretrain, "record_lesson", record)
    monkeypatch.setattr(pretrain.notebook_tools, "code_digest", lambda path: "")
    monkeypatch.setattr(pretrain, "seed_recipes", lambda *args: {"rows": []})
    lessons = [Path("01_lesson.ipynb")]
    store = pretrain.pretrain("fast", lessons=lessons, seeds=1)
    assert store == tmp_path / "genai-notebooks" / "pretrained" / "fast"
    assert not (store.parent / checkpoints.STAGING_DIR).exists(), "no staging folder left"

    def shipped():
        lesson = checkpoints.Lesson("01_lesson", "fast", pretrained=True)
        lesson.check()
        return lesson.experiment("numbers", dict)["attempt"]

    assert shipped() == 1
    with pytest.raises(RuntimeError, match="a cell raised"):
        pretrain.pretrain("fast", lessons=lessons, seeds=1)
    assert shipped() == 1, "the recorded lesson stays as it was"
    pretrain.pretrain("fast", lessons=lessons, seeds=1)
    assert shipped() == 3


def test_recording_some_lessons_on_another_machine_than_the_rest_is_refused(tmp_path):
    for lesson, machine in (("01_trains", "AMD EPYC, 2 cores"), ("02_trains", "AMD EPYC, 2 cores")):
        (tmp_path / lesson).mkdir()
        (tmp_path / lesson / checkpoints.RECORD_FILE).write_text(json.dumps({"machine": machine}))
    again = [Path("02_trains.ipynb")]
    pretrain.check_one_machine(tmp_path, again, "AMD EPYC, 2 cores")  # the same machine
    with pytest.raises(pretrain.OtherMachineError, match="recorded on AMD EPYC.*Intel Xeon"):
        pretrain.check_one_machine(tmp_path, again, "Intel Xeon, 2 cores")
    # Recording both again is recording the whole store here: nothing left to mix with.
    pretrain.check_one_machine(tmp_path, [*again, Path("01_trains.ipynb")], "Intel Xeon, 2 cores")


def test_recording_one_lesson_again_keeps_the_others_benchmark_rows(tmp_path, monkeypatch):
    """The other lessons' seed recipes were timed beside their own runs: they stay."""
    for lesson, model in (("01_first", "autoencoder"), ("02_second", "vae")):
        (tmp_path / lesson).mkdir()
        config = {"binarization": "threshold"}
        run = {"model": model, "dataset": "mnist", "config": config, "train_seconds": 2.0}
        record = {"runs": {model: run}}
        (tmp_path / lesson / checkpoints.RECORD_FILE).write_text(json.dumps(record))
    earlier = {
        "rows": [
            {"model": "autoencoder", "lesson": "01_first", "train_seconds": 1.0},
            {"model": "seed 002 dense autoencoder", "lesson": None, "baseline_for": "autoencoder"},
            {"model": "vae", "lesson": "02_second", "train_seconds": 1.0},
            {"model": "seed 000 dense VAE", "lesson": None, "baseline_for": "vae"},
        ]
    }
    timed = []

    def seed_recipe(family, ours, **kwargs):
        timed.append(family.name)
        return {"model": "seed again", "baseline_for": family.name}

    monkeypatch.setattr(pretrain.bench, "bench_seed_recipe", seed_recipe)
    monkeypatch.setattr(pretrain.bench, "report", lambda rows, *args: {"rows": rows})
    rows = pretrain.seed_recipes(tmp_path, "fast", ["02_second"], earlier)["rows"]
    assert timed == ["vae"]
    assert rows[:2] == earlier["rows"][:2]
    assert [row["model"] for row in rows[2:]] == ["vae", "seed again"]
    assert rows[2]["train_seconds"] == 2.0


def test_the_other_seeds_get_the_stage_the_lessons_run_was_handed(tmp_path, monkeypatch):
    """A lesson that hands its latent model notebook 05's VAE times the model alone: so must
    its other seeds, or the spread's training time adds the VAE's."""
    for lesson, given in (("05_handed", ["autoencoder"]), ("05b_trains_its_own", [])):
        (tmp_path / lesson).mkdir()
        run = {"model": "diffusion", "config": {}, "stages_given": given, "train_seconds": 1.0}
        (tmp_path / lesson / checkpoints.RECORD_FILE).write_text(json.dumps({"runs": {"d": run}}))
    handed = {}

    class Trained:
        record = {"train_seconds": 2.0}

    def train(name, profile, *, seed, stages=None, **options):
        handed.setdefault(seed, []).append(stages)
        return Trained()

    monkeypatch.setattr(pretrain.runs, "train", train)
    monkeypatch.setattr(pretrain.compare, "autoencoder_stage", lambda profile: "05's VAE")
    found = pretrain.spread(tmp_path, "fast", seeds=2)
    assert handed == {1: [{"autoencoder": "05's VAE"}, None]}
    assert found["05_handed"]["d"]["train_seconds"] == [1.0, 2.0]
