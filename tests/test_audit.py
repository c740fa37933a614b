"""tutorial_lib.audit on tiny shapes: ranks, nearest neighbours, the memorisation
audit, class distributions, the reusable small CNN and the energy estimate."""

import itertools

import numpy as np
import pytest

from tutorial_lib import audit


def _brute_probability_below(a, b):
    pairs = list(itertools.product(a, b))
    return sum((x < y) + 0.5 * (x == y) for x, y in pairs) / len(pairs)


def test_probability_below_counts_every_pair_and_ties_half():
    assert audit.probability_below([1, 2], [3, 4]) == 1.0
    assert audit.probability_below([3, 4], [1, 2]) == 0.0
    assert audit.probability_below([1, 1], [1, 1]) == 0.5
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 13), rng.integers(0, 5, 7)  # many ties
    assert audit.probability_below(a, b) == pytest.approx(_brute_probability_below(a, b))
    with pytest.raises(ValueError, match="empty"):
        audit.probability_below([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        audit.probability_below([np.nan], [1.0])


def test_roc_auc_is_one_for_a_perfect_detector_and_half_for_a_useless_one():
    assert audit.roc_auc([0.1, 0.2, 0.3], [0.7, 0.9]) == 1.0
    assert audit.roc_auc([0.7, 0.9], [0.1, 0.2]) == 0.0
    assert audit.roc_auc([0.5] * 4, [0.5] * 3) == 0.5


@pytest.mark.parametrize("shape", [(4, 4, 3), (28, 28, 1), (6,)])
def test_nearest_neighbours_match_a_brute_force_search(shape):
    rng = np.random.default_rng(1)
    queries, references = rng.random((9, *shape)), rng.random((40, *shape))
    distances, indices = audit.nearest_neighbours(queries, references, k=3, chunk=4)
    full = np.sqrt(((queries.reshape(9, 1, -1) - references.reshape(1, 40, -1)) ** 2).sum(-1))
    np.testing.assert_array_equal(indices, np.argsort(full, axis=1)[:, :3])
    np.testing.assert_allclose(distances, np.sort(full, axis=1)[:, :3], rtol=1e-6)


def test_an_exact_copy_is_at_distance_zero_and_relative_distance_zero():
    rng = np.random.default_rng(2)
    references = rng.random((30, 28, 28, 1)).astype(np.float32) * 100  # large norms
    distances, indices = audit.nearest_neighbours(references[[4, 17]], references, k=3)
    assert distances[:, 0].tolist() == [0.0, 0.0] and indices[:, 0].tolist() == [4, 17]
    np.testing.assert_array_equal(audit.relative_distance(distances), [0.0, 0.0])


def test_nearest_neighbours_reject_what_they_cannot_search():
    with pytest.raises(ValueError, match="numbers each"):
        audit.nearest_neighbours(np.zeros((2, 5)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="k must lie"):
        audit.nearest_neighbours(np.zeros((2, 5)), np.zeros((3, 5)), k=4)
    with pytest.raises(ValueError, match="shape"):
        audit.relative_distance(np.ones((3, 1)))


def test_the_memorisation_audit_flags_copies_and_not_new_draws():
    rng = np.random.default_rng(3)
    train, heldout, new = (rng.random((n, 8, 8, 1)) for n in (400, 150, 150))
    copies = np.clip(train[:150] + 0.01 * rng.standard_normal((150, 8, 8, 1)), 0, 1)
    copied = audit.memorisation_audit(copies, train, heldout, runners_up=5)
    assert copied["score"] > 0.99 and copied["copy_rate"] > 0.95
    np.testing.assert_array_equal(copied["nearest"], np.arange(150))
    fresh = audit.memorisation_audit(new, train, heldout, runners_up=5)
    assert 0.4 < fresh["score"] < 0.6 and fresh["copy_rate"] < 0.06
    assert fresh["sample_ratios"].shape == (150,) and fresh["distance"].shape == (150,)


def test_class_fractions_and_total_variation():
    np.testing.assert_allclose(audit.class_fractions([0, 0, 1, 3], 4), [0.5, 0.25, 0, 0.25])
    assert audit.total_variation([1, 0], [0, 1]) == 1.0
    assert audit.total_variation([2, 2], [0.5, 0.5]) == 0.0  # counts or fractions alike
    assert audit.total_variation([0.5, 0.3, 0.2], [0.3, 0.3, 0.4]) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="lie in"):
        audit.class_fractions([0, 10])
    with pytest.raises(ValueError, match="same shape"):
        audit.total_variation([1, 0], [1, 0, 0])


def _bright_and_dark(n, seed):
    rng = np.random.default_rng(seed)
    dark = rng.uniform(0.0, 0.3, (n, 28, 28, 1))
    bright = rng.uniform(0.5, 1.0, (n, 28, 28, 1))
    return dark.astype(np.float32), bright.astype(np.float32)


def test_the_small_cnn_restarts_from_its_seed_and_learns_an_easy_task():
    cnn = audit.SmallCNN(classes=2)
    cnn.reset(5)
    first = [w.copy() for w in cnn.model.get_weights()]
    cnn.reset(6)
    assert not np.allclose(first[0], cnn.model.get_weights()[0])
    cnn.reset(5)
    for a, b in zip(first, cnn.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    dark, bright = _bright_and_dark(32, 0)
    test_dark, test_bright = _bright_and_dark(16, 1)
    auc = audit.detector_auc(cnn, dark, bright, test_dark, test_bright, steps=30, seed=0)
    assert auc > 0.95
    assert int(cnn.model.optimizer.iterations) == 30  # the optimizer restarted too
    x = np.concatenate([test_dark, test_bright])
    y = np.repeat([0, 1], 16)
    assert cnn.accuracy(x, y) > 0.9 and cnn.predict(x).shape == (32, 2)
    with pytest.raises(ValueError, match="same number"):
        cnn.fit(x, y[:3], steps=1, seed=0)


def test_energy_from_seconds_cores_and_power():
    assert audit.cores_of("AMD EPYC, 2 cores, no GPU") == 2
    assert audit.energy_wh(3600, 2, 5.0) == 10.0
    assert audit.energy_wh(60, 1) == pytest.approx(280 / 64 / 60)
    assert "280 W" in audit.POWER_SOURCE and "EPYC 7763" in audit.POWER_SOURCE
    with pytest.raises(ValueError, match="core count"):
        audit.cores_of("a laptop")
    with pytest.raises(ValueError, match="positive power"):
        audit.energy_wh(10, 0)
