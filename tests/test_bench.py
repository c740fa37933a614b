"""`python -m tutorial_lib bench --profile fast`, end to end, and its report format."""

import json

import pytest

from tutorial_lib import bench, cli, families
from tutorial_lib.baselines import SEED_RECIPES
from tutorial_lib.profiles import PROFILES


def test_bench_fast_trains_scores_and_reports_a_family_beside_its_seed_recipe(tmp_path, capsys):
    """End to end on two families with seed recipes (one scored by reconstruction, one by
    its samples); every family's own life cycle is tested in its own tests."""
    argv = ["bench", "--profile", "fast", "--models", "gan", "autoencoder", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    names = [row["model"] for row in report["rows"]]
    expected = ["gan", SEED_RECIPES["seed002_gan"][0]]
    expected += ["autoencoder", SEED_RECIPES["seed002_autoencoder"][0]]
    assert names == expected
    rows = {row["model"]: row for row in report["rows"]}
    for row in report["rows"]:
        assert row["train_seconds"] > 0
    for name in (names[0], names[1]):  # the two GANs, scored on their samples
        assert 0.0 <= rows[name]["coverage"] <= 1.0 and rows[name]["frechet_distance"] > 0
    assert rows["gan"]["sample_images_per_second"] > 0
    assert rows["autoencoder"]["test_mse"] > 0 and "frechet_distance" not in rows["autoencoder"]
    for name in ("gan", "autoencoder"):  # a throughput ratio where there is a recipe
        assert rows[name]["speed_ratio_vs_seed"] > 0, name
    markdown = (tmp_path / "bench.md").read_text()
    assert markdown.startswith("Benchmark, profile `fast`") and "Real-data floor" in markdown
    assert "| autoencoder | mnist |" in capsys.readouterr().out


def test_bench_covers_every_family_and_each_seed_recipe_by_default(tmp_path, monkeypatch):
    """Without --models: every family of the registry, each seed recipe right after its
    family, each recommended recipe marked with the textbook model it improves."""
    trained, recipes = [], []

    def fake_family(name, *, dataset, profile, out_dir):
        trained.append((name, dataset))
        return {"model": name, "train_seconds": 1.0}

    def fake_recipe(family, ours, *, dataset, profile):
        recipes.append((family.name, trained[-1][0]))
        return {"model": SEED_RECIPES[family.seed_recipe][0], "baseline_for": family.name}

    monkeypatch.setattr(bench, "bench_family", fake_family)
    monkeypatch.setattr(bench, "bench_seed_recipe", fake_recipe)
    floor = {
        "num_images": 1,
        "confidence": 1.0,
        "coverage": 1.0,
        "inception_score": 10.0,
        "frechet_distance": 1.0,
    }
    monkeypatch.setattr(bench, "_quality_floor", lambda dataset, profile: floor)
    rows = bench.run_bench(PROFILES["fast"], out_dir=tmp_path)
    assert sorted(name for name, _ in trained) == sorted(families.names())
    assert {dataset for _, dataset in trained} == {"mnist"}
    with_recipe = [name for name, family in families.FAMILIES.items() if family.seed_recipe]
    assert sorted(recipes) == sorted((name, name) for name in with_recipe)
    for row in rows:
        family = families.FAMILIES.get(row["model"])
        if family is not None:
            assert row.get("improves") == family.improves
    assert json.loads((tmp_path / "bench.json").read_text())["rows"] == rows


def test_unknown_model_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--models", "unicorn"])
    assert info.value.code == 2 and "unknown models ['unicorn']" in capsys.readouterr().err


def _report(rows: list[dict]) -> dict:
    """A benchmark report around ``rows``, as run_bench writes it."""
    return {
        "profile": "cpu",
        "date": "2026-11-21",
        "machine": "a test machine",
        "floor": {
            "num_images": 1000,
            "confidence": 0.99,
            "coverage": 1.0,
            "inception_score": 9.8,
            "frechet_distance": 4.8,
        },
        "rows": rows,
    }


def test_markdown_report_shows_only_columns_in_use():
    row = {"model": "autoencoder", "dataset": "mnist", "train_seconds": 12.0, "test_mse": 0.0123}
    text = bench.markdown_report(_report([row]))
    assert "| model | data | train s | test MSE |" in text
    assert "| autoencoder | mnist | 12 | 0.0123 |" in text
    assert "FD" not in text.split("\n")[2]


def test_time_budget_stops_training():
    import time

    import keras
    import numpy as np

    from tutorial_lib.baselines import TimeBudget

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    budget = TimeBudget(0.5)
    start = time.perf_counter()
    history = model.fit(
        np.zeros((64, 4)),
        np.zeros((64, 1)),
        epochs=100_000,
        batch_size=8,
        verbose=0,
        callbacks=[budget],
    )
    assert len(history.history["loss"]) < 100_000
    assert time.perf_counter() - start < 30


def test_recommended_recipes_follow_their_textbook_model():
    order = bench._ordered(families.names())
    for name, family in families.FAMILIES.items():
        if family.improves:
            assert order.index(name) > order.index(family.improves), name
            between = order[order.index(family.improves) + 1 : order.index(name)]
            assert all(families.get(other).improves == family.improves for other in between)
    assert sorted(order) == sorted(families.names())
    assert bench._ordered(["cgan_r1_ema"]) == ["cgan_r1_ema"]  # alone, it stays


def test_markdown_report_puts_training_minutes_beside_the_frechet_distance():
    record = {"model": "vae_mixture_prior", "dataset": "mnist", "train_seconds": 150.0}
    record.update(confidence=0.97, coverage=1.0, inception_score=9.3, frechet_distance=12.0)
    row = {**bench.table_row(record), "improves": "vae"}
    assert row["train_minutes"] == 2.5
    text = bench.markdown_report(_report([row]))
    assert "| FD | train min |" in text and "| 12 | 2.5 |" in text
    assert "`vae_mixture_prior` (after `vae`)" in text
