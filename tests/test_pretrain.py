"""python -m tutorial_lib pretrain: each lesson's results are verified before the next
lesson runs, so a lesson that loads an earlier one's (pretrained="auto") loads them."""

import json
from pathlib import Path

from tutorial_lib import checkpoints, pretrain


def test_a_later_lesson_loads_an_earlier_ones_results_while_pretrain_records(tmp_path, monkeypatch):
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
    monkeypatch.setattr(pretrain, "seed_recipes", lambda store, profile: {"rows": []})
    store = pretrain.pretrain(
        "fast", lessons=[Path("01_earlier.ipynb"), Path("02_later.ipynb")], seeds=1, root=tmp_path
    )
    assert loaded == {"value": "recorded by 01_earlier"}
    assert json.loads((store / "02_later" / checkpoints.RECORD_FILE).read_text())["experiments"]
    timings = json.loads((store / pretrain.LESSONS_FILE).read_text())
    assert set(timings["load_seconds"]) == {"01_earlier", "02_later"}
