"""The exercise checks of notebook 03: the reference passes, stubs are 'not attempted',
and the usual wrong answers fail with the message that names the mistake."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from check_helpers import expect_failure, stub
from keras import ops

from tutorial_lib import gan
from tutorial_lib.checks import NOT_ATTEMPTED, PASSED
from tutorial_lib.checks import gan as checks


def bce(labels, logits):
    """Mean cross-entropy from logits, as a learner would write it."""
    return ops.mean(
        ops.binary_crossentropy(ops.full_like(logits, labels), logits, from_logits=True)
    )


ALL_CHECKS = [
    checks.check_discriminator_loss,
    checks.check_generator_loss,
    checks.check_gradient_penalty,
]
REFERENCES = [gan.discriminator_loss, gan.generator_loss, gan.gradient_penalty]


@pytest.mark.parametrize("check, reference", list(zip(ALL_CHECKS, REFERENCES, strict=True)))
def test_the_reference_solution_passes(check, reference, capsys):
    result = check(reference)
    assert result.status == PASSED, result
    assert capsys.readouterr().out.startswith("[pass]")


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_a_stub_is_not_attempted_yet(check):
    result = check(stub, quiet=True)
    assert result.status == NOT_ATTEMPTED
    assert "not attempted yet" in str(result) and "stub" in str(result)


# -- Task 1: the discriminator's loss -----------------------------------------


def test_a_learner_solution_with_tf_nn_passes():
    def d_loss(real_logits, fake_logits):
        real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
        fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
        return tf.reduce_mean(real) + tf.reduce_mean(fake)

    assert checks.check_discriminator_loss(d_loss, quiet=True).passed


def test_discriminator_loss_with_swapped_labels():
    expect_failure(
        checks.check_discriminator_loss(lambda r, f: bce(0.0, r) + bce(1.0, f), quiet=True),
        "the labels are swapped",
        "real images must get label 1",
    )


def test_discriminator_loss_on_probabilities():
    def probabilities(real_logits, fake_logits):
        loss = keras.losses.BinaryCrossentropy()  # from_logits=False, as in seed 002
        return loss(ops.ones_like(real_logits), real_logits) + loss(
            ops.zeros_like(fake_logits), fake_logits
        )

    expect_failure(
        checks.check_discriminator_loss(probabilities, quiet=True),
        "treated the logits as probabilities",
        "from_logits=True",
    )


def test_discriminator_loss_averaging_the_two_terms():
    expect_failure(
        checks.check_discriminator_loss(lambda r, f: (bce(1.0, r) + bce(0.0, f)) / 2, quiet=True),
        "you averaged the two terms",
    )


def test_discriminator_loss_forgetting_the_fakes():
    expect_failure(
        checks.check_discriminator_loss(lambda r, f: bce(1.0, r), quiet=True),
        "only the real images count",
    )


def test_discriminator_loss_per_image():
    def per_image(real_logits, fake_logits):
        return ops.binary_crossentropy(
            ops.ones_like(real_logits), real_logits, from_logits=True
        ) + ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True)

    expect_failure(
        checks.check_discriminator_loss(per_image, quiet=True),
        "should return a single number",
        "shape (32, 1)",
    )


def test_discriminator_loss_via_log_sigmoid_overflows():
    def naive(real_logits, fake_logits):
        return -ops.mean(ops.log(ops.sigmoid(real_logits))) - ops.mean(
            ops.log(1.0 - ops.sigmoid(fake_logits))
        )

    expect_failure(checks.check_discriminator_loss(naive, quiet=True), "overflows", "from_logits")


def test_discriminator_loss_in_numpy_fails_in_a_train_step():
    def with_numpy(real_logits, fake_logits):
        r, f = np.asarray(real_logits, np.float64), np.asarray(fake_logits, np.float64)
        return np.mean(np.logaddexp(0, -r)) + np.mean(np.logaddexp(0, f))

    expect_failure(
        checks.check_discriminator_loss(with_numpy, quiet=True), "inside a tf.function", "NumPy"
    )


# -- Task 2: the generator's loss ---------------------------------------------


def test_the_saturating_generator_loss():
    expect_failure(
        checks.check_generator_loss(lambda f: -bce(0.0, f), quiet=True),
        "this is the saturating loss",
        "non-saturating",
    )


def test_generator_loss_with_label_zero():
    expect_failure(
        checks.check_generator_loss(lambda f: bce(0.0, f), quiet=True),
        "you gave the fakes label 0",
        "use label 1",
    )


def test_generator_loss_summed_over_the_batch():
    expect_failure(
        checks.check_generator_loss(lambda f: ops.sum(bce(1.0, f)) * 32, quiet=True),
        "you summed over the batch",
    )


def test_generator_loss_via_log_sigmoid_underflows():
    # Right value for moderate logits, but log(sigmoid(-200)) = log(0).
    expect_failure(
        checks.check_generator_loss(lambda f: -ops.mean(ops.log(ops.sigmoid(f))), quiet=True),
        "underflows",
    )


# -- Task 3: the gradient penalty ---------------------------------------------


def penalty(critic, real, fake, epsilon, *, points="interpolates", per_image=True, minus=1.0):
    """The gradient penalty with one deliberate mistake switched on."""
    x_hat = {
        "interpolates": epsilon * real + (1.0 - epsilon) * fake,
        "mirrored": epsilon * fake + (1.0 - epsilon) * real,
        "real": real,
        "fake": fake,
    }[points]
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat)
    grads = tape.gradient(scores, x_hat)
    if per_image:
        norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    else:
        norms = tf.norm(grads)
    return tf.reduce_mean(tf.square(norms - minus))


def test_penalty_with_mirrored_interpolates_passes():
    result = checks.check_gradient_penalty(
        lambda c, r, f, e: penalty(c, r, f, e, points="mirrored"), quiet=True
    )
    assert result.passed, result


def test_penalty_at_the_real_images():
    expect_failure(
        checks.check_gradient_penalty(
            lambda c, r, f, e: penalty(c, r, f, e, points="real"), quiet=True
        ),
        "you took the gradient at the real images",
        "interpolates",
    )


def test_penalty_at_the_fakes():
    expect_failure(
        checks.check_gradient_penalty(
            lambda c, r, f, e: penalty(c, r, f, e, points="fake"), quiet=True
        ),
        "you took the gradient at the fakes",
    )


def test_penalty_pulling_the_norm_to_zero():
    expect_failure(
        checks.check_gradient_penalty(
            lambda c, r, f, e: penalty(c, r, f, e, minus=0.0), quiet=True
        ),
        "(||grad|| - 1)^2",
    )


def test_penalty_with_one_norm_for_the_batch():
    expect_failure(
        checks.check_gradient_penalty(
            lambda c, r, f, e: penalty(c, r, f, e, per_image=False), quiet=True
        ),
        "one norm per image",
    )


def test_penalty_with_its_own_epsilon():
    def own_random(critic, real, fake, epsilon):
        return penalty(critic, real, fake, tf.random.uniform(tf.shape(epsilon)))

    expect_failure(
        checks.check_gradient_penalty(own_random, quiet=True), "use the epsilon argument"
    )


def test_penalty_without_tape_watch():
    def unwatched(critic, real, fake, epsilon):
        x_hat = epsilon * real + (1.0 - epsilon) * fake
        with tf.GradientTape() as tape:
            scores = critic(x_hat)
        grads = tape.gradient(scores, x_hat)  # None: x_hat is not a variable
        return tf.reduce_mean(tf.square(tf.norm(grads, axis=[1, 2]) - 1.0))

    expect_failure(checks.check_gradient_penalty(unwatched, quiet=True), "tape.watch(x_hat)")


def test_penalty_computed_in_numpy_cannot_train_the_critic():
    def detached(critic, real, fake, epsilon):
        return tf.stop_gradient(penalty(critic, real, fake, epsilon))

    expect_failure(
        checks.check_gradient_penalty(detached, quiet=True), "no gradient w.r.t. the critic"
    )
