import dataclasses
import json

import keras
import numpy as np
import pytest

from tutorial_lib import device, vae
from tutorial_lib.profiles import PROFILES

TINY = vae.VAEConfig(kind="dense", latent_dim=3, hidden_units=(16, 8), epochs=1, train_examples=64)


# The fast profile's VAE in miniature, for the tests of a run's life cycle (train, score,
# save, sample): what they prove does not depend on the sizes.
TINY_RUN = dataclasses.replace(TINY, batch_size=32)


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
    z_mean, z_log_var = vae.posterior(model, x)
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
    traced = dataclasses.replace(PROFILES["fast"], run_eagerly=False)  # as cpu and gpu train
    history = vae.fit_model(model, x, config=config, profile=traced)
    assert set(history.history) == {"loss", "reconstruction", "kl"} and not model.run_eagerly
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
    model.run_eagerly = True  # one step: not worth tracing (test_training_lowers_... traces)
    model.fit(x, batch_size=4, epochs=1, verbose=0)  # a trained model, optimizer state included
    model.save(tmp_path / "vae.keras")
    loaded = keras.models.load_model(tmp_path / "vae.keras")
    np.testing.assert_allclose(vae.posterior(loaded, x)[0], vae.posterior(model, x)[0], atol=1e-6)
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


def test_a_stochastically_binarised_vae_trains_and_is_scored_on_its_data_model(monkeypatch):
    assert vae.CONFIGS["vae"]["cpu"].binarization == "threshold"  # notebook 02's data
    monkeypatch.setitem(vae.CONFIGS["vae"], "fast", TINY_RUN)
    from tutorial_lib import data, runs

    run = runs.train("vae", "fast", binarization="stochastic")
    assert run.config.binarization == "stochastic"
    x_test, _ = data.load_images(
        "mnist", "test", limit=PROFILES["fast"].test_examples, binarize="stochastic"
    )
    terms = vae.negative_elbo(run.model, x_test)
    assert run.record["nll"] == pytest.approx(terms["negative_elbo"], rel=0.05)


def test_cli_trains_and_samples_a_vae(tmp_path, monkeypatch):
    from tutorial_lib import cli

    monkeypatch.setitem(vae.CONFIGS["vae"], "fast", TINY_RUN)
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


# --------------------------------------------------------------------------
# The mixture prior (vae_mixture_prior)
# --------------------------------------------------------------------------

MIXTURE = vae.MixturePriorConfig(**{**TINY.__dict__, "prior_components": 2, "prior_examples": 32})


def _two_clusters(n=4000, seed=0):
    """Codes from 0.3 N((-3, 0), 0.5^2 I) + 0.7 N((2, 1), diag(1, 0.25))."""
    rng = np.random.default_rng(seed)
    first = rng.random(n) < 0.3
    a = rng.normal([-3.0, 0.0], 0.5, size=(n, 2))
    b = rng.normal([2.0, 1.0], [1.0, 0.5], size=(n, 2))
    return np.where(first[:, None], a, b)


def test_mixture_prior_starts_as_the_standard_normal():
    prior = vae.GaussianMixturePrior(3, 2)
    z = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(prior.log_prob(z), -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=1))


def test_mixture_prior_fit_recovers_two_clusters():
    prior = vae.GaussianMixturePrior(2, 2).fit(_two_clusters(), seed=0)
    weights, means, trils = prior._mixture_parameters()
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(weights[order], [0.3, 0.7], atol=0.03)
    np.testing.assert_allclose(means[order], [[-3.0, 0.0], [2.0, 1.0]], atol=0.1)
    covariances = trils @ np.transpose(trils, (0, 2, 1))
    np.testing.assert_allclose(
        np.diagonal(covariances[order], axis1=1, axis2=2), [[0.25, 0.25], [1.0, 0.25]], atol=0.08
    )


def test_mixture_prior_log_prob_matches_scipy():
    from scipy.stats import multivariate_normal

    prior = vae.GaussianMixturePrior(2, 2).fit(_two_clusters(500), seed=0)
    weights, means, trils = prior._mixture_parameters()
    z = np.random.default_rng(1).normal(size=(7, 2)) * 2
    direct = np.log(
        sum(
            w * multivariate_normal(m, t @ t.T).pdf(z)
            for w, m, t in zip(weights, means, trils, strict=True)
        )
    )
    np.testing.assert_allclose(prior.log_prob(z), direct, rtol=1e-6)
    assert prior.log_prob(z[None]).shape == (1, 7)


def test_mixture_prior_samples_follow_the_mixture_and_the_temperature():
    prior = vae.GaussianMixturePrior(2, 2).fit(_two_clusters(), seed=0)
    z = prior.sample(20_000, seed=0)
    assert z.shape == (20_000, 2) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), [0.3 * -3 + 0.7 * 2, 0.7], atol=0.05)
    np.testing.assert_array_equal(prior.sample(10, seed=4), prior.sample(10, seed=4))
    at_zero = prior.sample(500, seed=0, temperature=0.0)
    _, means, _ = prior._mixture_parameters()
    assert np.min(np.abs(at_zero[:, None, :] - means[None]).sum(-1), axis=1).max() < 1e-5


def test_mixture_prior_refuses_codes_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        vae.GaussianMixturePrior(2, 3).fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="5 components"):
        vae.GaussianMixturePrior(5, 2).fit(np.zeros((3, 2)))


def test_mixture_prior_vae_samples_from_its_fitted_prior_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    model = vae.build_model(MIXTURE, seed=0)
    assert isinstance(model, vae.MixturePriorVAE) and model.prior.components == 2
    model.run_eagerly = True  # one step: not worth tracing
    model.fit(_binary_images(4), batch_size=4, epochs=1, verbose=0)  # optimizer state too
    vae.fit_prior(model, _binary_images(32), seed=0)
    codes = model.prior.sample(6, seed=2)
    np.testing.assert_allclose(vae.sample(model, 6, seed=2), vae.decode(model, codes))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, vae.MixturePriorVAE)
    np.testing.assert_allclose(
        vae.sample(loaded, 6, seed=2), vae.sample(model, 6, seed=2), atol=1e-6
    )


def test_temperature_scales_the_standard_normal_prior():
    model = vae.build_model(TINY, seed=0)
    rng = np.random.default_rng(3)
    z = 0.5 * rng.standard_normal((4, TINY.latent_dim))
    np.testing.assert_allclose(vae.sample(model, 4, seed=3, temperature=0.5), vae.decode(model, z))


def test_monte_carlo_elbo_agrees_with_the_closed_form_for_the_normal_prior():
    model = vae.build_model(TINY, seed=0)
    x = _binary_images(16)
    closed = vae.negative_elbo(model, x)["kl"]  # the KL term is exact (closed form)
    estimate = vae.monte_carlo_elbo(model, x, k=400)
    assert estimate["kl"] == pytest.approx(closed, abs=0.05)
    assert estimate["negative_elbo"] == pytest.approx(
        estimate["reconstruction"] + estimate["kl"], rel=1e-6
    )


def test_mixture_prior_config_and_training_fit_the_prior(monkeypatch):
    from tutorial_lib import runs

    config = vae.CONFIGS["vae_mixture_prior"]["fast"]
    assert isinstance(config, vae.MixturePriorConfig)
    assert (
        dataclasses.asdict(vae.CONFIGS["vae"]["fast"]).items() <= dataclasses.asdict(config).items()
    )
    tiny = vae.MixturePriorConfig(**{**dataclasses.asdict(TINY_RUN), "prior_components": 2})
    monkeypatch.setitem(vae.CONFIGS["vae_mixture_prior"], "fast", tiny)
    run = runs.train("vae_mixture_prior", "fast")
    means = np.asarray(run.model.prior.means)
    assert np.abs(means).sum() > 0, "the prior was fitted"
    assert run.record["likelihood"] == "bound" and np.isfinite(run.record["nll"])
    assert run.record["num_samples"] >= 50
