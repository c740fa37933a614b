import math

import numpy as np
import pytest

from tutorial_lib import data, metrics, stores

ACCURACY_TARGET = {"mnist": 0.99, "fashion_mnist": 0.90}


# --------------------------------------------------------------------------
# The shipped evaluation classifiers
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", data.IMAGE_DATASETS)
def test_shipped_classifier_reaches_its_accuracy_on_the_full_test_set(dataset):
    assert metrics.weights_path(dataset).stat().st_size < 3e6  # a few MB at most
    assert metrics.classifier_accuracy(dataset) >= ACCURACY_TARGET[dataset]


def test_classifier_has_a_128_d_features_layer():
    model = metrics.load_classifier("mnist")
    assert model.get_layer(metrics.FEATURES_LAYER).output.shape == (None, 128)
    assert metrics.load_classifier("MNIST") is model  # loaded once per process


def test_train_classifier_smoke_runs_one_step():
    model = metrics.train_classifier("mnist", epochs=1, train_examples=64, batch_size=64)
    x, _ = data.load_images("mnist", "test", limit=4)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------
# Sample quality: real data, noise, a collapsed generator
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def floors():
    return {dataset: metrics.real_data_floor(dataset, n=500) for dataset in data.IMAGE_DATASETS}


@pytest.mark.parametrize("dataset", data.IMAGE_DATASETS)
def test_real_images_score_at_the_floor(dataset, floors):
    floor = floors[dataset]
    assert floor["num_images"] == 500 and floor["reference_size"] == 10_000
    assert floor["coverage"] == 1.0
    assert sum(floor["class_histogram"]) == 500
    assert floor["confidence"] > 0.9
    assert floor["inception_score"] > 8.0  # the maximum is 10
    # About 5-12 for 500 images depending on which (the estimate's bias and noise); noise: 700+.
    assert 0.0 < floor["frechet_distance"] < 15.0


@pytest.mark.parametrize("dataset", data.IMAGE_DATASETS)
def test_uniform_noise_scores_badly(dataset, floors):
    noise = np.random.default_rng(0).uniform(size=(500, 28, 28, 1)).astype("float32")
    scores = metrics.image_quality(noise, dataset)
    assert scores["frechet_distance"] > 20 * floors[dataset]["frechet_distance"]
    assert scores["inception_score"] < 2.0
    assert scores["coverage"] < 0.5


def test_a_single_repeated_image_covers_one_class_with_inception_score_one():
    x, y = data.load_images("mnist", "test", limit=1)
    repeated = np.repeat(x, 60, axis=0)
    scores = metrics.image_quality(repeated, "mnist")
    assert scores["coverage"] == 0.1
    assert scores["class_histogram"][y[0]] == 60
    assert scores["inception_score"] == pytest.approx(1.0, abs=1e-6)
    coverage, histogram = metrics.class_coverage(repeated[:, :, :, 0], "mnist")  # (N, 28, 28)
    assert coverage == 0.1 and histogram.tolist() == scores["class_histogram"]
    assert metrics.inception_score(repeated, "mnist") == pytest.approx(1.0, abs=1e-6)
    assert metrics.classifier_confidence(repeated, "mnist") == pytest.approx(
        scores["confidence"], rel=1e-6
    )


def test_image_quality_accepts_an_array_as_reference():
    x, _ = data.load_images("fashion_mnist", "test", limit=200)
    scores = metrics.image_quality(x, "fashion_mnist", reference=x)
    assert scores["frechet_distance"] == pytest.approx(0.0, abs=1e-3)
    assert scores["reference_size"] == 200


# --------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------


def _with_exact_moments(rng, mean, cov, n):
    """n samples whose sample mean and (N - 1) covariance are exactly ``mean`` and ``cov``."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = (
        z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T
    )  # identity covariance
    return mean + z @ np.linalg.cholesky(cov).T


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_matches_the_closed_form_between_two_gaussians():
    rng = np.random.default_rng(0)
    d = 8
    mean_a, mean_b = rng.normal(size=d), rng.normal(size=d)
    cov_a, cov_b = _random_cov(rng, d), _random_cov(rng, d)  # they do not commute
    root_a = _psd_sqrt(cov_a)
    # Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric PSD root.
    cross = np.trace(_psd_sqrt(root_a @ cov_b @ root_a))
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    a = _with_exact_moments(rng, mean_a, cov_a, 300)
    b = _with_exact_moments(rng, mean_b, cov_b, 400)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_one_dimensional_gaussians():
    rng = np.random.default_rng(1)
    a = _with_exact_moments(rng, np.array([1.0]), np.array([[4.0]]), 100)
    b = _with_exact_moments(rng, np.array([-2.0]), np.array([[9.0]]), 100)
    # (m_a - m_b)^2 + (s_a - s_b)^2 with standard deviations 2 and 3.
    assert metrics.frechet_distance(a, b) == pytest.approx(9.0 + 1.0, rel=1e-10)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(2).normal(size=(500, 32)) * 3.0
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_handles_singular_covariances():
    rng = np.random.default_rng(3)
    few = rng.normal(size=(10, 64))  # 10 samples in 64 dimensions: a rank-9 covariance
    distance = metrics.frechet_distance(few, rng.normal(size=(10, 64)))
    assert np.isfinite(distance) and distance > 0


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="dimension: 8 .* and 4"):
        metrics.frechet_distance(np.zeros((10, 8)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        metrics.frechet_distance(np.zeros(10), np.zeros((10, 1)))


# --------------------------------------------------------------------------
# Likelihood
# --------------------------------------------------------------------------


def test_importance_weighted_nll_with_one_sample_is_the_negative_elbo():
    rng = np.random.default_rng(0)
    log_px_z, log_pz, log_qz = (rng.normal(size=(50, 1)) - 90 for _ in range(3))
    expected = metrics.negative_elbo(log_px_z[:, 0], (log_qz - log_pz)[:, 0])
    assert metrics.importance_weighted_nll(log_px_z, log_pz, log_qz) == pytest.approx(expected)


def test_more_importance_samples_give_a_tighter_bound():
    rng = np.random.default_rng(1)
    log_px_z, log_pz, log_qz = (rng.normal(size=(50, 16)) * 3 for _ in range(3))
    iwae = metrics.importance_weighted_nll(log_px_z, log_pz, log_qz)
    single = np.mean(
        [metrics.negative_elbo(log_px_z[:, j], (log_qz - log_pz)[:, j]) for j in range(16)]
    )
    assert iwae < single  # log-mean-exp >= mean-log (Jensen)
    same = np.repeat(log_px_z[:, :1], 16, axis=1)  # k equal weights: the same as k = 1
    zeros = np.zeros_like(same)
    assert metrics.importance_weighted_nll(same, zeros, zeros) == pytest.approx(
        -log_px_z[:, 0].mean()
    )


def test_logsumexp_is_stable_for_large_values():
    assert metrics.logsumexp([1000.0, 1000.0]) == pytest.approx(1000.0 + math.log(2))
    assert metrics.logsumexp([-1000.0, -1000.0]) == pytest.approx(-1000.0 + math.log(2))
    assert metrics.logsumexp([-np.inf, 0.0]) == 0.0
    assert metrics.logsumexp([-np.inf, -np.inf]) == -np.inf
    values = np.array([[-5000.0, -5001.0], [800.0, 799.0]])
    np.testing.assert_allclose(metrics.logsumexp(values, axis=1), values[:, 0] + np.log1p(np.e**-1))
    nll = metrics.importance_weighted_nll(values, np.zeros((2, 2)), np.zeros((2, 2)))
    assert np.isfinite(nll)


def test_convert_goes_between_every_pair_of_units():
    assert metrics.convert(86.76, "nats per image", "bits per dimension") == pytest.approx(
        0.15965, abs=1e-4
    )
    assert metrics.convert(
        1.5, "bits per dimension", "nats per image", dimensions=200
    ) == pytest.approx(1.5 * math.log(2) * 200)
    for source in metrics.UNITS:
        for target in metrics.UNITS:
            there = metrics.convert(3.0, source, target, dimensions=10)
            assert metrics.convert(there, target, source, dimensions=10) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="nats per image"):
        metrics.convert(1.0, "bits per pixel", "nats per image")


def test_bits_per_character():
    assert metrics.bits_per_character(math.log(2)) == 1.0
    assert metrics.bits_per_character(0.0) == 0.0


def test_likelihood_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        metrics.negative_elbo(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(N, k\).*a\[:, None\]"):
        metrics.importance_weighted_nll(np.zeros(3), np.zeros(3), np.zeros(3))


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images():
    return data.load_images("mnist", "test", limit=60)[0]


def test_check_images_adds_the_channel_axis(images):
    checked = metrics.check_images(images[..., 0].astype("float64"))
    assert checked.shape == (60, 28, 28, 1) and checked.dtype == np.float32


@pytest.mark.parametrize("shape", [(5, 28, 28, 3), (5, 784), (5, 32, 32), (28, 28)])
def test_wrong_shape_says_what_was_expected_and_found(shape):
    with pytest.raises(metrics.ImageCheckError) as info:
        metrics.check_images(np.zeros(shape, "float32"))
    message = str(info.value)
    assert "(N, 28, 28, 1) or (N, 28, 28)" in message and f"found shape {shape}" in message
    assert ("x[None]" in message) == (shape == (28, 28))


def test_pixel_values_from_0_to_255_are_caught(images):
    with pytest.raises(ValueError, match=r"found values in \[0, 255\]\. .*divide by 255"):
        metrics.check_images(images * 255)


def test_values_in_minus_one_to_one_are_caught(images):
    with pytest.raises(ValueError, match=r"found values in \[-1, 1\]\. .*\(x \+ 1\) / 2"):
        metrics.check_images(images * 2 - 1)


def test_other_out_of_range_values_get_the_generic_hint(images):
    with pytest.raises(ValueError, match=r"\[-3, 1\].*rescale from \[-1, 1\] or from 0\.\.255"):
        metrics.check_images(images * 4 - 3)


def test_nans_are_counted(images):
    broken = images.copy()
    broken[0, 0, :3] = np.nan
    broken[1, 5, 5] = np.inf
    with pytest.raises(ValueError, match="3 NaN and 1 infinite"):
        metrics.image_quality(broken, "mnist")


def test_too_few_samples_for_the_frechet_distance(images):
    with pytest.raises(ValueError, match="Got 10 images; at least 50 .* Fréchet distance"):
        metrics.image_quality(images[:10], "mnist")


def test_unknown_dataset_and_reference_name_the_choices(images):
    with pytest.raises(ValueError, match="mnist, fashion_mnist"):
        metrics.image_quality(images, "cifar10")
    with pytest.raises(ValueError, match="'test' or an array"):
        metrics.image_quality(images, "mnist", reference="train")
    with pytest.raises(ValueError, match=r"n must lie in \[50, 60000\]"):
        metrics.real_data_floor("mnist", n=10)


def test_floor_command_prints_every_metric(capsys):
    assert metrics.main(["floor", "--datasets", "mnist", "--n", "100"]) == 0
    out = capsys.readouterr().out
    assert "mnist (n=100 real train images vs 10000 test)" in out and "FD" in out


# --------------------------------------------------------------------------
# Missing or broken weights (last: it clears the caches)
# --------------------------------------------------------------------------


@pytest.fixture
def empty_weights_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics, "WEIGHTS_DIR", tmp_path)
    metrics.clear_caches()
    yield tmp_path
    metrics.clear_caches()


def test_missing_weights_say_how_to_regenerate_them(empty_weights_dir):
    with pytest.raises(metrics.ClassifierWeightsError) as info:
        metrics.load_classifier("fashion_mnist")
    message = str(info.value)
    assert str(empty_weights_dir / "fashion_mnist_classifier.weights.h5") in message
    assert "python -m tutorial_lib.metrics train-classifiers" in message


def test_broken_weights_say_how_to_regenerate_them(empty_weights_dir):
    (empty_weights_dir / "mnist_classifier.weights.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(metrics.ClassifierWeightsError, match="train-classifiers"):
        metrics.load_classifier("mnist")


def test_the_test_splits_outputs_are_kept_on_disk_and_a_damaged_copy_is_recomputed(
    monkeypatch, tmp_path
):
    images, labels = data.load_images("mnist", "test")
    monkeypatch.setattr(data, "load_images", lambda *_: (images[:64], labels[:64]))
    monkeypatch.setenv(stores.CACHE_DIR_ENV, str(tmp_path))
    passes = []
    real_outputs = metrics.classifier_outputs

    def counted(x, dataset, **kwargs):
        passes.append(len(x))
        return real_outputs(x, dataset, **kwargs)

    monkeypatch.setattr(metrics, "classifier_outputs", counted)
    metrics.clear_caches()
    try:
        first = metrics._test_outputs("mnist")
        (kept,) = tmp_path.glob("mnist_test_outputs_*.npz")
        metrics.clear_caches()  # a new session: read from disk, no pass of the classifier
        second = metrics._test_outputs("mnist")
        assert passes == [64]
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)

        kept.write_bytes(b"cut short")
        metrics.clear_caches()
        third = metrics._test_outputs("mnist")
        assert passes == [64, 64]
        np.testing.assert_array_equal(third[0], first[0])
        with np.load(kept) as stored:  # written whole again
            np.testing.assert_array_equal(stored["probs"], first[1])
    finally:
        metrics.clear_caches()
