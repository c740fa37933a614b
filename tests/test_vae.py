import json

import keras
import numpy as np
import pytest

from tutorial_lib import device, vae
from tutorial_lib.profiles import PROFILES

TINY = vae.VAEConfig(kind="dense", latent_dim=3, hidden_units=(16, 8), epochs=1, train_examples=64)


def _binary_images(n=32, seed=0):
    return (np.random.default_rng(seed).random((n, 28, 28, 1)) > 0.7).astype(np.float32)


def test_closed_form_kl_matches_a_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)], estimated with 400,000 samples."""
    rng = np.random.default_rng(0)
    mu = np.array([[0.5, -1.0, 2.0]], np.float32)
    log_var = np.array([[0.0, -1.5, 0.7]], np.float32)
    closed = float(np.asarray(vae.kl_divergence(mu, log_var))[0])
    sigma = np.exp(0.5 * log_var)
    z = mu + sigma * rng.standard_normal((400_000, 3))
    log_q = -0.5 * np.sum(((z - mu) / sigma) ** 2 + log_var + np.log(2 * np.pi), axis=1)
    log_p = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=1)
    monte_carlo = np.mean(log_q - log_p)
    standard_error = np.std(log_q - log_p) / np.sqrt(len(z))
    assert abs(closed - monte_carlo) < 4 * standard_error
    # By hand, per dimension: 0.125 + 0.8616 + 2.1569, summed over the 3 dimensions.
    assert closed == pytest.approx(3.1434, abs=1e-3)


def test_kl_is_zero_exactly_at_the_prior():
    assert float(np.asarray(vae.kl_divergence(np.zeros((1, 4)), np.zeros((1, 4))))[0]) == 0.0


def test_bernoulli_log_likelihood_matches_numpy_summed_over_pixels():
    rng = np.random.default_rng(1)
    x = _binary_images(4)
    logits = rng.normal(scale=3.0, size=x.shape).astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    direct = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    ours = np.asarray(vae.bernoulli_log_likelihood(x, logits))
    assert ours.shape == (4,)
    np.testing.assert_allclose(ours, direct, rtol=1e-5)


def test_sampling_layer_draws_from_the_right_gaussian():
    layer = vae.Sampling(seed=0)
    mu = np.full((50_000, 2), [1.0, -2.0], np.float32)
    log_var = np.full((50_000, 2), [0.0, np.log(0.25)], np.float32)
    z = np.asarray(layer([mu, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 0.5], atol=0.02)


@pytest.mark.parametrize("kind", vae.KINDS)
def test_shapes_and_output_range(kind):
    config = vae.VAEConfig(kind=kind, latent_dim=4, hidden_units=(16, 8), filters=(4, 8))
    model = vae.build_model(config, seed=0)
    x = _binary_images(3)
    z_mean, z_log_var = vae.encode(model, x)
    assert z_mean.shape == z_log_var.shape == (3, 4)
    images = vae.sample(model, 5)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_training_lowers_the_negative_elbo():
    keras.utils.set_random_seed(0)
    model = vae.build_model(TINY, seed=0)
    x = _binary_images(256)
    before = vae.negative_elbo(model, x)["negative_elbo"]
    config = vae.VAEConfig(**{**TINY.__dict__, "epochs": 3})
    history = vae.fit_model(model, x, config=config, profile=PROFILES["fast"])
    assert set(history.history) == {"loss", "reconstruction", "kl"}
    after = vae.negative_elbo(model, x)
    assert after["negative_elbo"] < before
    assert after["negative_elbo"] == pytest.approx(after["reconstruction"] + after["kl"], rel=1e-5)


def test_mixed_precision_keeps_losses_float32_and_finite():
    try:
        device.set_precision("mixed_float16")
        model = vae.build_model(TINY, seed=0)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        history = vae.fit_model(model, _binary_images(64), config=TINY, profile=PROFILES["fast"])
        assert all(np.isfinite(v) for v in history.history["loss"])
        reconstruction, kl = model.losses_per_example(_binary_images(2))
        assert reconstruction.dtype == "float32" and kl.dtype == "float32"
    finally:
        device.set_precision("float32")


def test_save_and_load_round_trip(tmp_path):
    model = vae.build_model(TINY, seed=0)
    x = _binary_images(4)
    model.fit(x, batch_size=4, epochs=1, verbose=0)  # a trained model, optimizer state included
    model.save(tmp_path / "vae.keras")
    loaded = keras.models.load_model(tmp_path / "vae.keras")
    np.testing.assert_allclose(vae.encode(loaded, x)[0], vae.encode(model, x)[0], atol=1e-6)
    assert loaded.beta == model.beta
    assert int(loaded.optimizer.iterations) == 1


def test_interpolation_paths():
    z0, z1 = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    linear = vae.interpolate(z0, z1, steps=5)
    np.testing.assert_allclose(linear[[0, -1]], [z0, z1], atol=1e-6)
    np.testing.assert_allclose(linear[2], [1.5, 1.5])
    spherical = vae.interpolate(z0, z1, steps=5, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(spherical, axis=1), 3.0, rtol=1e-5)
    np.testing.assert_allclose(spherical[[0, -1]], [z0, z1], atol=1e-6)


def test_latent_grid_needs_two_dimensions():
    with pytest.raises(ValueError, match="latent_dim=2"):
        vae.latent_grid(vae.build_model(TINY))
    model = vae.build_model(vae.VAEConfig(kind="dense", latent_dim=2, hidden_units=(8, 8)))
    assert vae.latent_grid(model, n=4).shape == (16, 28, 28, 1)


def test_attribute_vector_names_a_missing_class():
    model = vae.build_model(TINY)
    x, labels = _binary_images(6), np.array([1, 1, 7, 7, 7, 1])
    assert vae.attribute_vector(model, x, labels, source=1, target=7).shape == (3,)
    with pytest.raises(ValueError, match="target class 3"):
        vae.attribute_vector(model, x, labels, source=1, target=3)


def test_importance_weighted_nll_is_tighter_than_the_elbo():
    """log p(x) >= IWAE_k >= ELBO, so the IWAE NLL lies below the negative ELBO."""
    keras.utils.set_random_seed(0)
    model = vae.build_model(TINY, seed=0)
    x = _binary_images(64)
    vae.fit_model(model, x, config=TINY, profile=PROFILES["fast"])
    elbo = np.mean([vae.negative_elbo(model, x)["negative_elbo"] for _ in range(20)])
    nll = vae.importance_weighted_nll(model, x, k=50)
    assert nll <= elbo + 0.05
    assert nll > 0


def test_a_stochastically_binarised_vae_trains_and_is_scored_on_its_data_model():
    from tutorial_lib import data, runs

    run = runs.train("vae", "fast", binarization="stochastic")
    assert run.config.binarization == "stochastic"
    x_test, _ = data.load_images(
        "mnist", "test", limit=PROFILES["fast"].test_examples, binarize="stochastic"
    )
    terms = vae.negative_elbo(run.model, x_test)
    assert run.record["nll"] == pytest.approx(terms["negative_elbo"], rel=0.05)
    assert vae.config_for("vae", "cpu").binarization == "threshold"  # notebook 02's data


def test_cli_trains_and_samples_a_vae(tmp_path):
    from tutorial_lib import cli

    run = tmp_path / "run"
    argv = ["train", "vae", "--dataset", "mnist", "--profile", "fast", "--out", str(run)]
    assert cli.main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["nll"] > 0 and metrics["likelihood"] == "bound"
    assert metrics["nll_unit"] == "nats per image" and (run / "samples.png").exists()
    out = tmp_path / "samples.npy"
    assert cli.main(["sample", "vae", "--run", str(run), "--num", "6", "--out", str(out)]) == 0
    images = np.load(out)
    assert images.shape == (6, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0
