"""Checks for ``exercises/03_gan.ipynb``.

Each check runs the learner's function on hidden cases and compares it with
the reference in :mod:`tutorial_lib.gan`. When the value is wrong, it also
computes what the usual mistakes would give (labels swapped, the saturating
loss, the penalty at the wrong points, ...) and names the one that matches.
"""

from __future__ import annotations

import keras
import numpy as np

from tutorial_lib.checks import CheckFailed, CheckResult, expect, run_check

RTOL, ATOL = 1e-4, 1e-5


def _logits(n: int, seed: int, scale: float = 2.0) -> np.ndarray:
    """Fixed random logits of shape (n, 1), as a discriminator outputs them."""
    return (scale * np.random.default_rng(seed).standard_normal((n, 1))).astype(np.float32)


def _tensor(x):
    import tensorflow as tf

    return tf.constant(x, dtype=tf.float32)


def _number(value, function_name: str) -> float:
    """The learner's result as a float, or a failure that says what it was instead."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
    except Exception as error:
        raise CheckFailed(
            f"{function_name} returned {type(value).__name__}, which is not a number "
            f"({type(error).__name__}: {error})."
        ) from None
    expect(
        array.ndim == 0 or array.size == 1 and array.ndim == 1,
        f"{function_name} should return a single number (the mean over the batch), got an "
        f"array of shape {array.shape}: average with keras.ops.mean (or tf.reduce_mean).",
    )
    return float(array.reshape(()))


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=RTOL, atol=ATOL))


def _expect_value(got: float, expected: float, mistakes: dict, advice: str) -> None:
    """Fail naming the first of ``mistakes`` (message -> the value that mistake gives)
    that ``got`` matches; otherwise fail with ``advice`` unless ``got`` is ``expected``."""
    for mistake, wrong in mistakes.items():
        expect(not _close(got, wrong), f"got {got:.4f}, expected {expected:.4f}: {mistake}.")
    expect(_close(got, expected), advice)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), exactly, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.logaddexp(0.0, x)


def _bce(label: float, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of logits against one label (float64 reference)."""
    return float(np.mean(label * _softplus(-logits) + (1.0 - label) * _softplus(logits)))


def _bce_on_probabilities(label: float, values: np.ndarray) -> float:
    """What Keras's BCE gives when the logits are wrongly passed as probabilities."""
    one, eps = np.float32(1.0), np.float32(1e-7)  # Keras clips in float32
    p = np.clip(np.asarray(values, dtype=np.float32), eps, one - eps)
    terms = label * np.log(p) + (1.0 - label) * np.log(one - p)
    return float(np.mean(-terms.astype(np.float64)))


def _in_graph(function, *args):
    """Run ``function`` inside a ``tf.function``, as a train_step does."""
    import tensorflow as tf

    return tf.function(function)(*args)


def _graph_case(function, function_name: str, *args):
    try:
        _in_graph(function, *args)
    except Exception as error:  # NotImplementedError too: NumPy on a symbolic tensor raises it
        raise CheckFailed(
            f"{function_name} fails inside a tf.function (as in a train_step): "
            f"{type(error).__name__}: {str(error)[:200]}. Compute with keras.ops (or tf) "
            "on the tensors; no NumPy, no .numpy(), no float(...)."
        ) from None


# --------------------------------------------------------------------------
# Task 1: the discriminator's loss
# --------------------------------------------------------------------------


def check_discriminator_loss(discriminator_loss, *, quiet: bool = False) -> CheckResult:
    """``discriminator_loss(real_logits, fake_logits)``: binary cross-entropy from logits,
    label 1 for the real images and 0 for the fakes, the two batch means added."""
    name = getattr(discriminator_loss, "__name__", "discriminator_loss")
    real, fake = _logits(32, 0) + 0.5, _logits(32, 1) - 0.5

    def value(r, f) -> float:
        return _number(discriminator_loss(_tensor(r), _tensor(f)), name)

    def one_number():
        value(real, fake)

    def matches_the_cross_entropy():
        got = value(real, fake)
        expected = _bce(1.0, real) + _bce(0.0, fake)
        mistakes = {
            "the labels are swapped: real images must get label 1 and the fakes label 0 "
            "(D learns to say 'real' with a high logit)": _bce(0.0, real) + _bce(1.0, fake),
            "you averaged the two terms: add the real and the fake cross-entropies "
            "(the lesson's L_D is their sum)": expected / 2,
            "you treated the logits as probabilities: the discriminator outputs logits, so "
            "use from_logits=True (or sigmoid_cross_entropy_with_logits)": _bce_on_probabilities(
                1.0, real
            )
            + _bce_on_probabilities(0.0, fake),
            "only the real images count: add the cross-entropy of the fakes with label 0": _bce(
                1.0, real
            ),
            "only the fakes count: add the cross-entropy of the real images with label 1": _bce(
                0.0, fake
            ),
            "you summed over the batch: take the mean over the images instead": len(real)
            * expected,
        }
        _expect_value(
            got,
            expected,
            mistakes,
            f"got {got:.4f} for 32 real and 32 fake logits, expected {expected:.4f}: compute "
            "BCE(1, real_logits) + BCE(0, fake_logits), each a mean over the batch, from logits.",
        )

    def perfect_discriminator_has_zero_loss():
        got = value(np.full((8, 1), 30.0, np.float32), np.full((8, 1), -30.0, np.float32))
        expect(
            np.isfinite(got) and got < 1e-6,
            f"a discriminator that is sure and right (real logits +30, fake logits -30) should "
            f"have a loss of about 0, got {got:.4g}.",
        )

    def confident_mistakes_stay_finite():
        got = value(np.full((8, 1), -200.0, np.float32), np.full((8, 1), 200.0, np.float32))
        expect(
            np.isfinite(got) and abs(got - 400.0) < 1e-2,
            f"for logits of the wrong sign and size 200 the loss should be 400 (200 per term), "
            f"got {got:.4g}: computing log(sigmoid(l)) overflows; use the cross-entropy "
            "from logits (from_logits=True), which is exact.",
        )

    def works_in_a_train_step():
        _graph_case(discriminator_loss, name, _tensor(real), _tensor(fake))

    cases = [
        one_number,
        matches_the_cross_entropy,
        perfect_discriminator_has_zero_loss,
        confident_mistakes_stay_finite,
        works_in_a_train_step,
    ]
    return run_check("check_discriminator_loss", discriminator_loss, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 2: the generator's (non-saturating) loss
# --------------------------------------------------------------------------


def check_generator_loss(generator_loss, *, quiet: bool = False) -> CheckResult:
    """``generator_loss(fake_logits)``: the non-saturating loss -mean log sigmoid(D(G(z))),
    i.e. binary cross-entropy from logits with label 1 for the fakes."""
    name = getattr(generator_loss, "__name__", "generator_loss")
    fake = _logits(32, 2) - 1.0

    def value(f) -> float:
        return _number(generator_loss(_tensor(f)), name)

    def one_number():
        value(fake)

    def is_non_saturating():
        got = value(fake)
        expected = _bce(1.0, fake)
        mistakes = {
            "this is the saturating loss mean log(1 - D(G(z))) of the minimax game; its "
            "gradient vanishes when D rejects the fakes. Use the non-saturating "
            "-mean log D(G(z)): the cross-entropy with label 1": -_bce(0.0, fake),
            "you gave the fakes label 0: that trains the generator to be caught. The "
            "generator wants D to say 'real': use label 1": _bce(0.0, fake),
            "you treated the logits as probabilities: use from_logits=True": _bce_on_probabilities(
                1.0, fake
            ),
            "you summed over the batch: take the mean over the images instead": len(fake)
            * expected,
        }
        _expect_value(
            got,
            expected,
            mistakes,
            f"got {got:.4f}, expected {expected:.4f}: compute the mean binary cross-entropy of "
            "the fake logits with label 1, from logits.",
        )

    def has_a_gradient_when_d_wins():
        import tensorflow as tf

        logits = tf.Variable(np.full((16, 1), -8.0, np.float32))  # D rejects every fake
        with tf.GradientTape() as tape:
            loss = generator_loss(logits)
        grad = tape.gradient(loss, logits)
        expect(
            grad is not None,
            "no gradient flows from your loss to the logits: compute it with keras.ops or tf "
            "on the tensor, not with NumPy.",
        )
        slope = float(np.mean(grad.numpy())) * 16
        expect(
            slope < -0.9,
            f"when D rejects every fake (logits -8) the loss should still push the logits up "
            f"with slope about -1 per image; yours has {slope:.2g}: the loss saturates.",
        )

    def confident_rejection_stays_finite():
        got = value(np.full((8, 1), -200.0, np.float32))
        expect(
            np.isfinite(got) and abs(got - 200.0) < 1e-2,
            f"for fake logits of -200 the loss should be 200, got {got:.4g}: log(sigmoid(l)) "
            "underflows to log(0); use the cross-entropy from logits (from_logits=True).",
        )

    def works_in_a_train_step():
        _graph_case(generator_loss, name, _tensor(fake))

    cases = [
        one_number,
        is_non_saturating,
        has_a_gradient_when_d_wins,
        confident_rejection_stays_finite,
        works_in_a_train_step,
    ]
    return run_check("check_generator_loss", generator_loss, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 3: WGAN-GP's gradient penalty
# --------------------------------------------------------------------------


class _QuadraticCritic:
    """f(x) = sum(w * x^2) per image: its gradient 2 w x depends on where it is taken."""

    def __init__(self, seed: int = 0):
        self.w = np.random.default_rng(seed).uniform(0.0, 0.1, (1, 28, 28, 1)).astype(np.float32)

    def __call__(self, x):
        return keras.ops.sum(self.w * keras.ops.square(x), axis=(1, 2, 3))[:, None]


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 28, 28, 1)).astype(np.float32)


def _penalties(critic: _QuadraticCritic, real, fake, epsilon) -> dict[str, float]:
    """The penalty at the right points and at the points of common mistakes (float64)."""

    def grads_at(x):
        return 2.0 * critic.w.astype(np.float64) * x.astype(np.float64)

    def penalty(grads, *, per_image=True, root=True, minus_one=True):
        axes = (1, 2, 3) if per_image else None
        squares = np.sum(np.square(grads), axis=axes)
        norms = np.sqrt(squares) if root else squares
        return float(np.mean(np.square(norms - (1.0 if minus_one else 0.0))))

    e = epsilon.astype(np.float64)
    at_interpolates = grads_at(e * real + (1 - e) * fake)
    return {
        "right": penalty(at_interpolates),
        "mirrored": penalty(grads_at(e * fake + (1 - e) * real)),
        "real": penalty(grads_at(real)),
        "fake": penalty(grads_at(fake)),
        "midpoint": penalty(grads_at(0.5 * real + 0.5 * fake)),
        "no_minus_one": penalty(at_interpolates, minus_one=False),
        "no_root": penalty(at_interpolates, root=False),
        "batch_norm": penalty(at_interpolates, per_image=False),
    }


def check_gradient_penalty(gradient_penalty, *, quiet: bool = False) -> CheckResult:
    """``gradient_penalty(critic, real, fake, epsilon)``: the mean over images of
    (||grad f(x_hat)||_2 - 1)^2 at x_hat = epsilon * real + (1 - epsilon) * fake."""
    name = getattr(gradient_penalty, "__name__", "gradient_penalty")
    real, fake = _images(8, 0), _images(8, 1)
    epsilon = np.random.default_rng(2).uniform(0.0, 1.0, (8, 1, 1, 1)).astype(np.float32)
    critic = _QuadraticCritic()

    def value(c, r, f, e) -> float:
        return _number(gradient_penalty(c, _tensor(r), _tensor(f), _tensor(e)), name)

    watch_hint = (
        "is there a gradient at all? Inside `with tf.GradientTape() as tape:` call "
        "tape.watch(x_hat) before the critic sees x_hat, so the tape records it"
    )

    def one_number():
        try:
            got = value(critic, real, fake, epsilon)
        except CheckFailed:
            raise
        except NotImplementedError:
            raise
        except Exception as error:
            if "None" not in str(error):
                raise
            raise CheckFailed(
                f"{name} raised {type(error).__name__}: {str(error)[:120]}: {watch_hint}."
            ) from None
        expect(np.isfinite(got), f"{name} returned {got}: {watch_hint}.")
        again = value(critic, real, fake, epsilon)
        expect(
            _close(got, again),
            f"two calls with the same epsilon gave different penalties ({got:.5f}, {again:.5f}): "
            "use the epsilon argument instead of drawing your own random numbers.",
        )

    def penalises_the_gradient_at_interpolates():
        got = value(critic, real, fake, epsilon)
        p = _penalties(critic, real, fake, epsilon)
        if _close(got, p["mirrored"]):
            return  # epsilon * fake + (1 - epsilon) * real: as good, epsilon is uniform
        mistakes = {
            "real": "you took the gradient at the real images: take it at the interpolates "
            "x_hat = epsilon * real + (1 - epsilon) * fake",
            "fake": "you took the gradient at the fakes: take it at the interpolates "
            "x_hat = epsilon * real + (1 - epsilon) * fake",
            "midpoint": "you took the midpoints (real + fake) / 2: use the epsilon given, "
            "x_hat = epsilon * real + (1 - epsilon) * fake",
            "no_minus_one": "you penalised the squared norm ||grad||^2: the penalty is "
            "(||grad|| - 1)^2, pulling the norm towards 1, not 0",
            "no_root": "you used the squared norm: take the square root of the sum of squares "
            "before subtracting 1",
            "batch_norm": "you took one norm over the whole batch: compute one norm per image "
            "(sum the squares over axes 1, 2, 3), then average the penalties",
        }
        for key, mistake in mistakes.items():
            expect(not _close(got, p[key]), f"got {got:.5f}, expected {p['right']:.5f}: {mistake}.")
        expect(
            _close(got, p["right"]),
            f"got {got:.5f} on a toy critic, expected {p['right']:.5f}: take the gradient of the "
            "critic's scores w.r.t. x_hat = epsilon * real + (1 - epsilon) * fake, its L2 norm per "
            "image, and the mean of (norm - 1)^2.",
        )

    def uses_the_given_epsilon():
        for other in (np.zeros_like(epsilon), np.ones_like(epsilon)):
            got = value(critic, real, fake, other)
            p = _penalties(critic, real, fake, other)
            expect(
                _close(got, p["right"]) or _close(got, p["mirrored"]),
                "with epsilon = 0 (or 1) for every image the penalty should be the one at the "
                f"fakes (or the real images), {p['right']:.5f}; got {got:.5f}: use the epsilon "
                "argument instead of drawing your own.",
            )

    def a_linear_critic_with_unit_slope_costs_nothing():
        w = np.random.default_rng(3).standard_normal((1, 28, 28, 1)).astype(np.float32)
        w /= np.linalg.norm(w)

        def unit_critic(x):
            return keras.ops.sum(w * x, axis=(1, 2, 3))[:, None]

        got = value(unit_critic, real, fake, epsilon)
        expect(
            abs(got) < 1e-4,
            f"a linear critic whose gradient has norm exactly 1 everywhere should get a penalty "
            f"of 0, got {got:.4g}.",
        )

    def penalty_trains_the_critic():
        import tensorflow as tf

        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(4, "tanh"),
                keras.layers.Dense(1),
            ]
        )
        with tf.GradientTape() as tape:
            penalty = gradient_penalty(model, _tensor(real), _tensor(fake), _tensor(epsilon))
        kernels = [v for v in model.trainable_variables if "kernel" in v.path]
        grads = tape.gradient(penalty, kernels)  # (the last bias never changes a gradient)
        expect(
            all(g is not None for g in grads),
            "the penalty has no gradient w.r.t. the critic's weights, so it cannot train the "
            "critic: keep the whole computation in tf / keras.ops (no NumPy) and do not stop "
            "the gradient.",
        )

    def works_in_a_train_step():
        _graph_case(
            lambda r, f, e: gradient_penalty(critic, r, f, e),
            name,
            _tensor(real),
            _tensor(fake),
            _tensor(epsilon),
        )

    cases = [
        one_number,
        penalises_the_gradient_at_interpolates,
        uses_the_given_epsilon,
        a_linear_critic_with_unit_slope_costs_nothing,
        penalty_trains_the_critic,
        works_in_a_train_step,
    ]
    return run_check("check_gradient_penalty", gradient_penalty, cases, quiet=quiet)
