r"""Auditing generative models in the world (notebook 08): does a model copy its
training data, which classes does it favour, can its images be told from real
ones, does it help a classifier, and what does it cost.

**Ranks.** Several of the lesson's measurements compare two samples of numbers
``a`` and ``b`` by :func:`probability_below`, :math:`P(A < B) + \tfrac12 P(A = B)`
for :math:`A` drawn from ``a`` and :math:`B` from ``b``: the Mann-Whitney
statistic :math:`U / (n m)`. 0.5 means neither tends to be smaller. The area under
a detector's ROC curve is the same number (:func:`roc_auc`): the probability that
a random fake image scores higher than a random real one.

**Memorisation.** A sample's nearest training image (:func:`nearest_neighbours`)
says little on its own: a blurry sample is close to many images. The relative
distance (:func:`relative_distance`) divides the distance to the nearest training
image by the mean distance to the next ``runners_up`` ones: a copy has one training
image far closer than all others, a new image does not. Its memorisation score
(:func:`memorisation_audit`) compares the relative distances of the samples with
those of held-out real images, which the model never saw: 0.5 when the samples sit
as close to the training set as new real images do, 1 when every sample is closer
than every new real image. The relative distance follows the extraction criterion
of Carlini et al. (2023), the comparison with held-out data the data-copying test
of Meehan et al. (2020).

**Classifiers and detectors.** :class:`SmallCNN` is a small convolutional network,
built and compiled once and re-initialised for every training run (so that many
short runs over seeds cost one graph trace). It classifies digits for the
augmentation experiment and separates real from generated images as a detector.

**Energy.** :func:`energy_wh` turns seconds on some CPU cores into watt-hours with
a power figure per core: by default :data:`WATTS_PER_CORE`, the thermal design
power of the processor named in :data:`POWER_SOURCE` divided by its cores.
"""

from __future__ import annotations

import math
import re

import numpy as np
from keras import ops
from scipy.stats import rankdata

from tutorial_lib.data import NUM_CLASSES

# The power figure of the energy estimate: AMD EPYC 7763 (a common cloud EPYC),
# 64 cores, default TDP 280 W, from AMD's product specifications page of the EPYC 7763.
TDP_WATTS, TDP_CORES = 280.0, 64
WATTS_PER_CORE = TDP_WATTS / TDP_CORES
POWER_SOURCE = (
    "AMD EPYC 7763: 64 cores, default TDP 280 W "
    "(AMD's product specifications page of the EPYC 7763, amd.com)"
)


# The sizes of notebook 08's audits, per profile: images drawn per model and seed, how many
# of them the memorisation audit checks against the training set, and the training steps
# of the small classifiers (:class:`SmallCNN`).
SIZES = {
    "fast": {"draws": 60, "audited": 40, "classifier_steps": 10, "detector_steps": 10},
    "cpu": {"draws": 1200, "audited": 300, "classifier_steps": 300, "detector_steps": 200},
    "gpu": {"draws": 3000, "audited": 1000, "classifier_steps": 1000, "detector_steps": 500},
}

# --------------------------------------------------------------------------
# Comparing two samples by ranks
# --------------------------------------------------------------------------


def _values(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) == 0:
        raise ValueError(f"{name} is empty: give at least one value.")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(values)).sum())} NaN/inf values.")
    return values


def probability_below(a, b) -> float:
    """P(A < B) + P(A = B) / 2 for A from ``a`` and B from ``b`` (every pair counted):
    the Mann-Whitney statistic U / (n m), computed from ranks with ties averaged."""
    a, b = _values(a, "a"), _values(b, "b")
    ranks = rankdata(np.concatenate([a, b]))  # ties get the mean of their ranks
    pairs_a_above = ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2
    return float(1.0 - pairs_a_above / (len(a) * len(b)))


def roc_auc(real_scores, fake_scores) -> float:
    """Area under the ROC curve of a detector whose score is higher for fakes: the
    probability that a random fake scores above a random real image (ties count half)."""
    return probability_below(real_scores, fake_scores)


# --------------------------------------------------------------------------
# Nearest neighbours and memorisation
# --------------------------------------------------------------------------


def flat(images) -> np.ndarray:
    """Images (or vectors) of any shape (N, ...) as float32 rows (N, D)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"Expected a batch of shape (N, ...) with N >= 1; got {images.shape}.")
    return images.reshape(len(images), -1)


def nearest_neighbours(queries, references, k: int = 1, *, chunk: int = 256):
    """The ``k`` nearest references of every query in Euclidean distance.

    Returns ``(distances, indices)``, both of shape (N, k), nearest first. The
    candidates come from ``|q|^2 + |r|^2 - 2 q.r`` in float32 (one matrix product
    per ``chunk`` of queries); their distances are then recomputed exactly as
    ``|q - r|`` in float64, so an exact copy is at distance 0, not at the round-off
    of the expansion.
    """
    q, r = flat(queries), flat(references)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} numbers each, references {r.shape[1]}.")
    if not 1 <= k <= len(r):
        raise ValueError(f"k must lie in [1, {len(r)}] (the number of references); got {k}.")
    candidates = min(len(r), k + 8)  # a margin for float32 ties near the k-th
    r_norms = np.einsum("ij,ij->i", r, r)
    distances = np.empty((len(q), k))
    indices = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), chunk):
        block = q[start : start + chunk]
        approx = r_norms[None, :] - 2.0 * (block @ r.T)  # |q|^2 is the same along a row
        near = np.argpartition(approx, candidates - 1, axis=1)[:, :candidates]
        diff = block[:, None, :].astype(np.float64) - r[near].astype(np.float64)
        exact = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        distances[start : start + chunk] = np.take_along_axis(exact, order, axis=1)
        indices[start : start + chunk] = np.take_along_axis(near, order, axis=1)
    return distances, indices


def relative_distance(distances) -> np.ndarray:
    """Per row of nearest-neighbour distances (nearest first, at least 2 columns): the
    nearest distance over the mean of the others. Near 0 for a copy of one reference,
    near 1 for a point about as close to many references."""
    distances = np.asarray(distances, dtype=np.float64)
    if distances.ndim != 2 or distances.shape[1] < 2:
        raise ValueError(f"Expected distances of shape (N, k) with k >= 2; got {distances.shape}.")
    runners_up = distances[:, 1:].mean(axis=1)
    return distances[:, 0] / np.maximum(runners_up, 1e-12)


def memorisation_score(sample_ratios, heldout_ratios) -> float:
    """P(a sample's relative distance < a held-out real image's): 0.5 when the samples
    are as close to the training set as new real images, 1 for copies."""
    return probability_below(sample_ratios, heldout_ratios)


def copy_rate(sample_ratios, heldout_ratios, quantile: float = 0.01) -> float:
    """The fraction of samples closer (in relative distance) to the training set than
    all but ``quantile`` of the held-out real images: ``quantile`` for a model that
    copies nothing, 1 for a copying machine."""
    threshold = np.quantile(_values(heldout_ratios, "heldout_ratios"), quantile)
    return float(np.mean(_values(sample_ratios, "sample_ratios") < threshold))


def memorisation_audit(samples, train, heldout, *, runners_up: int = 10) -> dict:
    """The memorisation audit of a generator from its ``samples``.

    ``train`` holds every image the generator trained on, ``heldout`` real images it
    never saw (from the same data). Returns a dict: ``score``
    (:func:`memorisation_score`), ``copy_rate`` (:func:`copy_rate`), the relative
    distances ``sample_ratios`` and ``heldout_ratios``, and per sample its
    ``nearest`` training image (index) at ``distance``.
    """
    k = runners_up + 1
    sample_d, sample_i = nearest_neighbours(samples, train, k)
    heldout_d, _ = nearest_neighbours(heldout, train, k)
    sample_ratios, heldout_ratios = relative_distance(sample_d), relative_distance(heldout_d)
    return {
        "score": memorisation_score(sample_ratios, heldout_ratios),
        "copy_rate": copy_rate(sample_ratios, heldout_ratios),
        "sample_ratios": sample_ratios,
        "heldout_ratios": heldout_ratios,
        "nearest": sample_i[:, 0],
        "distance": sample_d[:, 0],
    }


# --------------------------------------------------------------------------
# Classes
# --------------------------------------------------------------------------


def class_fractions(labels, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """The fraction of ``labels`` (integers 0..num_classes-1) in each class."""
    labels = np.asarray(labels).ravel()
    if len(labels) == 0:
        raise ValueError("labels is empty.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}; got {labels.min()}..{labels.max()}."
        )
    return np.bincount(labels, minlength=num_classes) / len(labels)


def total_variation(p, q) -> float:
    """Total variation distance between two distributions over the same classes,
    half the summed absolute differences: the largest difference in probability the
    two give to any set of classes (0 when equal, 1 when disjoint)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape; got {p.shape} and {q.shape}.")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


# --------------------------------------------------------------------------
# A small CNN: classifier of the augmentation experiment, real-vs-fake detector
# --------------------------------------------------------------------------


class SmallCNN:
    """A small CNN for 28x28x1 images: conv(8, 3x3, stride 2) - conv(16, stride 2) -
    dense(32) - softmax over ``classes`` outputs. About 26k parameters.

    Built and compiled once; :meth:`fit` re-initialises the weights (Glorot-uniform
    kernels, zero biases, from ``seed``) and Adam's state, then trains ``steps``
    minibatches drawn with replacement. Many short runs thus share one traced graph.
    """

    def __init__(self, classes: int = NUM_CLASSES, *, learning_rate: float = 1e-3):
        import keras

        inputs = keras.Input((28, 28, 1))
        h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
        h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
        h = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(h))
        outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32")(h)
        self.model = keras.Model(inputs, outputs, name="small_cnn")
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy"
        )
        self.classes = classes

    def reset(self, seed: int) -> None:
        """Fresh weights from ``seed`` and a fresh optimizer state."""
        rng = np.random.default_rng(seed)
        for weight in self.model.trainable_weights:
            shape = tuple(weight.shape)
            if len(shape) == 1:
                weight.assign(np.zeros(shape, dtype=np.float32))
                continue
            receptive = math.prod(shape[:-2])
            limit = math.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            weight.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
        for variable in self.model.optimizer.variables:
            if "learning_rate" not in variable.path:
                variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))

    def fit(self, x, y, *, steps: int, seed: int, batch_size: int = 64) -> SmallCNN:
        """Train from scratch (:meth:`reset`) for ``steps`` minibatches of images ``x``
        (N, 28, 28, 1) with integer labels ``y``."""
        x, y = np.asarray(x, dtype=np.float32), np.asarray(y).astype(np.int64)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"x and y must hold the same number (>= 1) of examples; got {len(x)} and {len(y)}."
            )
        self.reset(seed)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            batch = rng.integers(0, len(x), batch_size)
            self.model.train_on_batch(x[batch], y[batch])
        return self

    def predict(self, x, *, batch_size: int = 500) -> np.ndarray:
        """Class probabilities, shape (N, classes)."""
        x = np.asarray(x, dtype=np.float32)
        return np.concatenate(
            [
                ops.convert_to_numpy(self.model.predict_on_batch(x[i : i + batch_size]))
                for i in range(0, len(x), batch_size)
            ]
        )

    def accuracy(self, x, y) -> float:
        """The fraction of ``x`` classified as its label in ``y``."""
        return float(np.mean(self.predict(x).argmax(axis=1) == np.asarray(y)))


def detector_auc(
    detector: SmallCNN, real, fake, real_test, fake_test, *, steps: int, seed: int
) -> float:
    """Train ``detector`` (two classes) to tell ``real`` (label 0) from ``fake`` (label 1)
    images, with as many of each, and return its ROC-AUC on the held-out ``real_test``
    and ``fake_test``."""
    n = min(len(real), len(fake))
    x = np.concatenate([real[:n], fake[:n]])
    y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    detector.fit(x, y, steps=steps, seed=seed)
    return roc_auc(detector.predict(real_test)[:, 1], detector.predict(fake_test)[:, 1])


# --------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------


def cores_of(machine: str) -> int:
    """The core count in a machine description ("AMD EPYC, 2 cores, no GPU" -> 2)."""
    match = re.search(r"(\d+) cores", machine or "")
    if match is None:
        raise ValueError(f"No core count in the machine description {machine!r}.")
    return int(match.group(1))


def energy_wh(seconds: float, cores: int, watts_per_core: float = WATTS_PER_CORE) -> float:
    """Watt-hours of ``seconds`` of work on ``cores`` CPU cores that draw
    ``watts_per_core`` each (the processor alone: memory, cooling and the power
    supply come on top)."""
    if seconds < 0 or cores < 1 or watts_per_core <= 0:
        raise ValueError(
            f"Need seconds >= 0, cores >= 1 and a positive power; got {seconds}, {cores}, "
            f"{watts_per_core}."
        )
    return seconds * cores * watts_per_core / 3600.0
