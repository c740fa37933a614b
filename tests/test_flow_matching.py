"""Flow matching: the straight path, its velocity target, the ODE solvers, the model."""

import dataclasses

import keras
import numpy as np
import pytest

from tutorial_lib import denoisers, flow_matching, samplers, training
from tutorial_lib.profiles import PROFILES

TINY = dataclasses.replace(
    flow_matching.CONFIGS["flow_matching"]["fast"],
    mlp_width=16,
    mlp_blocks=1,
    batch_size=8,
    epochs=1,
)


def _decoder(latent_dim=3):
    return keras.Sequential(
        [keras.Input((latent_dim,)), keras.layers.Dense(784, activation="sigmoid")]
        + [keras.layers.Reshape((28, 28, 1))]
    )


def _model(conditional=False, seed=0):
    config = dataclasses.replace(TINY, conditional=conditional)
    return flow_matching.build_model(config, decoder=_decoder(), seed=seed)


def test_the_straight_path_goes_from_noise_to_data():
    noise, data = np.zeros((3, 2)), np.ones((3, 2))
    path = np.asarray(flow_matching.straight_path(noise, data, np.array([0.0, 0.25, 1.0])))
    np.testing.assert_allclose(path, [[0, 0], [0.25, 0.25], [1, 1]])


def test_the_training_pair_is_a_point_on_the_line_and_its_velocity():
    model = _model()
    x1 = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    (x_t, t), target = model.training_pair(x1)
    x_t, t, target = np.asarray(x_t), np.asarray(t), np.asarray(target)
    assert t.shape == (64,) and t.min() >= 0.0 and t.max() <= 1.0 and t.std() > 0.1
    noise = x1 - target  # the velocity is data minus noise
    np.testing.assert_allclose(x_t, (1 - t[:, None]) * noise + t[:, None] * x1, atol=1e-5)
    assert 0.7 < noise.std() < 1.3, "the noise is standard normal"


@pytest.mark.parametrize("kind", [samplers.EulerSampler, samplers.HeunSampler])
def test_a_constant_velocity_is_integrated_exactly(kind):
    sampler = kind(5)
    start = np.zeros((2, 3), np.float32)
    end, _ = sampler.run(lambda x, t: np.full_like(x, 2.0), start, None)
    np.testing.assert_allclose(end, 2.0, atol=1e-6)
    assert sampler.times()[0][0] == 0.0 and sampler.times()[-1][1] == 1.0


def test_heun_is_second_order_and_euler_first():
    """dx/dt = x from x(0) = 1: x(1) = e. Halving h halves Euler's error, quarters Heun's."""

    def error(kind, steps):
        end, _ = kind(steps).run(lambda x, t: x, np.ones((1, 1)), None)
        return abs(float(end[0, 0]) - np.e)

    euler = [error(samplers.EulerSampler, n) for n in (10, 20)]
    heun = [error(samplers.HeunSampler, n) for n in (10, 20)]
    assert euler[0] / euler[1] == pytest.approx(2.0, rel=0.1)
    assert heun[0] / heun[1] == pytest.approx(4.0, rel=0.1)
    assert heun[1] < euler[1] / 10


def test_the_exact_velocity_of_a_single_point_brings_euler_to_it():
    """For data that is one point mu, the flow's velocity is (mu - x) / (1 - t)."""
    mu = np.array([[1.5, -2.0]], np.float32)
    sampler = samplers.EulerSampler(4)
    start = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    end, _ = sampler.run(lambda x, t: (mu - x) / (1.0 - t), start, None)
    np.testing.assert_allclose(end, np.repeat(mu, 5, axis=0), atol=1e-5)


def test_training_moves_the_weights_and_their_average():
    training.set_seed(0)
    model = _model(conditional=True)
    before = [w.copy() for w in model.network.get_weights()]
    x = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    profile = dataclasses.replace(PROFILES["fast"], steps_per_epoch=3)
    history = denoisers.fit_model(model, x, np.arange(32) % 10, config=TINY, profile=profile)
    assert np.isfinite(history.history["loss"][-1])
    assert not np.allclose(before[-2], model.network.get_weights()[-2])
    assert not np.allclose(model.ema_network.get_weights()[-2], before[-2])


def test_sampling_gives_images_and_guidance_follows_the_label():
    model = _model(conditional=True)
    rng = np.random.default_rng(2)
    model.network.set_weights(
        [w + 0.1 * rng.standard_normal(w.shape) for w in model.network.get_weights()]
    )
    model.ema_network.set_weights(model.network.get_weights())
    images = flow_matching.sample(model, 4, seed=0, steps=3)
    assert images.shape == (4, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    plain = flow_matching.sample_codes(model, 3, labels=[1, 2, 3], steps=3, seed=0)
    zero = flow_matching.sample_codes(model, 3, labels=[1, 2, 3], guidance=0.0, steps=3, seed=0)
    np.testing.assert_allclose(zero, plain, atol=1e-5)
    strong = flow_matching.sample_codes(model, 3, labels=[1, 2, 3], guidance=20.0, steps=3, seed=0)
    assert not np.allclose(strong, plain, atol=1e-4)
    with pytest.raises(ValueError, match="conditional"):
        flow_matching.sample(_model(), 2, labels=3)
    with pytest.raises(ValueError, match="choose one of"):
        flow_matching.sample(model, 2, sampler="rk4")


def test_save_and_load_round_trip(tmp_path):
    model = _model(conditional=True)
    model.save(tmp_path / "fm.keras")
    loaded = keras.models.load_model(tmp_path / "fm.keras")
    assert type(loaded) is flow_matching.FlowMatching and loaded.sampler == model.sampler
    kwargs = dict(steps=2, labels=[4, 5], seed=1)
    np.testing.assert_allclose(
        flow_matching.sample(loaded, 2, **kwargs),
        flow_matching.sample(model, 2, **kwargs),
        atol=1e-5,
    )
