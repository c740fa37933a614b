"""PixelCNN on tiny shapes: the masks make every logit depend only on earlier pixels
(checked by gradients), the likelihood is a sum over pixels, sampling draws each pixel
from the logit the full pass gives it, and the family trains through the life cycle."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tutorial_lib import checkpoints, pixelcnn, runs, training
from tutorial_lib.profiles import PROFILES

TINY = dataclasses.replace(
    pixelcnn.CONFIGS["pixelcnn"]["fast"], filters=4, first_kernel=3, layers=2, head_units=4
)


@pytest.fixture(scope="module")
def model():
    training.set_seed(0)
    model = pixelcnn.build_model(TINY)
    rng = np.random.default_rng(1)  # biases and weights away from zero: no dead ReLUs
    model.set_weights([w + 0.3 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model


def _binary(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) < 0.4).astype(np.float32)


def test_the_masks_hide_the_centre_only_in_the_first_layer():
    np.testing.assert_array_equal(pixelcnn.causal_mask(3, "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(pixelcnn.causal_mask(3, "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    assert pixelcnn.causal_mask(7, "A")[3].tolist() == [1, 1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="odd"):
        pixelcnn.causal_mask(4, "A")
    with pytest.raises(ValueError, match="'A' or 'B'"):
        pixelcnn.causal_mask(3, "C")


def test_every_logit_depends_only_on_earlier_pixels(model):
    """The Jacobian of the 36 logits of a 6x6 image with respect to its 36 pixels, in
    raster order, is strictly lower triangular: no logit sees its own pixel or a later one."""
    x = tf.constant(_binary((1, 6, 6, 1)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x)
    jacobian = tape.jacobian(logits, x).numpy().reshape(36, 36)
    assert np.all(np.triu(jacobian) == 0), "a logit depends on its own pixel or a later one"
    assert np.count_nonzero(np.tril(jacobian, -1)) > 100, "the logits use the earlier pixels"
    assert np.all(jacobian[0] == 0), "the first pixel has nothing before it"


def test_a_logit_sees_its_window_only(model):
    """Pixel (3, 3) of a 10x10 image: gradients only within reach rows above and columns
    on either side, and in its own row only to the left."""
    x = tf.constant(_binary((1, 10, 10, 1), seed=2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logit = model(x)[0, 6, 5, 0]
    gradient = tape.gradient(logit, x).numpy()[0, :, :, 0]
    reach = model.reach
    rows, cols = np.nonzero(gradient)
    assert rows.min() >= 6 - reach and rows.max() <= 6
    assert cols.min() >= 5 - reach and cols.max() <= 5 + reach
    assert np.all(gradient[6, 5:] == 0)


def test_the_window_gives_the_full_pass_logit(model):
    x = _binary((3, 28, 28, 1), seed=3)
    full = np.asarray(model(x))
    padded, r = np.asarray(model.pad(x)), model.reach
    for i, j in [(0, 0), (0, 27), (13, 5), (27, 27)]:
        window = padded[:, i : i + r + 1, j : j + 2 * r + 1]
        np.testing.assert_allclose(
            np.asarray(model.network(window))[:, 0, 0, 0], full[:, i, j, 0], atol=1e-5
        )


def test_the_negative_log_likelihood_is_a_sum_over_pixels(model):
    x = _binary((4, 28, 28, 1), seed=4)
    logits = np.asarray(model(x), np.float64)
    p = 1 / (1 + np.exp(-logits))
    per_pixel = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    expected = per_pixel.reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(pixelcnn.negative_log_likelihood(model, x), expected, rtol=1e-4)


def test_sampling_draws_every_pixel_from_its_conditional(model):
    images = pixelcnn.sample(model, 6, seed=5)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.float32
    assert set(np.unique(images)) <= {0.0, 1.0}
    np.testing.assert_array_equal(images, pixelcnn.sample(model, 6, seed=5))
    assert not np.array_equal(images, pixelcnn.sample(model, 6, seed=6))
    # Each pixel is 1 exactly when its uniform draw lies below p(x_i = 1 | x_<i), which the
    # one-pass network gives for the finished image.
    uniforms = np.random.default_rng(5).random((6, 784), np.float32)
    p = pixelcnn.pixel_probabilities(model, images).reshape(6, 784)
    agree = (uniforms < p) == (images.reshape(6, 784) == 1)
    assert agree.mean() > 0.999  # float32 round-off may flip a draw at the boundary


def test_completion_keeps_the_given_rows(model):
    x = _binary((2, 28, 28, 1), seed=7)
    done = pixelcnn.complete(model, x, 10, seed=0)
    np.testing.assert_array_equal(done[:, :10], x[:, :10])
    assert not np.array_equal(done[:, 10:], x[:, 10:])
    with pytest.raises(ValueError, match="rows"):
        pixelcnn.complete(model, x, 29)


def test_the_family_trains_saves_and_loads_through_the_life_cycle(tmp_path):
    traced = dataclasses.replace(PROFILES["fast"], run_eagerly=False)  # as cpu and gpu train
    run = runs.train("pixelcnn", traced, out_dir=tmp_path / "pixelcnn")
    assert not run.model.run_eagerly
    record = run.record
    assert record["likelihood"] == "exact" and record["nll_unit"] == "nats per image"
    assert record["nll"] < 784 * np.log(2)  # better than a coin per pixel
    assert record["bits_per_dim"] == pytest.approx(record["nll"] / (784 * np.log(2)))
    assert record["config"]["binarization"] == "stochastic"
    assert 0.0 <= record["coverage"] <= 1.0 and record["sample_seconds_per_item"] > 0
    history = run.history["loss"]
    assert history[-1] < history[0], "training lowers the negative log-likelihood"
    checkpoints.save_model(run.model, tmp_path / "half.keras")
    loaded = checkpoints.load_model(tmp_path / "half.keras")
    for trained, shipped in zip(run.model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(trained, shipped)  # rounded once trained: nothing lost
    assert loaded.reach == run.model.reach
    np.testing.assert_array_equal(pixelcnn.sample(loaded, 4), pixelcnn.sample(run.model, 4))
