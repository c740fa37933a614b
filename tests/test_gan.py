import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tutorial_lib import cli, gan, metrics
from tutorial_lib.profiles import PROFILES
from tutorial_lib.training import set_seed

TINY = gan.GANConfig(
    latent_dim=8,
    generator_filters=(4, 8),
    discriminator_filters=(4, 8),
    label_dim=3,
    n_critic=2,
    epochs=2,
    batch_size=16,
    steps_per_execution=2,  # as the fast profile's GANs: within its 4 steps per epoch
)


def _config(kind):
    return dataclasses.replace(TINY, kind=kind)


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 28, 28, 1)).astype("float32")


def _one_traced_step(model, config) -> dict:
    """One training step through ``fit``, traced into a graph as the cpu and gpu profiles
    train (the fast profile takes its steps eagerly); the step's logs."""
    n = config.batch_size * getattr(model, "n_critic", 1)
    x, y = _images(n), np.arange(n) % 10
    traced = dataclasses.replace(PROFILES["fast"], run_eagerly=False)
    history = gan.fit_model(
        model,
        x,
        y if model.conditional else None,
        config=config,
        profile=traced,
        epochs=1,
        steps_per_epoch=1,
    )
    assert not model.run_eagerly
    return {key: values[-1] for key, values in history.history.items()}


@pytest.mark.parametrize("conditional", [False, True])
def test_network_shapes_and_output_range(conditional):
    generator = gan.build_generator(TINY, conditional)
    discriminator = gan.build_discriminator(TINY, conditional)
    z = gan.latent_vectors(5, TINY.latent_dim)
    labels = np.arange(5).reshape(-1, 1)
    images = np.asarray(generator([z, labels] if conditional else z))
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0  # tanh
    logits = np.asarray(discriminator([images, labels] if conditional else images))
    assert logits.shape == (5, 1) and logits.dtype == np.float32


@pytest.mark.parametrize("name", [*gan.MODELS, "cgan_r1_ema"])
def test_one_train_step_moves_both_networks(name):
    set_seed(0)
    config = REGULARIZED if name == "cgan_r1_ema" else _config(name)
    model = gan.build_model(config)
    before_g = [w.copy() for w in model.generator.get_weights()]
    before_d = [w.copy() for w in model.discriminator.get_weights()]
    logs = _one_traced_step(model, config)
    for key in ("d_loss", "g_loss", "g_grad_norm"):
        assert np.isfinite(float(logs[key])), key
    moved_g = [
        not np.allclose(a, b) for a, b in zip(before_g, model.generator.get_weights(), strict=True)
    ]
    moved_d = [
        not np.allclose(a, b)
        for a, b in zip(before_d, model.discriminator.get_weights(), strict=True)
    ]
    assert sum(moved_g) >= 4  # kernels and biases of several layers
    # Every kernel of D moves. (The critic's output bias may not: it cancels in
    # E f(fake) - E f(real), and the gradient penalty does not see it.)
    kernels_d = [m for m, w in zip(moved_d, before_d, strict=True) if w.ndim >= 2]
    assert len(kernels_d) >= 3 and all(kernels_d)


def test_several_steps_per_execution_still_train_on_every_batch():
    """Keras runs ``steps_per_execution`` steps per graph call; an epoch that is not a
    multiple of it (10 batches, 4 per call) must still take all 10 steps."""
    from tutorial_lib.profiles import get_profile

    config = dataclasses.replace(TINY, steps_per_execution=4)
    model = gan.build_model(config)
    assert model.steps_per_execution == 4
    profile = dataclasses.replace(get_profile("fast"), steps_per_epoch=None)
    gan.fit_model(model, _images(10 * config.batch_size), config=config, profile=profile, epochs=1)
    assert int(model.d_optimizer.iterations) == int(model.g_optimizer.iterations) == 10


def test_discriminator_and_generator_losses_on_known_logits():
    # D unsure (logit 0 everywhere): log 2 per term.
    zeros = tf.zeros((4, 1))
    assert float(gan.discriminator_loss(zeros, zeros)) == pytest.approx(2 * np.log(2), rel=1e-6)
    # D rejects the fakes (logit -10): the saturating loss is flat, the non-saturating is not.
    logits = tf.Variable(tf.fill((4, 1), -10.0))
    slopes = {}
    for kind in gan.GENERATOR_LOSSES:
        with tf.GradientTape() as tape:
            loss = gan.generator_loss(logits, kind)
        slopes[kind] = float(tf.reduce_sum(tape.gradient(loss, logits)))
    assert slopes["non_saturating"] == pytest.approx(-1.0, abs=1e-3)
    assert abs(slopes["saturating"]) < 1e-4
    with pytest.raises(ValueError, match="non_saturating"):
        gan.generator_loss(logits, "minimax")


def test_gradient_penalty_equals_its_definition_on_a_toy_critic():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 28, 28, 1)).astype("float32")

    def critic(x):  # f(x) = sum(w * x^2): gradient 2 w x, known in closed form
        return tf.reduce_sum(w * tf.square(x), axis=[1, 2, 3])[:, None]

    real, fake = _images(6, 1) * 2 - 1, _images(6, 2) * 2 - 1
    epsilon = rng.uniform(size=(6, 1, 1, 1)).astype("float32")
    x_hat = epsilon * real + (1 - epsilon) * fake
    norms = np.sqrt(np.sum((2 * w * x_hat) ** 2, axis=(1, 2, 3)))
    expected = np.mean((norms - 1.0) ** 2)
    got = float(gan.gradient_penalty(critic, real, fake, epsilon=epsilon))
    assert got == pytest.approx(expected, rel=1e-4)
    # With epsilon drawn inside, the penalty lies between those at the two ends.
    drawn = float(gan.gradient_penalty(critic, real, fake, seed=3))
    assert np.isfinite(drawn) and drawn > 0


def test_the_conditional_generator_follows_its_label():
    set_seed(0)
    model = gan.build_model(_config("cgan"))
    z = gan.latent_vectors(4, TINY.latent_dim, seed=1)
    threes = gan.sample(model, z=z, labels=3)
    sevens = gan.sample(model, z=z, labels=7)
    assert threes.shape == (4, 28, 28, 1)
    assert np.abs(threes - sevens).max() > 1e-4  # same noise, other label, other image
    np.testing.assert_array_equal(threes, gan.sample(model, z=z, labels=[3, 3, 3, 3]))
    with pytest.raises(ValueError, match="0..9"):
        gan.sample(model, 2, labels=10)
    with pytest.raises(ValueError, match="unconditional"):
        gan.sample(gan.build_model(TINY), 2, labels=1)


@pytest.mark.parametrize("name", ["gan", "wgan_gp"])
def test_save_and_load_round_trip(name, tmp_path):
    import keras

    set_seed(0)
    model = gan.build_model(_config(name))
    model.train_step(tf.constant(_images(16)))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    settings = {
        k: v for k, v in model.get_config().items() if k not in ("generator", "discriminator")
    }
    assert {k: loaded.get_config()[k] for k in settings} == settings
    for part in ("generator", "discriminator"):
        assert getattr(loaded, part).count_params() == getattr(model, part).count_params()
    np.testing.assert_allclose(
        gan.sample(loaded, 8, seed=5), gan.sample(model, 8, seed=5), atol=1e-6
    )
    # The optimizers come back with their state: training goes on where it stopped.
    assert int(loaded.g_optimizer.iterations) == int(model.g_optimizer.iterations) > 0
    loaded.train_step(tf.constant(_images(16, seed=1)))


def test_fit_with_a_quality_callback_and_a_sample_grid():
    from tutorial_lib.profiles import get_profile
    from tutorial_lib.training import SampleGrid

    if not metrics.weights_path("mnist").exists():
        pytest.skip("the evaluation classifier's weights are not there")
    set_seed(0)
    model = gan.build_model(TINY)
    quality = metrics.QualityHistory(gan.sample, num=60)
    grid = SampleGrid(gan.sample, num=4)
    history = gan.fit_model(
        model, _images(64), config=TINY, profile=get_profile("fast"), callbacks=[quality, grid]
    )
    assert set(history.history) >= {"d_loss", "g_loss", "real_acc", "fake_acc", "g_grad_norm"}
    assert quality.history["epoch"] == [1, 2] and len(quality.history["coverage"]) == 2
    assert [epoch for epoch, _ in grid.grids] == [1, 2]


def test_cli_trains_and_samples_a_conditional_gan(tmp_path, monkeypatch):
    tiny = dataclasses.replace(TINY, kind="cgan", epochs=1)  # the run's life cycle, not its length
    monkeypatch.setitem(gan.CONFIGS["cgan"], "fast", tiny)
    run = tmp_path / "run"
    assert cli.main(["train", "cgan", "--profile", "fast", "--out", str(run)]) == 0
    assert {"model.keras", "metrics.json", "samples.png"} <= {p.name for p in run.iterdir()}
    out = tmp_path / "fives.npy"
    assert (
        cli.main(
            ["sample", "cgan", "--run", str(run), "--num", "6", "--label", "5", "--out", str(out)]
        )
        == 0
    )
    images = np.load(out)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    # --label belongs to the conditional model only.
    with pytest.raises(SystemExit):
        cli.main(["sample", "gan", "--run", str(run), "--label", "5", "--out", str(out)])


# --------------------------------------------------------------------------
# R1 and the weight average (cgan_r1_ema)
# --------------------------------------------------------------------------

REGULARIZED = gan.RegularizedGANConfig(**{**dataclasses.asdict(TINY), "kind": "cgan"})


def test_r1_penalty_equals_its_definition_on_a_toy_discriminator():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 28, 28, 1)).astype("float32")

    def linear(x):  # D(x) = <w, x>: the gradient is w for every image
        return tf.reduce_sum(w * x, axis=[1, 2, 3])[:, None]

    def quadratic(x):  # D(x) = sum(w x^2): the gradient is 2 w x
        return tf.reduce_sum(w * tf.square(x), axis=[1, 2, 3])[:, None]

    real = _images(5, 1) * 2 - 1
    assert float(gan.r1_penalty(linear, real)) == pytest.approx(np.sum(w**2), rel=1e-5)
    expected = np.mean(np.sum((2 * w * real) ** 2, axis=(1, 2, 3)))
    assert float(gan.r1_penalty(quadratic, real)) == pytest.approx(expected, rel=1e-4)


@pytest.fixture(scope="module")
def one_regularized_step():
    """The regularized GAN after one training step (taken once for the tests that read
    it), the averaged generator's weights before it, and the step's logs."""
    set_seed(0)
    model = gan.build_model(REGULARIZED)
    start = [w.copy() for w in model.ema_generator.get_weights()]
    logs = model.train_step((tf.constant(_images(16)), tf.constant(np.arange(16) % 10)))
    return model, start, logs


def test_regularized_gan_penalises_d_and_averages_g(one_regularized_step):
    model, start, logs = one_regularized_step
    assert isinstance(model, gan.RegularizedGAN) and model.conditional
    assert model.r1_weight == 10.0 and model.ema_generator is not None
    assert float(logs["r1"]) > 0 and np.isfinite(float(logs["d_loss"]))
    # After one step the average has moved (its warm-up decay is 2/11) but not all the way.
    for average, before, now in zip(
        model.ema_generator.get_weights(), start, model.generator.get_weights(), strict=True
    ):
        if not np.allclose(before, now):
            expected = (2 / 11) * before + (9 / 11) * now
            np.testing.assert_allclose(average, expected, rtol=1e-4, atol=1e-6)


def test_regularized_gan_loss_adds_half_gamma_times_r1():
    set_seed(0)
    config = dataclasses.replace(REGULARIZED, kind="gan")
    model = gan.build_model(config)
    real = tf.constant(_images(8) * 2 - 1)
    real_logits = model._discriminate(real, None)
    fake_logits = tf.zeros_like(real_logits)
    model._real_batch = (real, None)
    penalty = float(gan.r1_penalty(lambda images: model._discriminate(images, None), real))
    plain = float(gan.discriminator_loss(real_logits, fake_logits))
    got = float(model.compute_d_loss(real_logits, fake_logits))
    assert got == pytest.approx(plain + 0.5 * config.r1_weight * penalty, rel=1e-4)


def test_regularized_gan_samples_its_average_with_uniform_labels(one_regularized_step):
    model = one_regularized_step[0]
    z = gan.latent_vectors(6, TINY.latent_dim, seed=2)
    np.testing.assert_allclose(
        gan.sample(model, z=z, labels=4), gan.sample(model.ema_generator, z=z, labels=4)
    )
    assert (
        np.abs(gan.sample(model, z=z, labels=4) - gan.sample(model.generator, z=z, labels=4)).max()
        > 0
    )
    # Without labels: drawn uniformly with the seed, not 0..9 in turn.
    draws = np.random.default_rng([5, 1]).integers(0, 10, 6)
    np.testing.assert_allclose(
        gan.sample(model, 6, seed=5), gan.sample(model, 6, seed=5, labels=draws)
    )
    assert (
        np.bincount(np.random.default_rng([0, 1]).integers(0, 10, 10_000), minlength=10).min() > 900
    )
    # Weights of 0 leave a plain GAN: no average, no penalty in the loss.
    plain = gan.build_model(dataclasses.replace(REGULARIZED, r1_weight=0.0, ema_decay=0.0))
    assert plain.ema_generator is None
    with pytest.raises(ValueError, match="ema_decay"):
        gan.RegularizedGAN(model.generator, model.discriminator, ema_decay=1.0)


def test_regularized_gan_save_and_load_round_trip(tmp_path, one_regularized_step):
    import keras

    model = one_regularized_step[0]
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded) is gan.RegularizedGAN
    assert (loaded.r1_weight, loaded.ema_decay) == (model.r1_weight, model.ema_decay)
    np.testing.assert_allclose(
        gan.sample(loaded, 8, seed=5), gan.sample(model, 8, seed=5), atol=1e-6
    )


def test_the_recommended_recipe_is_the_conditional_dcgan_plus_r1_and_an_average():
    for profile in ("fast", "cpu", "gpu"):
        config = gan.CONFIGS["cgan_r1_ema"][profile]
        cgan = gan.CONFIGS["cgan"][profile]
        assert isinstance(config, gan.RegularizedGANConfig) and config.kind == "cgan"
        assert config.generator_filters == cgan.generator_filters
        assert config.r1_weight > 0 and 0 < config.ema_decay < 1
