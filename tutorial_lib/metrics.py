"""Evaluation metrics: how good are generated images, and how good is a likelihood.

**Sample quality** is judged by a small CNN classifier trained on the real data
set (one per data set; the weights ship in ``tutorial_lib/weights/``). For
generated images :math:`x_1, \\dots, x_N` and the classifier's class
probabilities :math:`p(y \\mid x)`:

* confidence: :math:`\\frac{1}{N} \\sum_i \\max_y p(y \\mid x_i)` -- do the
  samples look like *some* class? Never read it alone: a classifier can be
  confidently wrong far from the data (uniform noise scores 1.0 on MNIST,
  every image an "8").
* class coverage: the fraction of the 10 classes predicted for at least 2% of
  the samples -- are all classes generated? (mode collapse lowers it)
* classifier inception score:
  :math:`\\mathrm{IS} = \\exp\\big(\\mathbb{E}_x\\, \\mathrm{KL}(p(y \\mid x) \\,\\|\\, p(y))\\big)`
  with :math:`p(y) = \\mathbb{E}_x\\, p(y \\mid x)`; it lies in [1, 10] and is
  high when every sample is confidently one class *and* the classes are evenly used.
* Fréchet distance between Gaussians fitted to the classifier's 128-d
  ``features`` layer for generated and real (test) images:
  :math:`\\mathrm{FD} = \\lVert \\mu_a - \\mu_b \\rVert^2
  + \\mathrm{Tr}\\big(\\Sigma_a + \\Sigma_b - 2 (\\Sigma_a \\Sigma_b)^{1/2}\\big)`.
  This is FID with our classifier in place of Inception-v3, so the numbers are
  *not* comparable with published FIDs -- compare them with
  :func:`real_data_floor`, the same metrics for real images.

Real-data floor with the shipped weights: 1,000 random train images (seed 0)
against the 10,000 test images. Other draws of the 1,000 give an FD of 4 to 6
(MNIST) and 2 to 7.5 (Fashion-MNIST): differences of that size mean nothing.

=============  ==========  ========  =====  ===  ===============
data set       confidence  coverage  IS     FD   uniform noise FD
=============  ==========  ========  =====  ===  ===============
MNIST          0.997       1.0       9.85   4.8  2742
Fashion-MNIST  0.941       1.0       8.48   7.4  694
=============  ==========  ========  =====  ===  ===============

The FD is biased upwards for few samples (MNIST: about 7 at 500 images, 1.6 at
5,000), so compare a model with the floor for the *same* number of images.

**Likelihood** metrics take arrays of per-example log-probabilities, so they
work for any model: :func:`negative_elbo`, :func:`importance_weighted_nll`
(the IWAE bound) and :func:`bits_per_character`.

Regenerate the classifier weights (a few minutes per data set on 2 CPU cores)::

    python -m tutorial_lib.metrics train-classifiers
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import scipy.linalg

from tutorial_lib import data, stores
from tutorial_lib.data import IMAGE_SHAPE, NUM_CLASSES
from tutorial_lib.training import Timer, progress_verbosity, set_seed

FEATURES_LAYER = "features"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
REGENERATE_COMMAND = "python -m tutorial_lib.metrics train-classifiers"

# Fewer samples than this give a Fréchet distance dominated by estimation noise.
MIN_FD_SAMPLES = 50
# A class counts as covered when at least this fraction of the samples is predicted as it.
COVERAGE_THRESHOLD = 0.02
# Epochs of train_classifier per data set: enough for >= 99% (MNIST) and >= 90% (Fashion-MNIST).
TRAIN_EPOCHS = {"mnist": 4, "fashion_mnist": 6}


class ImageCheckError(ValueError):
    """Images given to a metric are not what it needs; the message says what to change."""


class ClassifierWeightsError(FileNotFoundError):
    """The evaluation classifier's weights file is missing or does not fit the model."""


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


def _to_numpy(x) -> np.ndarray:
    """A NumPy array of ``x`` (NumPy array, list or backend tensor)."""
    return x if isinstance(x, np.ndarray) else np.asarray(keras.ops.convert_to_numpy(x))


def _range_hint(low: float, high: float) -> str:
    """A guess at what went wrong for images outside [0, 1]."""
    if low >= 0.0 and 1.0 < high <= 255.0:
        return "They look like 0..255 pixel values: divide by 255."
    if -1.0 <= low < 0.0 and high <= 1.0:
        return "They look like [-1, 1] values (e.g. a tanh output): rescale with (x + 1) / 2."
    return (
        "Did you forget to rescale from [-1, 1] or from 0..255? If they are only slightly "
        "outside, clip them with np.clip(x, 0.0, 1.0)."
    )


def check_images(x, *, min_samples: int = 1, why: str = "") -> np.ndarray:
    """Check a batch of images and return it as float32 of shape (N, 28, 28, 1).

    Accepts shape (N, 28, 28, 1) or (N, 28, 28) with values in [0, 1]. Raises
    :class:`ImageCheckError` (a ``ValueError``) for a wrong shape, fewer than
    ``min_samples`` images (``why`` says what they are needed for), NaNs or
    infinities, or values outside [0, 1].
    """
    x = _to_numpy(x)
    shape = x.shape
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        single = " For a single image, add the batch axis: x[None]." if shape[0] == 28 else ""
        raise ImageCheckError(
            f"Expected images of shape (N, 28, 28, 1) or (N, 28, 28); found shape {shape}.{single}"
        )
    if len(x) < min_samples:
        raise ImageCheckError(
            f"Got {len(x)} images; at least {min_samples} are needed{why}. Generate more samples."
        )
    x = x.astype(np.float32, copy=False)
    nans, infs = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    if nans or infs:
        raise ImageCheckError(
            f"Images hold {nans} NaN and {infs} infinite values (out of {x.size}). "
            "The model that made them has diverged or produced invalid outputs."
        )
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise ImageCheckError(
            f"Images must lie in [0, 1]; found values in [{low:.4g}, {high:.4g}]. "
            + _range_hint(low, high)
        )
    return x


# --------------------------------------------------------------------------
# The evaluation classifier
# --------------------------------------------------------------------------


def _conv_block(h, filters: int):
    """3x3 convolution (no bias) -> batch normalization -> ReLU."""
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = keras.layers.BatchNormalization()(h)
    return keras.layers.Activation("relu")(h)


def build_classifier() -> keras.Model:
    """The evaluation CNN: a (28, 28, 1) image in [0, 1] -> p(y | x) over 10 classes.

    conv(32)-BN-ReLU, 2x2 max-pool -> conv(64)-BN-ReLU, 2x2 max-pool ->
    conv(64)-BN-ReLU -> flatten -> dropout -> dense(128, ReLU) named
    ``features`` (the embedding of the Fréchet distance) -> dropout ->
    dense(10, softmax) named ``probs``. About 459k parameters (1.8 MB).
    """
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    h = keras.layers.MaxPooling2D()(_conv_block(inputs, 32))
    h = keras.layers.MaxPooling2D()(_conv_block(h, 64))
    h = keras.layers.Flatten()(_conv_block(h, 64))
    h = keras.layers.Dropout(0.3)(h)
    features = keras.layers.Dense(128, activation="relu", name=FEATURES_LAYER)(h)
    h = keras.layers.Dropout(0.3)(features)
    probs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(h)
    return keras.Model(inputs, probs, name="eval_classifier")


def train_classifier(
    dataset: str,
    epochs: int | None = None,
    seed: int = 0,
    *,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    train_examples: int | None = None,
    verbose: int | str | None = None,
) -> keras.Model:
    """Train the evaluation classifier on a data set's training split.

    Adam with a cosine-decayed learning rate, cross-entropy loss, no
    augmentation. ``epochs`` defaults to :data:`TRAIN_EPOCHS` (4 for MNIST,
    6 for Fashion-MNIST); ``train_examples`` keeps only the first images
    (for smoke tests). Returns the trained, compiled model.
    """
    dataset = data.check_dataset_name(dataset)
    epochs = TRAIN_EPOCHS[dataset] if epochs is None else epochs
    set_seed(seed)
    x, y = data.load_images(dataset, "train", limit=train_examples)
    model = build_classifier()
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    batches = data.image_dataset(x, y, batch_size=batch_size, seed=seed)
    verbose = progress_verbosity() if verbose is None else verbose
    model.fit(batches, epochs=epochs, verbose=verbose, shuffle=False)  # batches shuffle
    return model


def weights_path(dataset: str) -> Path:
    """Where the shipped weights of a data set's classifier live."""
    return WEIGHTS_DIR / f"{data.check_dataset_name(dataset)}_classifier.weights.h5"


def save_classifier(model: keras.Model, dataset: str) -> Path:
    """Write a classifier's weights to :func:`weights_path` and forget cached copies.

    Only the model's weights are written, not the optimizer state of a trained
    (compiled) model, which would triple the file.
    """
    path = weights_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    uncompiled = build_classifier()
    uncompiled.set_weights(model.get_weights())
    uncompiled.save_weights(path)
    clear_caches()
    return path


def load_classifier(dataset: str) -> keras.Model:
    """The trained evaluation classifier of a data set (cached per process)."""
    return _load_classifier(data.check_dataset_name(dataset))


@functools.cache
def _load_classifier(dataset: str) -> keras.Model:
    path = weights_path(dataset)
    if not path.is_file():
        raise ClassifierWeightsError(
            f"No weights for the {dataset} evaluation classifier at {path}. "
            f"Fix: regenerate them with `{REGENERATE_COMMAND}` (a few minutes per data set)."
        )
    model = build_classifier()
    try:
        model.load_weights(path)
    except (OSError, ValueError) as error:
        raise ClassifierWeightsError(
            f"The weights at {path} do not fit the evaluation classifier ({error}). "
            f"Fix: regenerate them with `{REGENERATE_COMMAND}`."
        ) from error
    return model


@functools.cache
def _two_headed(dataset: str) -> keras.Model:
    """The classifier with two outputs: the ``features`` layer and the class probabilities."""
    model = load_classifier(dataset)
    return keras.Model(model.inputs, [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])


def classifier_outputs(x, dataset: str, *, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """``(features, probs)`` of images: shapes (N, 128) and (N, 10), float32."""
    x = check_images(x)
    features, probs = _two_headed(data.check_dataset_name(dataset)).predict(
        x, batch_size=batch_size, verbose=0
    )
    return features, probs


@functools.cache
def _test_outputs(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features, probs, labels)`` of the full 10,000-image test split.

    The classifier's pass over 10,000 images takes seconds, and every Fréchet distance
    needs its features: they are kept in memory and in
    :func:`tutorial_lib.stores.cache_dir`, under a name made from the classifier's weights
    and the images, so new weights or data are never read against an old copy (Keras's
    backends compute the same outputs, to float rounding). A copy that cannot be read or
    written (damaged, a read-only or full disk) only means computing them again.
    """
    x, y = data.load_images(dataset, "test")
    digest = hashlib.sha256(weights_path(dataset).read_bytes())
    digest.update(np.ascontiguousarray(x).tobytes())
    outputs = stores.cached_arrays(
        f"{dataset}_test_outputs",
        digest.hexdigest(),
        lambda: dict(zip(("features", "probs"), classifier_outputs(x, dataset), strict=True)),
        valid=lambda found: len(found["features"]) == len(found["probs"]) == len(y),
    )
    return outputs["features"], outputs["probs"], y


def classifier_accuracy(dataset: str) -> float:
    """Accuracy of the shipped classifier on the full test split (10,000 images)."""
    _, probs, labels = _test_outputs(data.check_dataset_name(dataset))
    return float(np.mean(probs.argmax(axis=1) == labels))


def clear_caches() -> None:
    """Forget loaded classifiers and cached test-set outputs (after retraining)."""
    _load_classifier.cache_clear()
    _two_headed.cache_clear()
    _test_outputs.cache_clear()


# --------------------------------------------------------------------------
# Sample quality
# --------------------------------------------------------------------------


def _confidence(probs: np.ndarray) -> float:
    return float(np.mean(probs.max(axis=1)))


def _coverage(probs: np.ndarray, threshold: float) -> tuple[float, np.ndarray]:
    histogram = np.bincount(probs.argmax(axis=1), minlength=NUM_CLASSES)
    covered = histogram >= threshold * len(probs)
    return float(covered.mean()), histogram


def _inception_score(probs: np.ndarray) -> float:
    probs = probs.astype(np.float64)
    log_probs = np.log(np.clip(probs, 1e-12, None))
    log_marginal = np.log(np.clip(probs.mean(axis=0), 1e-12, None))
    kl = np.sum(probs * (log_probs - log_marginal), axis=1)
    return float(np.exp(kl.mean()))


def classifier_confidence(x, dataset: str) -> float:
    """Mean over images of the classifier's top probability, max_y p(y | x), in [0.1, 1]."""
    return _confidence(classifier_outputs(x, dataset)[1])


def class_coverage(
    x, dataset: str, *, threshold: float = COVERAGE_THRESHOLD
) -> tuple[float, np.ndarray]:
    """``(coverage, histogram)``: the fraction of the 10 classes that are predicted for at
    least ``threshold`` (2%) of the images, and the count of images per predicted class."""
    return _coverage(classifier_outputs(x, dataset)[1], threshold)


def inception_score(x, dataset: str) -> float:
    """Classifier inception score exp(E_x KL(p(y | x) || p(y))), p(y) = E_x p(y | x).

    1 when every image gets the same class distribution (e.g. one repeated
    image), 10 when each image is confidently one class and all ten classes are
    equally frequent.
    """
    return _inception_score(classifier_outputs(x, dataset)[1])


def _check_features(features, name: str) -> np.ndarray:
    features = _to_numpy(features).astype(np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(
            f"{name} must have shape (N, D) with N >= 2 feature vectors; found shape "
            f"{features.shape}."
        )
    if not np.isfinite(features).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(features)).sum())} NaN/inf values.")
    return features


def _sqrtm_of_product(cov_a: np.ndarray, cov_b: np.ndarray, eps: float) -> np.ndarray:
    """Real part of (cov_a cov_b)^(1/2); retried with eps*I added to both if singular."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        try:
            root = scipy.linalg.sqrtm(cov_a @ cov_b)
        except scipy.linalg.LinAlgWarning:
            root = None
    if root is None or not np.isfinite(root).all():
        offset = eps * np.eye(len(cov_a))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            root = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(root):
        # The exact root of a product of two PSD matrices has real eigenvalues; round-off
        # leaves tiny imaginary parts, a large one means the covariances are ill-conditioned.
        imaginary = np.abs(root.imag).max()
        if imaginary > 1e-3 * max(np.abs(root.real).max(), 1.0):
            warnings.warn(
                f"Fréchet distance: the matrix square root has an imaginary part of "
                f"{imaginary:.3g}; the result may be inaccurate. Use more samples.",
                RuntimeWarning,
                stacklevel=3,
            )
        root = root.real
    return root


def frechet_distance(features_a, features_b, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    With means mu and covariances Sigma (unbiased, N - 1) of features_a and features_b,
    both of shape (N, D):
    ``||mu_a - mu_b||^2 + Tr(Sigma_a + Sigma_b - 2 (Sigma_a Sigma_b)^(1/2))``.
    The matrix square root comes from ``scipy.linalg.sqrtm``; if the product is
    singular, ``eps * I`` is added to both covariances. 0 for identical sets.
    """
    a, b = _check_features(features_a, "features_a"), _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"Feature sets differ in dimension: {a.shape[1]} (features_a) and "
            f"{b.shape[1]} (features_b)."
        )
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    diff = a.mean(axis=0) - b.mean(axis=0)
    root = _sqrtm_of_product(cov_a, cov_b, eps)
    distance = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root)
    return float(max(distance, 0.0))  # round-off can give a tiny negative number


def image_quality(x, dataset: str, reference="test") -> dict:
    """Every sample-quality metric of generated images ``x`` in one call.

    ``reference`` is ``"test"`` (all 10,000 test images; their features are
    cached, so every call compares with the same set) or an array of real
    images. The Fréchet distance is biased upwards for small N: compare it
    with :func:`real_data_floor` for the same number of images.

    Returns a JSON-friendly dict: ``num_images``, ``confidence``,
    ``coverage``, ``class_histogram`` (images per predicted class),
    ``inception_score``, ``frechet_distance`` and ``reference_size``.
    """
    dataset = data.check_dataset_name(dataset)
    why = " for a stable Fréchet distance"
    x = check_images(x, min_samples=MIN_FD_SAMPLES, why=why)
    if isinstance(reference, str):
        if reference != "test":
            raise ValueError(f"reference must be 'test' or an array of images; got {reference!r}.")
        reference_features = _test_outputs(dataset)[0]
    else:
        reference = check_images(reference, min_samples=MIN_FD_SAMPLES, why=why)
        reference_features = classifier_outputs(reference, dataset)[0]
    features, probs = classifier_outputs(x, dataset)
    coverage, histogram = _coverage(probs, COVERAGE_THRESHOLD)
    return {
        "num_images": len(x),
        "confidence": _confidence(probs),
        "coverage": coverage,
        "class_histogram": histogram.tolist(),
        "inception_score": _inception_score(probs),
        "frechet_distance": frechet_distance(features, reference_features),
        "reference_size": len(reference_features),
    }


def real_data_floor(dataset: str, n: int = 1000, *, seed: int = 0) -> dict:
    """:func:`image_quality` of ``n`` random real training images against the test set.

    The best a generative model can hope for with ``n`` samples: a model's
    numbers are judged by how close they come to these.
    """
    pixels = data.load_raw(dataset)["x_train"]  # uint8: scale only the chosen images
    if not MIN_FD_SAMPLES <= n <= len(pixels):
        raise ValueError(f"n must lie in [{MIN_FD_SAMPLES}, {len(pixels)}]; got {n}.")
    chosen = np.sort(np.random.default_rng(seed).choice(len(pixels), size=n, replace=False))
    return image_quality(pixels[chosen].astype(np.float32)[..., None] / 255.0, dataset)


class QualityHistory(keras.callbacks.Callback):
    """Sample-quality metrics of a generative model every ``every`` epochs of its training.

    ``sample(model, num, seed=...)`` is the family's sampling function (for
    example :func:`tutorial_lib.gan.sample`); the images it returns, from a
    fixed ``seed``, are scored with :func:`image_quality` (confidence, class
    coverage, Fréchet distance, ...). :attr:`history` maps each metric to its
    values, ``"epoch"`` to the epochs measured and ``"seconds"`` to the
    training time so far, without the time spent measuring
    (:attr:`measuring_seconds`, which a run's record leaves out too).
    """

    def __init__(
        self, sample, dataset: str = "mnist", *, num: int = 500, every: int = 1, seed: int = 1
    ):
        super().__init__()
        self.sample, self.dataset = sample, dataset
        self.num, self.every, self.seed = num, every, seed
        self.history: dict[str, list] = {}
        self.measuring_seconds = 0.0

    def on_train_begin(self, logs=None):
        self._seconds, self._start = 0.0, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        measuring = time.perf_counter()
        self._seconds += measuring - self._start
        quality = image_quality(self.sample(self.model, self.num, seed=self.seed), self.dataset)
        quality["epoch"], quality["seconds"] = epoch + 1, round(self._seconds, 2)
        for key, value in quality.items():
            self.history.setdefault(key, []).append(value)
        self._start = time.perf_counter()
        self.measuring_seconds += self._start - measuring

    def to_checkpoint(self) -> dict:
        """What it measured, for a lesson's shipped results (:mod:`tutorial_lib.checkpoints`)."""
        return self.history

    def from_checkpoint(self, history: dict) -> None:
        """Take back what a shipped run measured, as if it had just trained."""
        self.history = history


# --------------------------------------------------------------------------
# Likelihood
# --------------------------------------------------------------------------


def _as_float64(values) -> np.ndarray:
    return _to_numpy(values).astype(np.float64)


def negative_elbo(recon_log_prob, kl) -> float:
    """Negative ELBO in nats, averaged over examples: mean of -log p(x | z) + KL(q(z|x) || p(z)).

    Both arrays hold one number per example (shape (N,)), the reconstruction
    log-likelihood summed over the pixels and the KL divergence summed over
    the latent dimensions. An upper bound on the negative log-likelihood.
    """
    recon, kl = _as_float64(recon_log_prob), _as_float64(kl)
    if recon.shape != kl.shape:
        raise ValueError(
            f"recon_log_prob and kl must have the same shape (one number per example); "
            f"got {recon.shape} and {kl.shape}."
        )
    return float(np.mean(-recon + kl))


def logsumexp(values, axis: int = -1) -> np.ndarray:
    """log sum_i exp(values_i) along ``axis``, without overflow or underflow.

    Computed as m + log sum_i exp(values_i - m) with m the maximum, so the
    largest term is exp(0) = 1. All -inf gives -inf.
    """
    values = _as_float64(values)
    peak = np.max(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):  # log(0) = -inf when every value is -inf
        total = np.log(np.sum(np.exp(values - peak), axis=axis, keepdims=True))
    return np.squeeze(total + peak, axis=axis)


def importance_weighted_nll(log_p_x_given_z, log_p_z, log_q_z_given_x) -> float:
    """Importance-weighted estimate of -log p(x) in nats (the IWAE bound), averaged over N.

    Each array has shape (N, k): k samples z_1..z_k ~ q(z | x) per example. With
    log weights log w_j = log p(x | z_j) + log p(z_j) - log q(z_j | x)::

        -log p(x) ~= -(logsumexp_j log w_j - log k)

    An upper bound on the true negative log-likelihood that tightens as k
    grows; with k = 1 it is the single-sample negative ELBO.
    """
    arrays = {
        "log_p_x_given_z": _as_float64(log_p_x_given_z),
        "log_p_z": _as_float64(log_p_z),
        "log_q_z_given_x": _as_float64(log_q_z_given_x),
    }
    shapes = {name: array.shape for name, array in arrays.items()}
    if len(set(shapes.values())) != 1 or len(shapes["log_p_z"]) != 2:
        raise ValueError(
            f"All three arrays must have the same shape (N, k), k samples per example "
            f"(for k = 1 use a[:, None]); got {shapes}."
        )
    log_w = arrays["log_p_x_given_z"] + arrays["log_p_z"] - arrays["log_q_z_given_x"]
    k = log_w.shape[1]
    return float(np.mean(-(logsumexp(log_w, axis=1) - math.log(k))))


UNITS = ("nats per image", "bits per image", "nats per dimension", "bits per dimension")


def convert(value: float, source: str, target: str, *, dimensions: int = 784) -> float:
    """A negative log-likelihood from unit ``source`` to unit ``target`` (:data:`UNITS`):
    nats and bits differ by the factor ln 2 (one bit is ln 2 = 0.693 nats), per item and
    per dimension by the ``dimensions`` of an item (784 pixels of an MNIST image; 1 for a
    character, so bits per character are bits per dimension of text)."""
    for unit in (source, target):
        if unit not in UNITS:
            raise ValueError(f"Unknown unit {unit!r}; choose one of {', '.join(UNITS)}.")
    if dimensions < 1:
        raise ValueError(f"dimensions must be at least 1; got {dimensions}.")
    nats_per_item = float(value)
    if source.startswith("bits"):
        nats_per_item *= math.log(2.0)
    if source.endswith("dimension"):
        nats_per_item *= dimensions
    result = nats_per_item
    if target.endswith("dimension"):
        result /= dimensions
    if target.startswith("bits"):
        result /= math.log(2.0)
    return result


def bits_per_character(mean_nll_nats: float) -> float:
    """Nats per character -> bits per character: nll / ln 2 (:func:`convert`)."""
    return convert(mean_nll_nats, "nats per dimension", "bits per dimension", dimensions=1)


def bits_per_dimension(nll_nats: float, dimensions: int) -> float:
    """A negative log-likelihood of one item (an image, in nats) -> bits per dimension:
    nll / (D ln 2), for D numbers per item (784 pixels of an MNIST image; :func:`convert`).
    Comparable across image sizes, and with the literature's flows (about 1 bit per pixel
    on MNIST)."""
    return convert(nll_nats, "nats per image", "bits per dimension", dimensions=dimensions)


# --------------------------------------------------------------------------
# Command line: python -m tutorial_lib.metrics train-classifiers | floor
# --------------------------------------------------------------------------


def _train_and_save(dataset: str, epochs: int | None, seed: int) -> None:
    with Timer() as timer:
        model = train_classifier(dataset, epochs=epochs, seed=seed, verbose=2)
    path = save_classifier(model, dataset)
    accuracy = classifier_accuracy(dataset)
    print(
        f"{dataset}: test accuracy {accuracy:.4f}, trained in {timer.seconds:.0f} s, "
        f"weights {path} ({path.stat().st_size / 1e6:.2f} MB)"
    )


def _print_floor(dataset: str, n: int) -> None:
    floor = real_data_floor(dataset, n)
    print(
        f"{dataset} (n={n} real train images vs {floor['reference_size']} test): "
        f"confidence {floor['confidence']:.4f}, coverage {floor['coverage']:.2f}, "
        f"IS {floor['inception_score']:.3f}, FD {floor['frechet_distance']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    """``train-classifiers`` regenerates the shipped weights; ``floor`` prints the real-data floor."""
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib.metrics",
        description="Evaluation classifiers of tutorial_lib.metrics: regenerate the weights "
        "or print the real-data floor of the sample-quality metrics.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train-classifiers", help="train and save the classifiers")
    train.add_argument("--epochs", type=int, default=None, help="default: per data set")
    train.add_argument("--seed", type=int, default=0)
    floor = commands.add_parser("floor", help="print the real-data floor of every metric")
    floor.add_argument("--n", type=int, default=1000, help="real train images to score")
    for command in (train, floor):
        command.add_argument(
            "--datasets", nargs="+", default=list(data.IMAGE_DATASETS), choices=data.IMAGE_DATASETS
        )
    args = parser.parse_args(argv)
    for dataset in args.datasets:
        if args.command == "train-classifiers":
            _train_and_save(dataset, args.epochs, args.seed)
        else:
            _print_floor(dataset, args.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
