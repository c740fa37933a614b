"""Notebook 07's comparison: table rows from records and spreads, walks through
latent spaces, and the rules that decide the seeds' claims."""

import json
import math

import numpy as np
import pytest

from tutorial_lib import checkpoints, compare, families, profiles, training


def test_the_table_takes_the_autoencoder_and_every_image_family():
    names = compare.table_families()
    assert names[0] == "autoencoder" and "transformer" not in names
    assert sorted(names[1:]) == sorted(families.image_families()) and "pixelcnn" in names
    lessons = [families.get(name).lesson for name in names]
    assert lessons == sorted(lessons)
    assert names[-1] == "text_to_image"  # notebook 09's, after the families 07 teaches


def _record(**figures):
    record = {
        "train_seconds": 120.0,
        "sample_seconds_per_item": 0.0005,
        "confidence": 0.9,
        "coverage": 1.0,
        "frechet_distance": 30.0,
        "parameters": 1234,
        "likelihood": None,
        "config": {},
    }
    record.update(figures)
    return record


def test_a_row_quotes_the_record_and_the_spread_over_seeds():
    spread = {
        "03_gan": {"gan": {"frechet_distance": [30.0, 44.5, 25.1], "train_seconds": [120, 90, 150]}}
    }
    row = compare.table_row("gan", _record(), spread)
    assert (row["train min"], row["sample ms/image"], row["FD"]) == (2.0, 0.5, "30.0")
    assert row["FD over seeds"] == "25.1–44.5" and row["train min over seeds"] == "1.50–2.50"
    assert row["likelihood"] == "none" and row["latent space"].startswith("noise z")
    assert compare.table_row("gan", _record())["FD over seeds"] == "–"  # no spread shipped
    assert set(compare.MEASURED_COLUMNS) | set(compare.NATURE_COLUMNS) <= set(row)


def test_a_likelihood_is_labelled_with_its_data_model():
    bound = _record(likelihood="bound", nll=98.0, config={"binarization": "stochastic"})
    exact = _record(likelihood="exact", nll=900.0, config={})
    assert compare.likelihood_label("vae", bound) == (
        "bound (negative ELBO), 98.0 nats/image, stochastically binarised pixels"
    )
    assert compare.likelihood_label("realnvp", exact).endswith("dequantized 8-bit pixels")
    assert compare.likelihood_label("pixelcnn", {**exact, "config": {"binarization": "threshold"}})
    assert compare.likelihood_label("gan", exact) == "none"  # the registry says it has none


def test_the_shipped_spread_is_read_from_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path))
    assert checkpoints.shipped_spread("cpu") is None
    (tmp_path / "cpu").mkdir()
    spread = {"02_vae": {"vae": {"nll": [100.0, 101.0, 99.5]}}}
    (tmp_path / "cpu" / checkpoints.SPREAD_FILE).write_text(json.dumps(spread))
    assert checkpoints.shipped_spread("cpu") == spread
    assert compare.spread_of(spread, "vae") == {"nll": [100.0, 101.0, 99.5]}


def test_retraining_time_adds_up_the_shipped_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path))
    profile = profiles.get_profile("cpu")
    assert "no shipped run" in compare.retraining_time(profile, ["gan"])
    for lesson, runs in {"03_gan": {"gan": 300.0}, "07_compare": {"vae_stochastic": 180.0}}.items():
        (tmp_path / "cpu" / lesson).mkdir(parents=True)
        record = {
            "runs": {
                key: {"train_seconds": s, "machine": "a test machine"} for key, s in runs.items()
            }
        }
        (tmp_path / "cpu" / lesson / checkpoints.RECORD_FILE).write_text(json.dumps(record))
    line = compare.retraining_time(profile, ["gan"])
    assert "trains 2 models: about 8 minutes" in line and "a test machine" in line


def test_grey_pixels_are_counted_between_black_and_white():
    assert compare.grey_fraction(np.array([0.0, 1.0, 0.5, 0.95])) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def tiny_models():
    training.set_seed(0)
    built = {}
    for name in ("autoencoder", "vae", "gan", "cgan", "realnvp"):
        module = families.get(name).load()
        built[name] = module.build_model(families.get(name).config("fast"), seed=0)
    return built


def _digits():
    rng = np.random.default_rng(0)
    return rng.random((2, 28, 28, 1)).astype(np.float32)


@pytest.mark.parametrize("name", ["autoencoder", "vae", "gan", "cgan", "realnvp"])
def test_a_walk_is_eight_images_in_the_unit_range(tiny_models, name):
    start, end = _digits()
    path = compare.interpolation(name, tiny_models[name], start, end)
    assert path.shape == (8, 28, 28, 1) and path.min() >= 0.0 and path.max() <= 1.0


def test_a_flows_walk_starts_and_ends_at_the_images_themselves(tiny_models):
    """A flow's encoder is exact: the ends of the walk are the images (up to the centres of
    their quantisation bins)."""
    start, end = _digits()
    path = compare.interpolation("realnvp", tiny_models["realnvp"], start, end)
    np.testing.assert_allclose(path[0], start, atol=1 / 256 + 1e-4)
    np.testing.assert_allclose(path[-1], end, atol=1 / 256 + 1e-4)


def test_prior_walks_exist_for_the_vae_and_the_gan_only(tiny_models):
    """Walks between draws of N(0, I): one confidence pair per walk, in [0.1, 1]."""
    for name in ("vae", "gan"):
        walks = compare.prior_walks(name, tiny_models[name], pairs=3, steps=4)
        assert len(walks["ends"]) == len(walks["inner"]) == 3
        assert all(0.1 <= value <= 1.0 for value in walks["ends"] + walks["inner"])
    for name in ("autoencoder", "cgan", "realnvp"):
        assert compare.prior_walks(name, tiny_models[name], pairs=2) is None


def test_families_without_a_walkable_latent_space_give_none():
    start, end = _digits()
    assert compare.interpolation("pixelcnn", None, start, end) is None
    assert compare.interpolation("diffusion", None, start, end) is None
    assert compare.has_encoder("vae") and not compare.has_encoder("gan")


def _measurements(gan_fd, vae_fd, *, gan_ms=0.05, vae_ms=0.05, diffusion_ms=3.0):
    records = {
        "gan": _record(sample_seconds_per_item=gan_ms / 1000, frechet_distance=gan_fd[0]),
        "vae": _record(sample_seconds_per_item=vae_ms / 1000, frechet_distance=vae_fd[0]),
        "diffusion": _record(sample_seconds_per_item=diffusion_ms / 1000),
    }
    spread = {"gan": {"frechet_distance": gan_fd}, "vae": {"frechet_distance": vae_fd}}
    return compare.Measurements(records, spread)


def _verdict(measurements, row, says):
    found = [v for v in compare.verdicts(measurements) if v["row"] == row and v["says"] == says]
    assert len(found) == 1, found
    return found[0]["verdict"]


def test_quality_claims_are_decided_only_beyond_the_spread_over_seeds():
    claim = ("GANs against VAEs", "sharper, more detailed images")
    assert _verdict(_measurements([20, 25, 30], [50, 55, 60]), *claim) == compare.AGREES
    assert _verdict(_measurements([60, 65, 70], [50, 55, 58]), *claim) == compare.DISAGREES
    assert _verdict(_measurements([38, 61, 45], [52, 55, 53]), *claim) == compare.CANNOT_TELL
    assert _verdict(_measurements([20], [50]), *claim) == compare.CANNOT_TELL  # one seed


def test_time_claims_need_a_factor_of_two():
    claim = ("GAN, speed", "⚡ Slow")
    one_pass = _measurements([30, 31, 32], [50, 51, 52])
    assert _verdict(one_pass, *claim) == compare.DISAGREES
    slow_gan = _measurements([30, 31, 32], [50, 51, 52], gan_ms=0.5, vae_ms=0.05)
    assert _verdict(slow_gan, *claim) == compare.AGREES
    assert _verdict(one_pass, "Diffusion, weaknesses", "slow sampling") == compare.AGREES


def test_stability_compares_the_relative_ranges_over_seeds():
    claim = ("GAN, training stability", "⚠️ Unstable (VAE ✅ Stable)")
    assert _verdict(_measurements([20, 40, 30], [50, 51, 52]), *claim) == compare.AGREES
    assert _verdict(_measurements([30, 31, 30.5], [40, 60, 50]), *claim) == compare.DISAGREES
    # Twice the relative range on three seeds each comes up by chance: not shown.
    assert _verdict(_measurements([100, 112, 106], [100, 106, 103]), *claim) == compare.CANNOT_TELL


def test_the_chance_of_a_range_ratio_between_equally_stable_families():
    assert compare.range_ratio_chance(1.0, (3, 3)) == pytest.approx(0.5, abs=0.01)
    assert 0.1 < compare.range_ratio_chance(2.0, (3, 3)) < 0.3
    assert compare.range_ratio_chance(17.0, (3, 3)) < compare.CHANCE


def _walks(ends, inner):
    return {"ends": list(ends), "inner": list(inner)}


def test_latent_structure_is_judged_on_walks_between_prior_draws_beyond_their_noise():
    claim = ("VAEs against GANs", "more structured latent spaces")
    base = _measurements([30, 31, 32], [50, 51, 52])
    assert _verdict(base, *claim) == compare.CANNOT_TELL  # no prior walks measured
    rng = np.random.default_rng(0)
    ends = 0.9 + 0.01 * rng.standard_normal(20)
    smooth = _walks(ends, ends - 0.02 + 0.01 * rng.standard_normal(20))
    rough = _walks(ends, ends - 0.20 + 0.01 * rng.standard_normal(20))
    base.prior_walks = {"vae": smooth, "gan": rough}
    assert _verdict(base, *claim) == compare.AGREES
    base.prior_walks = {"vae": rough, "gan": smooth}
    assert _verdict(base, *claim) == compare.DISAGREES
    base.prior_walks = {"vae": smooth, "gan": smooth}
    assert _verdict(base, *claim) == compare.CANNOT_TELL


def test_a_vae_has_an_explicit_density_computed_as_bounds():
    found = [
        v
        for v in compare.verdicts(_measurements([30, 31, 32], [50, 51, 52]))
        if v["says"] == "explicit likelihood"
    ]
    assert found[0]["verdict"] == compare.AGREES and "not exact" in found[0]["measured"]


def test_claims_about_families_not_measured_are_left_out():
    only_gan = compare.Measurements({"gan": _record()})
    rows = compare.verdicts(only_gan)
    assert rows and all("VAE" not in row["row"] for row in rows)
    assert {row["verdict"] for row in rows} <= {
        compare.AGREES,
        compare.DISAGREES,
        compare.CANNOT_TELL,
    }


def test_the_seed_tables_are_printed_whole_and_the_gan_challenges_corrected():
    stars = compare.seed_table("seed 002: generative models comparison")
    assert [row["model"] for row in stars] == ["Autoencoder", "VAE", "GAN", "Diffusion"]
    assert stars[2]["speed"] == "⚡ Slow"
    printed = compare.seed_table("seed 001: challenges in GAN training")
    names = [row["challenge"] for row in printed]
    assert names.count("Disentanglement") == 2
    corrected = [row[0] for row in compare.CORRECTED_GAN_CHALLENGES]
    assert len(set(corrected)) == 4 and corrected[0] == "Mode collapse"
    # The descriptions keep their order: only the names move.
    assert [row[1] for row in compare.CORRECTED_GAN_CHALLENGES] == [
        r["description"] for r in printed
    ]


def test_likelihood_rows_give_both_data_models_and_bits_per_dimension():
    result = {
        "k": 200,
        "images": 10,
        "vae": {
            "stochastic": {"elbo": 100.0, "iwae": 95.0},
            "threshold": {"elbo": 80.0, "iwae": 76.0},
        },
        "pixelcnn": {"stochastic": {"exact": 90.0}, "threshold": {"exact": 70.0}},
    }
    rows = compare.likelihood_rows(result, {"vae": "a VAE", "pixelcnn": "a PixelCNN"})
    assert [row["figure"] for row in rows] == [
        "bound: negative ELBO",
        "bound: importance-weighted, k = 200",
        "exact",
    ]
    assert rows[2]["thresholded (nats/image)"] == 70.0
    assert rows[2]["bits/dim (stochastic)"] == pytest.approx(90 / (784 * math.log(2)), abs=1e-3)


def test_the_shared_latent_stage_is_trained_when_no_store_has_it(tmp_path, monkeypatch):
    """Notebook 07's VAE of the latent models: notebook 05's stage, trained here (and kept in
    the store) when the course ships none for the profile."""
    from tutorial_lib import denoisers
    from tutorial_lib.profiles import PROFILES

    monkeypatch.setenv(checkpoints.STORE_ENV, str(tmp_path))
    model = compare.autoencoder_stage(PROFILES["fast"])
    assert model.decoder.inputs[0].shape[-1] == denoisers.LATENT_STAGE["fast"].latent_dim
