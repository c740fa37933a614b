import dataclasses
import json

import keras
import numpy as np
import pytest

from tutorial_lib import denoisers, diffusion, families, runs, samplers, vae
from tutorial_lib.profiles import PROFILES

# A U-Net of a few thousand weights and a 20-step chain: every test runs in seconds.
TINY = dataclasses.replace(
    diffusion.CONFIGS["diffusion"]["fast"],
    space="pixel",
    timesteps=20,
    channels=4,
    channel_mults=(1, 2, 2),
    blocks_per_level=1,
    attention_heads=1,
    groups=2,
    batch_size=8,
    epochs=1,
    sample_steps=5,
)
TINY_LATENT = dataclasses.replace(TINY, space="latent", mlp_width=16, mlp_blocks=1)
# Two levels (28, 14) for the models that train: half the layers to trace.
TINY_TRAIN = dataclasses.replace(TINY, space="pixel", channel_mults=(1, 2))


def _images(n=8, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype(np.float32)


def _latent_model(conditional=False, latent_dim=3, seed=0, config=TINY_LATENT):
    decoder = keras.Sequential(
        [keras.Input((latent_dim,)), keras.layers.Dense(784, activation="sigmoid")]
        + [keras.layers.Reshape((28, 28, 1))]
    )
    config = dataclasses.replace(config, conditional=conditional)
    return diffusion.build_model(config, decoder=decoder, seed=seed)


def _conditional(config):
    return dataclasses.replace(config, conditional=True)


# --------------------------------------------------------------------------
# Schedules and the forward process
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", samplers.SCHEDULES)
def test_schedule_quantities_follow_their_definitions(kind):
    s = samplers.make_schedule(kind, 100)
    assert s.timesteps == 100 and s.kind == kind
    assert np.all((s.betas > 0) & (s.betas < 1))
    np.testing.assert_allclose(s.alphas, 1 - s.betas)
    np.testing.assert_allclose(s.alpha_bars, np.cumprod(s.alphas))
    np.testing.assert_allclose(s.alpha_bars_prev[1:], s.alpha_bars[:-1])
    assert s.alpha_bars_prev[0] == 1.0
    assert np.all(np.diff(s.alpha_bars) < 0), "alpha-bar must fall at every step"
    assert s.alpha_bars[-1] < 0.01, "the chain must end in (almost) pure noise"
    assert s.alpha_bars[0] > 0.98, "the first step must add little noise"
    # The posterior q(x_{t-1} | x_t, x_0) is exact at t = 0 and never noisier than beta_t.
    assert s.posterior_variances[0] == 0.0
    assert np.all(s.posterior_variances <= s.betas + 1e-12)
    assert np.all(np.diff(s.snr()) < 0)


def test_linear_schedule_is_ddpms_and_scales_with_the_length():
    s = samplers.make_schedule("linear", 1000)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    short = samplers.make_schedule("linear", 100)
    assert short.betas[0] == pytest.approx(1e-3) and short.betas[-1] == pytest.approx(0.2)


def test_cosine_alpha_bar_has_the_closed_form():
    T, s = 1000, 0.008
    schedule = samplers.make_schedule("cosine", T)
    t = np.arange(1, T + 1)
    f = np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2 / np.cos(s / (1 + s) * np.pi / 2) ** 2
    # The last few betas are capped at 0.999, so compare where no cap applies.
    np.testing.assert_allclose(schedule.alpha_bars[:-5], f[:-5], rtol=1e-9)


def test_cosine_keeps_more_signal_midway_than_linear():
    linear, cosine = (samplers.make_schedule(k, 1000) for k in ("linear", "cosine"))
    assert cosine.alpha_bars[500] > 3 * linear.alpha_bars[500]


def test_bad_schedule_arguments_are_explained():
    with pytest.raises(ValueError, match="choose one of"):
        samplers.make_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="at least 2"):
        samplers.make_schedule("linear", 1)


@pytest.mark.parametrize("kind", samplers.SCHEDULES)
def test_forward_samples_have_the_closed_form_mean_and_variance(kind):
    """x_t ~ N(sqrt(abar_t) x_0, (1 - abar_t) I), checked on 200,000 draws per step."""
    schedule = samplers.make_schedule(kind, 100)
    rng = np.random.default_rng(0)
    n = 200_000
    x0 = np.full((n, 2), [0.8, -0.5], np.float32)
    for t in (0, 30, 70, 99):
        noise = rng.standard_normal(x0.shape).astype(np.float32)
        xt = np.asarray(diffusion.q_sample(schedule, x0, np.full(n, t), noise))
        ab = schedule.alpha_bars[t]
        np.testing.assert_allclose(xt.mean(axis=0), np.sqrt(ab) * x0[0], atol=5 / np.sqrt(n))
        np.testing.assert_allclose(xt.var(axis=0), [1 - ab] * 2, rtol=0.02, atol=1e-6)


def test_q_sample_uses_each_examples_own_step():
    schedule = samplers.make_schedule("linear", 50)
    x0 = np.ones((3, 4), np.float32)
    xt = np.asarray(diffusion.q_sample(schedule, x0, np.array([0, 10, 49]), np.zeros_like(x0)))
    np.testing.assert_allclose(xt[:, 0], np.sqrt(schedule.alpha_bars[[0, 10, 49]]), rtol=1e-6)


def test_predict_x0_inverts_the_forward_process():
    schedule = samplers.make_schedule("cosine", 50)
    rng = np.random.default_rng(1)
    x0, noise = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    xt = np.asarray(diffusion.q_sample(schedule, x0, np.array([17, 17]), noise))
    np.testing.assert_allclose(samplers.predict_x0(schedule, xt, noise, 17), x0, atol=1e-4)


def test_posterior_mean_maps_the_noiseless_path_one_step_back():
    """If x_t = sqrt(abar_t) x_0 exactly, the posterior mean is sqrt(abar_{t-1}) x_0."""
    schedule = samplers.make_schedule("linear", 100)
    x0 = np.array([[0.3, -0.7]])
    for t in (1, 50, 99):
        xt = np.sqrt(schedule.alpha_bars[t]) * x0
        mean, _ = diffusion.q_posterior(schedule, x0, xt, [t])
        np.testing.assert_allclose(mean, np.sqrt(schedule.alpha_bars_prev[t]) * x0, rtol=1e-10)


def test_posterior_matches_a_monte_carlo_regression():
    """Sample x_{t-1} ~ q(. | x_0), then x_t ~ q(. | x_{t-1}): regressing x_{t-1} on x_t
    gives the posterior mean's slope and its residual variance the posterior variance."""
    schedule, t = samplers.make_schedule("cosine", 100), 40
    rng = np.random.default_rng(2)
    n, x0 = 400_000, 0.6
    prev = np.sqrt(schedule.alpha_bars[t - 1]) * x0 + np.sqrt(
        1 - schedule.alpha_bars[t - 1]
    ) * rng.standard_normal(n)
    xt = np.sqrt(schedule.alphas[t]) * prev + np.sqrt(schedule.betas[t]) * rng.standard_normal(n)
    slope, intercept = np.polyfit(xt, prev, 1)
    residual = prev - (slope * xt + intercept)
    assert slope == pytest.approx(schedule.posterior_mean_xt[t], rel=0.01)
    assert intercept == pytest.approx(schedule.posterior_mean_x0[t] * x0, abs=0.01)
    assert residual.var() == pytest.approx(schedule.posterior_variances[t], rel=0.01)
    _, variance = diffusion.q_posterior(schedule, [x0], [0.0], [t])
    assert float(variance[0]) == pytest.approx(schedule.posterior_variances[t])


def test_model_space_round_trip():
    x = _images(2)
    y = diffusion.to_model_space(x)
    assert y.min() >= -1 and y.max() <= 1 and y.dtype == np.float32
    np.testing.assert_allclose(diffusion.to_unit_range(y), x, atol=1e-6)
    assert diffusion.to_unit_range(np.array([-3.0, 3.0])).tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------


def test_time_embedding_is_float32_and_tells_times_apart():
    layer = denoisers.TimeEmbedding(16)
    emb = np.asarray(layer(np.array([0.0, 0.001, 0.999], np.float32)))
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(emb[0], [0.0] * 8 + [1.0] * 8, atol=1e-7)
    assert np.abs(emb[1] - emb[2]).max() > 0.5
    with pytest.raises(ValueError, match="even"):
        denoisers.TimeEmbedding(5)


def test_the_network_sees_the_step_as_a_time_in_the_unit_interval():
    times = np.asarray(samplers.time_of(np.array([0, 499, 999]), 1000))
    np.testing.assert_allclose(times, [0.001, 0.5, 1.0], rtol=1e-6)


@pytest.mark.parametrize("conditional", [False, True])
def test_unet_predicts_noise_of_the_images_shape(conditional):
    net = denoisers.build_network(dataclasses.replace(TINY, conditional=conditional))
    inputs = [_images(3), np.array([0.05, 0.3, 1.0], np.float32)]
    if conditional:
        inputs.append(np.array([0, 9, 10], np.int32))  # 10 is the null class
    assert [i.name for i in net.inputs] == ["x_t", "time", "label"][: len(inputs)]
    eps = np.asarray(net(inputs))
    assert eps.shape == (3, 28, 28, 1) and eps.dtype == np.float32
    assert np.all(eps == 0), "the last convolution starts at zero"
    names = [layer.__class__.__name__ for layer in net.layers]
    assert "MultiHeadAttention" in names and "GroupNormalization" in names
    attention = next(
        layer for layer in net.layers if layer.__class__.__name__ == "MultiHeadAttention"
    )
    assert attention.input[0].shape[1] == 7 * 7, "attention runs at the lowest resolution"


def test_unet_width_follows_the_config():
    small = denoisers.build_network(TINY).count_params()
    wider = denoisers.build_network(dataclasses.replace(TINY, channels=8)).count_params()
    assert wider > 3 * small


def test_profiles_size_the_networks():
    assert set(diffusion.CONFIGS["diffusion"]) == set(PROFILES)
    fast, gpu = diffusion.CONFIGS["diffusion"]["fast"], diffusion.CONFIGS["diffusion"]["gpu"]
    assert fast.channels < gpu.channels and fast.timesteps < gpu.timesteps
    assert gpu.space == "pixel"
    assert diffusion.CONFIGS["diffusion"]["cpu"].sample_steps <= 50


def test_latent_denoiser_shape():
    net = denoisers.build_network(_conditional(TINY_LATENT), 6)
    times = np.linspace(0.1, 1.0, 4).astype(np.float32)
    eps = np.asarray(net([np.ones((4, 6), np.float32), times, np.full(4, 10)]))
    assert eps.shape == (4, 6)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def _fit(model, x, y=None, steps=2):
    """A few steps traced into a graph, as the cpu and gpu profiles train (the fast profile
    takes its steps eagerly)."""
    profile = dataclasses.replace(PROFILES["fast"], steps_per_epoch=steps, run_eagerly=False)
    return denoisers.fit_model(model, x, y, config=TINY_TRAIN, profile=profile, epochs=1)


@pytest.fixture(scope="module")
def trained():
    """A tiny class-conditional latent model after two training steps traced into a graph,
    with its history and the weights it started from (trained once for all the tests that
    need it). Every denoiser trains with the same ``train_step``; the MLP traces in a
    fraction of the U-Net's time (the U-Net's forward pass is traced by ``evaluate`` in
    test_the_loss_is_the_mse_between_noise_and_prediction)."""
    model = _latent_model(conditional=True)
    before = [w.copy() for w in model.network.get_weights()]
    codes = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    history = _fit(model, codes, np.arange(16) % 10)
    return model, history, before


@pytest.fixture(scope="module")
def random_model():
    """An untrained unconditional latent model with random (non-zero) output weights, so
    that its noise predictions depend on x_t and t: enough to test the samplers, which
    never look inside the network (an MLP on 3 numbers runs a step in a fraction of a
    U-Net's time; test_sample_images_and_the_trajectory samples a U-Net model)."""
    return _with_random_weights(_latent_model())


def _with_random_weights(model):
    """``model`` with random (non-zero) weights, the same in its network and its average."""
    rng = np.random.default_rng(0)
    weights = [w + 0.05 * rng.standard_normal(w.shape) for w in model.network.get_weights()]
    model.network.set_weights(weights)
    model.ema_network.set_weights(weights)
    return model


def test_the_unet_takes_the_same_step_traced_into_a_graph():
    """The pixel U-Net (the gpu profile's network, and the guided model's of lesson 05b)
    through the same training step, traced: its backward pass through group norms and
    attention builds as a graph and moves its output layer (one level: the fewest layers)."""
    model = diffusion.build_model(dataclasses.replace(TINY_TRAIN, channel_mults=(1,)), seed=0)
    before = model.network.get_weights()[-2].copy()
    history = _fit(model, _images(8), steps=1)
    assert np.isfinite(history.history["loss"][-1])
    assert not np.allclose(before, model.network.get_weights()[-2])


def test_one_train_step_updates_the_weights_and_their_average(trained):
    model, history, before = trained
    loss = history.history["loss"][-1]
    assert np.isfinite(loss) and 0.1 < loss < 10, "an untrained model's loss is about 1"
    after, averaged = model.network.get_weights(), model.ema_network.get_weights()
    assert not np.allclose(before[-2], after[-2]), "the output layer must move"
    # After two steps (decays 1/10 and 2/11) the EMA lies strictly between start and now.
    assert not np.allclose(averaged[-2], after[-2]) and not np.allclose(averaged[-2], before[-2])
    distance_start = np.abs(averaged[-2] - before[-2]).sum()
    distance_now = np.abs(averaged[-2] - after[-2]).sum()
    assert distance_start > distance_now, "with the warm-up the EMA follows the first steps closely"


def test_the_loss_is_the_mse_between_noise_and_prediction():
    model = diffusion.build_model(TINY_TRAIN, seed=0)
    x0 = diffusion.to_model_space(_images(4))
    inputs, noise = model.noisy_batch(x0)
    xt, time = (np.asarray(v) for v in inputs)
    assert xt.shape == x0.shape and time.shape == (4,) and time.min() > 0 and time.max() <= 1
    t = np.round(time * TINY.timesteps - 1).astype(int)  # time = (t + 1) / T
    expected = np.asarray(diffusion.q_sample(model.schedule, x0, t, noise))
    np.testing.assert_allclose(xt, expected, rtol=1e-5, atol=1e-6)
    # The untrained network predicts zero noise (its last layer starts at 0): loss E[eps^2] ~ 1.
    result = model.evaluate(x0, verbose=0, batch_size=4)
    assert 0.8 < result < 1.2


def test_labels_are_dropped_to_the_null_class_at_the_set_rate():
    config = dataclasses.replace(TINY_LATENT, label_dropout=0.3)
    model = _latent_model(conditional=True, config=config)
    labels = np.full(4000, 3)
    inputs, _ = model.noisy_batch(np.zeros((4000, 3), np.float32), labels)
    dropped = np.asarray(inputs[2]) == denoisers.NULL_LABEL
    assert 0.25 < dropped.mean() < 0.35
    assert set(np.asarray(inputs[2])[~dropped].tolist()) == {3}


def test_conditional_training_needs_labels():
    model = _latent_model(conditional=True)
    with pytest.raises(ValueError, match="needs the labels"):
        _fit(model, np.zeros((8, 3), np.float32))


def test_data_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="to_model_space"):
        _fit(_latent_model(), np.zeros((8, 16), np.float32))


def test_training_data_is_in_the_models_space():
    inputs, decoder = denoisers.training_data(TINY_TRAIN, _images(4))
    assert decoder is None and inputs.min() >= -1 and inputs.shape == (4, 28, 28, 1)
    with pytest.raises(ValueError, match="trained autoencoder"):
        denoisers.training_data(TINY_LATENT, _images(4))
    autoencoder = vae.build_model(vae.VAEConfig(kind="dense", latent_dim=3, hidden_units=(8, 8)))
    codes, decoder = denoisers.training_data(TINY_LATENT, _images(20), autoencoder)
    model = diffusion.build_model(TINY_LATENT, decoder=decoder)
    assert model.decoder is decoder and codes.shape == (20, 3)
    assert model.data_shape == (3,)


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def test_sampling_steps_are_an_even_descending_subsequence():
    steps = samplers.sampling_steps(1000, 10)
    assert steps[0] == 999 and steps[-1] == 0 and len(steps) == 10
    assert np.all(np.diff(steps) < 0)
    assert list(samplers.sampling_steps(5, 5)) == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="steps must lie in"):
        samplers.sampling_steps(20, 21)


def test_ddim_with_eta_zero_is_deterministic(random_model):
    schedule = samplers.make_schedule("cosine", 20)
    rng = np.random.default_rng(0)
    xt, eps = rng.standard_normal((2, 4, 3))
    first = samplers.ddim_step(
        schedule, xt, eps, 15, 10, eta=0.0, noise=rng.standard_normal((4, 3))
    )
    again = samplers.ddim_step(
        schedule, xt, eps, 15, 10, eta=0.0, noise=rng.standard_normal((4, 3))
    )
    np.testing.assert_array_equal(first, again)
    a = diffusion.sample_codes(random_model, 3, steps=5, eta=0.0, seed=4)
    b = diffusion.sample_codes(random_model, 3, steps=5, eta=0.0, seed=4)
    np.testing.assert_array_equal(a, b)
    noisy = diffusion.sample_codes(random_model, 3, steps=5, eta=1.0, seed=4)
    assert not np.allclose(a, noisy), "eta = 1 adds fresh noise at every step"


def test_ddim_with_eta_one_and_every_step_is_ddpm(random_model):
    ddpm = diffusion.sample_codes(random_model, 2, sampler="ddpm", seed=3)
    ddim = diffusion.sample_codes(
        random_model, 2, sampler="ddim", steps=TINY.timesteps, eta=1.0, seed=3
    )
    assert np.abs(ddpm).max() > 0.1
    np.testing.assert_allclose(ddim, ddpm, atol=1e-4)


def test_ddim_step_to_clean_data_returns_the_x0_estimate():
    schedule = samplers.make_schedule("linear", 20)
    rng = np.random.default_rng(5)
    xt, eps = rng.standard_normal((2, 3))
    np.testing.assert_allclose(
        samplers.ddim_step(schedule, xt, eps, 7, -1),
        samplers.predict_x0(schedule, xt, eps, 7),
        rtol=1e-5,
    )


def test_ddpm_refuses_fewer_steps_and_bad_names(random_model):
    with pytest.raises(ValueError, match="sampler='ddim'"):
        diffusion.sample_codes(random_model, 1, sampler="ddpm", steps=5)
    with pytest.raises(ValueError, match="choose one of"):
        diffusion.sample_codes(random_model, 1, sampler="euler")


def test_guidance_formula():
    cond, uncond = np.array([1.0, 2.0]), np.array([0.5, 0.0])
    np.testing.assert_allclose(denoisers.guided(cond, uncond, 0.0), cond)
    np.testing.assert_allclose(denoisers.guided(cond, uncond, 2.0), [2.0, 6.0])


def test_a_sampler_is_a_step_object_driven_by_one_loop(random_model):
    """The loop calls `step` once per (t, t_next) pair; DDIM's pairs walk its subsequence."""
    sampler = samplers.DDIMSampler(random_model.schedule, steps=4)
    assert [t for t, _ in sampler.times()] == list(sampler.path)
    assert sampler.times()[-1][1] == -1
    seen = []

    def predict(x, t):
        seen.append(t)
        return np.zeros_like(x)

    start = np.ones((2, 3), np.float32)
    out, kept = sampler.run(predict, start, np.random.default_rng(0), keep=[19])
    assert seen == list(sampler.path) and kept[19] is start
    # With zero predicted noise DDIM keeps x_0 = x_t / sqrt(abar_t) from the first step on.
    np.testing.assert_allclose(
        out, start / np.sqrt(random_model.schedule.alpha_bars[19]), rtol=1e-5
    )
    ddpm = samplers.DDPMSampler(random_model.schedule)
    assert len(ddpm.times()) == TINY.timesteps and ddpm.times()[0] == (19, 18)


def test_guidance_zero_equals_the_conditional_model(trained):
    model = trained[0]
    labels = np.array([3, 7, 7])
    plain = diffusion.sample_codes(model, 3, steps=4, labels=labels, seed=2)
    guided = diffusion.sample_codes(model, 3, steps=4, labels=labels, guidance=0.0, seed=2)
    np.testing.assert_allclose(guided, plain, atol=1e-5)
    strong = diffusion.sample_codes(model, 3, steps=4, labels=labels, guidance=50.0, seed=2)
    assert not np.allclose(strong, plain, atol=1e-4)


def test_labels_are_checked(random_model, trained):
    with pytest.raises(ValueError, match="unconditional"):
        diffusion.sample_codes(random_model, 2, steps=2, labels=1)
    with pytest.raises(ValueError, match="digits 0..9"):
        diffusion.sample_codes(trained[0], 2, steps=2, labels=10)


def test_sample_images_and_the_trajectory():
    model = _with_random_weights(diffusion.build_model(TINY_TRAIN, seed=0))  # pixels
    images = diffusion.sample(model, 2, steps=5)
    assert images.shape == (2, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    samples, path = diffusion.sample_codes(
        model, 2, steps=5, trajectory_at=np.array([19, 5]), seed=0
    )
    assert set(path) == {19, 5} and path[19].shape == (2, 28, 28, 1)
    start = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(path[19], start)


def test_latent_model_decodes_its_codes():
    model = _latent_model(conditional=True)
    assert model.decoder is not None and model.clip_range is None
    images = diffusion.sample(model, 4, steps=3, labels=2, guidance=1.0)
    assert images.shape == (4, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    codes = np.zeros((1, 3), np.float32)
    np.testing.assert_allclose(
        model.to_images(codes), model.decoder.predict(codes, verbose=0), rtol=1e-6
    )


def test_latent_codec_standardises_vae_codes_and_decodes_them_back():
    model = vae.build_model(vae.VAEConfig(kind="dense", latent_dim=3, hidden_units=(8, 8)), seed=0)
    images = (_images(50) > 0.5).astype(np.float32)
    codes, decoder = vae.latent_codec(model, images)
    assert codes.shape == (50, 3) and decoder.output_shape == (None, 28, 28, 1)
    np.testing.assert_allclose(codes.mean(axis=0), 0, atol=1e-5)
    assert codes.std() == pytest.approx(1.0, rel=1e-4)
    # Decoding a standardised code gives the VAE's decoding of the original code.
    z_mean, _ = vae.posterior(model, images[:4])
    np.testing.assert_allclose(
        decoder.predict(codes[:4], verbose=0), vae.decode(model, z_mean), atol=1e-5
    )


def test_latent_model_needs_a_decoder():
    with pytest.raises(ValueError, match="decoder"):
        diffusion.build_model(TINY_LATENT)


@pytest.mark.parametrize("kind", ["pixel", "latent, trained"])
def test_save_and_load_round_trip(tmp_path, kind, trained):
    """A U-Net model (random weights): its networks give the same noise predictions; a
    latent one trained (its optimizer state too): it draws the same samples."""
    if kind == "pixel":
        model = _with_random_weights(diffusion.build_model(_conditional(TINY_TRAIN), seed=0))
    else:
        model = trained[0]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.conditional
    assert loaded.timesteps == model.timesteps and loaded.clip_range == model.clip_range
    for a, b in zip(model.ema_network.get_weights(), loaded.ema_network.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    if kind == "pixel":  # one eager pass each: tracing two U-Nets to sample costs seconds
        inputs = [_images(2) * 2 - 1, np.array([0.3, 0.9], np.float32), np.array([1, 10])]
        for part in ("network", "ema_network"):
            np.testing.assert_allclose(
                getattr(loaded, part)(inputs), getattr(model, part)(inputs), atol=1e-6
            )
        return
    kwargs = dict(steps=3, labels=[1, 2], guidance=1.0, seed=0)
    np.testing.assert_allclose(
        diffusion.sample(loaded, 2, **kwargs), diffusion.sample(model, 2, **kwargs), atol=1e-5
    )


# The fast profile's latent run in miniature: a dense VAE of 3 codes, a 20-step chain.
TINY_RUN = dataclasses.replace(
    diffusion.CONFIGS["diffusion"]["fast"],
    timesteps=20,
    mlp_width=16,
    batch_size=16,
    epochs=1,
    train_examples=64,
    sample_steps=7,
    autoencoder=vae.VAEConfig(
        kind="dense", latent_dim=3, hidden_units=(16, 8), epochs=1, train_examples=64
    ),
)


def test_train_load_and_sample_a_run(tmp_path, monkeypatch):
    """The life cycle of a latent run (train its VAE, then the denoiser; evaluate, save,
    load, sample), on tiny sizes: what it proves does not depend on them."""
    monkeypatch.setitem(diffusion.CONFIGS["diffusion"], "fast", TINY_RUN)
    out = tmp_path / "run"
    run = runs.train("diffusion", "fast", out_dir=out, conditional=True)
    assert {"model.keras", "metrics.json", "samples.png"} <= {p.name for p in out.iterdir()}
    assert (out / "autoencoder" / "model.keras").is_file(), "a latent run keeps its VAE"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["conditional"] and saved["config"]["space"] == "latent"
    assert saved["train_images_per_second"] > 0 and saved["config"]["sample_steps"] == 7
    assert saved["config"]["autoencoder"]["latent_dim"] == 3 and run.model.data_shape == (3,)
    assert 0 <= saved["confidence"] <= 1 and np.isfinite(saved["frechet_distance"])
    loaded = runs.load(out)
    assert set(loaded.stages) == {"autoencoder"} and loaded.config == run.config
    images = loaded.sample(3, steps=2, labels=4, guidance=2.0)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.float32
    assert loaded.sample(2, sampler="ddpm").shape[0] == 2
    with pytest.raises(ValueError, match="sampler='ddim'"):
        loaded.sample(1, sampler="ddpm", steps=3)


# --------------------------------------------------------------------------
# What helps the latent model: x0 clipped to the codes' range, v-prediction
# --------------------------------------------------------------------------

TINY_V = dataclasses.replace(TINY_LATENT, prediction="v")


def test_code_range_is_the_largest_absolute_code():
    codes = np.array([[0.5, -3.25], [2.0, 1.0]], np.float32)
    assert diffusion.code_range(codes) == 3.25


def test_the_clipped_sampler_keeps_codes_in_range():
    model = _latent_model(config=dataclasses.replace(TINY_LATENT, timesteps=1000, sample_steps=5))
    for layer in model.ema_network.layers[-1:]:  # an output that is far off: 0.5 everywhere
        layer.set_weights([w * 0 + 0.5 for w in layer.get_weights()])
    raw = diffusion.sample_codes(model, 50, seed=0)
    model.clip_range = 2.0
    clipped = diffusion.sample_codes(model, 50, seed=0)
    assert np.abs(raw).max() > 100, "without clipping one bad step at t = T - 1 blows up"
    assert np.abs(clipped).max() <= 2.0 + 1e-5


def test_v_prediction_targets_the_velocity():
    model = _latent_model(config=TINY_V)
    assert isinstance(model, diffusion.VPredictionDiffusion)
    x0 = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    inputs, target = model.training_pair(x0)
    xt, time = np.asarray(inputs[0]), np.asarray(inputs[1])
    t = np.round(time * TINY_V.timesteps - 1).astype(int)
    alpha_bar = model.schedule.alpha_bars[t][:, None]
    noise = (xt - np.sqrt(alpha_bar) * x0) / np.sqrt(1 - alpha_bar)
    expected = np.sqrt(alpha_bar) * noise - np.sqrt(1 - alpha_bar) * x0
    np.testing.assert_allclose(np.asarray(target), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["ddpm", "ddim"])
def test_the_samplers_turn_a_velocity_into_the_noise(name):
    model = _latent_model(config=TINY_V)
    sampler = samplers.make(model, name, TINY_V.timesteps)
    assert model.prediction == sampler.prediction == "v"
    rng = np.random.default_rng(1)
    x0, noise = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    for t in (0, 7, TINY_V.timesteps - 1):
        a = model.schedule.alpha_bars[t]
        xt = np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
        velocity = np.sqrt(a) * noise - np.sqrt(1 - a) * x0
        np.testing.assert_allclose(sampler.epsilon(xt, velocity, t), noise, rtol=1e-5, atol=1e-5)
    plain = samplers.make(_latent_model(), name, TINY_V.timesteps)
    np.testing.assert_array_equal(plain.epsilon(x0, noise, 3), noise)


def test_v_prediction_refuses_an_unknown_name_and_survives_saving(tmp_path):
    with pytest.raises(ValueError, match="Unknown prediction"):
        _latent_model(config=dataclasses.replace(TINY_LATENT, prediction="x0"))
    pixel = diffusion.build_model(dataclasses.replace(TINY_TRAIN, prediction="v"))
    assert isinstance(pixel, diffusion.VPredictionDiffusion) and pixel.clip_range == 1.0
    model = _latent_model(config=TINY_V)
    model.save(tmp_path / "v.keras")
    loaded = keras.models.load_model(tmp_path / "v.keras")
    assert type(loaded) is diffusion.VPredictionDiffusion
    np.testing.assert_allclose(
        diffusion.sample(loaded, 3, steps=3, seed=1), diffusion.sample(model, 3, steps=3, seed=1)
    )


def test_the_recommended_recipe_predicts_the_velocity_with_a_longer_trained_vae():
    for profile in PROFILES:
        config = diffusion.CONFIGS["latent_diffusion_v"][profile]
        assert config.prediction == "v" and config.space == "latent"
        assert config.sample_steps <= 50
    cpu = families.get("latent_diffusion_v").config("cpu")
    textbook = families.get("diffusion").config("cpu")
    assert cpu.autoencoder.epochs > textbook.autoencoder.epochs
    with pytest.raises(TypeError, match="no option flow_steps"):
        families.get("diffusion").config("cpu", flow_steps=3)
