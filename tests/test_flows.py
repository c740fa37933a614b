"""RealNVP: every layer inverts and reports its true log-determinant; the density is a density."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tutorial_lib import data, flows, metrics, training
from tutorial_lib.lessons import plane_flows

TINY = dataclasses.replace(
    flows.CONFIGS["realnvp"]["fast"],
    checkerboard_couplings=2,
    channel_couplings=2,
    final_couplings=2,
    hidden_channels=4,
    blocks=1,
    batch_size=16,
)


def _perturb(layer, scale=0.3, seed=0):
    """Random weights everywhere (a fresh coupling is the identity: its last layer is zero)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([w + scale * rng.standard_normal(w.shape) for w in layer.get_weights()])


def _log_abs_det_jacobian(function, x):
    """log |det J| of ``function`` at one input ``x`` (any shape), by brute force."""
    x = tf.constant(x[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
    jacobian = tape.jacobian(y, x)
    n = int(np.prod(x.shape))
    return float(np.linalg.slogdet(np.reshape(jacobian.numpy(), (n, n)).astype(np.float64))[1])


def _images(n=8, seed=0):
    """Pixels like MNIST's: multiples of 1/255, many of them 0."""
    levels = np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1))
    levels[:, :, :6] = 0
    return (levels / 255.0).astype(np.float32)


@pytest.mark.parametrize(
    "mask, shape",
    [("checkerboard", (4, 4, 2)), ("channel", (2, 2, 4)), ("coordinate", (6,))],
)
@pytest.mark.parametrize("parity", [0, 1])
def test_a_coupling_inverts_and_its_log_det_is_the_jacobians(mask, shape, parity):
    layer = flows.AffineCoupling(mask, parity, hidden=8, blocks=1)
    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    layer(x)
    _perturb(layer)
    y, log_det = layer(x)
    assert not np.allclose(y, x), "the perturbed coupling does something"
    np.testing.assert_allclose(layer.inverse(y), x, atol=1e-4)
    brute = _log_abs_det_jacobian(lambda v: layer(v)[0], x[0])
    assert float(log_det[0]) == pytest.approx(brute, abs=1e-3)
    # Half the numbers pass through unchanged.
    assert np.sum(np.isclose(np.asarray(y), x)) >= x.size // 2


def test_actnorm_starts_at_zero_mean_unit_variance_and_inverts():
    x = 3.0 + 2.0 * np.random.default_rng(2).standard_normal((64, 4, 4, 3)).astype(np.float32)
    layer = flows.ActNorm()
    layer(x)
    layer.initialize(x)
    y, log_det = layer(x)
    np.testing.assert_allclose(np.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.std(y, axis=(0, 1, 2)), 1.0, atol=1e-3)
    np.testing.assert_allclose(layer.inverse(y), x, atol=1e-4)
    brute = _log_abs_det_jacobian(lambda v: layer(v)[0], x[0])
    assert float(log_det[0]) == pytest.approx(brute, abs=1e-3)


def test_squeeze_moves_2x2_blocks_into_channels_and_back():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    squeezed = np.asarray(flows.squeeze(x))
    assert squeezed.shape == (2, 2, 2, 12)
    assert set(squeezed[0, 0, 0].tolist()) == set(x[0, :2, :2].reshape(-1).tolist())
    np.testing.assert_array_equal(flows.unsqueeze(squeezed), x)


def test_dequantization_and_the_logit_transform():
    x = _images(2)
    noise = np.random.default_rng(3).random(x.shape, dtype=np.float32)
    y = np.asarray(flows.dequantize(x, noise))
    np.testing.assert_allclose(np.floor(y * 256), np.round(x * 255), atol=1e-4)
    assert y.min() >= 0.0 and y.max() < 1.0
    s, log_det = flows.logit_transform(y, 0.05)
    np.testing.assert_allclose(flows.inverse_logit_transform(s, 0.05), y, atol=1e-5)
    patch = y[0, :2, :2]  # brute force on a few numbers
    brute = _log_abs_det_jacobian(lambda v: flows.logit_transform(v, 0.05)[0], patch)
    assert float(flows.logit_transform(patch[None], 0.05)[1][0]) == pytest.approx(brute, rel=1e-4)


@pytest.fixture(scope="module")
def tiny_flow():
    training.set_seed(0)
    model = flows.build_model(TINY)
    model.initialize(_images(16))
    _perturb(model, scale=0.05)
    return model


def test_the_whole_flow_inverts(tiny_flow):
    x = _images(4, seed=5)
    noise = np.random.default_rng(0).random(x.shape, dtype=np.float32)
    s, _ = flows.logit_transform(flows.dequantize(x, noise), tiny_flow.alpha)
    zs, _ = tiny_flow.forward(s)
    assert [tuple(z.shape[1:]) for z in zs] == tiny_flow.z_shapes()
    assert sum(int(np.prod(z.shape[1:])) for z in zs) == 784, "z has as many numbers as x"
    np.testing.assert_allclose(tiny_flow.inverse(zs), s, atol=1e-4)


def test_the_whole_flows_log_det_is_the_jacobians(tiny_flow):
    s = np.random.default_rng(6).standard_normal((1, 28, 28, 1)).astype(np.float32)

    def flat_forward(v):
        zs, _ = tiny_flow.forward(v)
        return tf.concat([tf.reshape(z, (1, -1)) for z in zs], axis=1)

    _, log_det = tiny_flow.forward(s)
    assert float(log_det[0]) == pytest.approx(_log_abs_det_jacobian(flat_forward, s[0]), abs=0.05)


def test_bits_per_dimension_converts_nats():
    assert metrics.bits_per_dimension(784 * math.log(2.0), 784) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 1"):
        metrics.bits_per_dimension(1.0, 0)


def test_a_few_steps_lower_the_bits_per_dimension_and_save_and_load(tmp_path):
    from tutorial_lib.profiles import PROFILES

    training.set_seed(0)
    x, _ = data.load_images("mnist", "train", limit=256)
    # One coupling of each kind (as the fast profile's flow): half the layers to trace.
    config = dataclasses.replace(
        TINY,
        checkerboard_couplings=1,
        channel_couplings=1,
        final_couplings=1,
        epochs=3,
        learning_rate=3e-3,
    )
    model = flows.build_model(config)
    model.initialize(x)
    before = flows.bits_per_dimension(model, x[:64])
    traced = dataclasses.replace(PROFILES["fast"], run_eagerly=False)  # as cpu and gpu train
    history = flows.fit_model(model, x, config=config, profile=traced)
    assert not model.run_eagerly
    after = flows.bits_per_dimension(model, x[:64])
    assert after < before and len(history.history["loss"]) == 3
    model.save(tmp_path / "flow.keras")
    loaded = keras.models.load_model(tmp_path / "flow.keras")
    assert flows.bits_per_dimension(loaded, x[:64]) == pytest.approx(after, rel=1e-5)
    images = flows.sample(loaded, 5, seed=1)
    assert images.shape == (5, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, flows.sample(model, 5, seed=1))


def test_temperature_scales_the_latent_draw(tiny_flow):
    hot = flows.sample(tiny_flow, 64, seed=0, temperature=1.0)
    cold = flows.sample(tiny_flow, 64, seed=0, temperature=0.0)
    assert np.std(cold, axis=0).max() < 1e-6, "T = 0: every sample is the mode"
    assert np.std(hot, axis=0).mean() > 0.01


def test_the_planes_density_integrates_to_one():
    training.set_seed(0)
    flow = plane_flows.build_2d_flow(couplings=4, hidden=16)
    _perturb(flow, scale=0.2)
    xs, ys, density = plane_flows.density_grid(flow, limits=(-9, 9, -9, 9), n=500)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert float(density.sum() * cell) == pytest.approx(1.0, abs=0.02)
    points = plane_flows.sample_2d(flow, 3, seed=0)
    z, _ = flow.flow(points)
    np.testing.assert_allclose(z, np.random.default_rng(0).standard_normal((3, 2)), atol=1e-4)
