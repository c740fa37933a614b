"""The exercise checks of exercise 03: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that
names their mistake, for examples of any rank and logits of +-200."""

from check_helpers import expect_failure, expect_pass, mistakes_test, solution, task_tests, variant

from tutorial_lib.checks import gan as checks

EX = "03_gan"
TASKS = {
    "hinge_d_loss": checks.check_hinge_d_loss,
    "gradient_penalty": checks.check_gradient_penalty,
    "HingeGAN": checks.check_hinge_gan,
    "saturation_experiment": checks.check_saturation,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


REAL = "ops.relu(1.0 - real_scores)"
FAKE = "ops.relu(1.0 + fake_scores)"
HINGE_MISTAKES = {
    "no ReLU": (
        [(REAL, "(1.0 - real_scores)"), (FAKE, "(1.0 + fake_scores)")],
        "the ReLU is missing",
    ),
    "signs swapped": (
        [(REAL, "ops.relu(1.0 + real_scores)"), (FAKE, "ops.relu(1.0 - fake_scores)")],
        "swapped",
    ),
    "no margin": ([(REAL, "ops.relu(-real_scores)"), (FAKE, "ops.relu(fake_scores)")], "margin"),
    "averaged": (
        [("return real_term + fake_term", "return (real_term + fake_term) / 2")],
        "averaged",
    ),
    "summed over the batch": (
        [
            ("ops.mean(ops.relu(1.0 - real", "ops.sum(ops.relu(1.0 - real"),
            ("ops.mean(ops.relu(1.0 + fake", "ops.sum(ops.relu(1.0 + fake"),
        ],
        "summed over the batch",
    ),
    "ReLU of the means": (
        [
            ("ops.mean(ops.relu(1.0 - real_scores))", "ops.relu(1.0 - ops.mean(real_scores))"),
            ("ops.mean(ops.relu(1.0 + fake_scores))", "ops.relu(1.0 + ops.mean(fake_scores))"),
        ],
        "ReLU of the batch means",
    ),
    "NumPy": (
        [
            (
                "ops.mean(ops.relu(1.0 - real_scores))",
                "np.mean(np.maximum(0, 1.0 - np.asarray(real_scores)))",
            )
        ],
        "inside a tf.function",
    ),
}


test_hinge_mistakes_are_named = mistakes_test(
    EX, "hinge_d_loss", checks.check_hinge_d_loss, HINGE_MISTAKES
)


PENALTY_MISTAKES = {
    "one-sided": ([("ops.square(norms - 1.0)", "ops.square(ops.relu(norms - 1.0))")], "one-sided"),
    "at the real examples": (
        [("x_hat = epsilon * real + (1.0 - epsilon) * fake", "x_hat = real + 0 * epsilon")],
        "at the real examples",
    ),
    "squared norm": ([("ops.square(norms - 1.0)", "ops.square(norms)")], "towards 1, not 0"),
    "no square root": (
        [
            (
                "ops.sqrt(ops.sum(ops.square(grads), axis=example_axes) + 1e-12)",
                "ops.sum(ops.square(grads), axis=example_axes)",
            )
        ],
        "square root",
    ),
    "one norm for the batch": ([("axis=example_axes", "axis=None")], "whole batch"),
    "the lesson's image axes": ([("list(range(1, len(grads.shape)))", "[1, 2, 3]")], "raised"),
    "first axis only": ([("list(range(1, len(grads.shape)))", "[1]")], "over axis 1 only"),
    "no tape.watch": ([("        tape.watch(x_hat)\n", "")], "watch the interpolates"),
}


test_penalty_mistakes_are_named = mistakes_test(
    EX, "gradient_penalty", checks.check_gradient_penalty, PENALTY_MISTAKES
)


D_NOISE = "        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)\n        with tf.GradientTape() as tape:\n            fake"
GAN_MISTAKES = {
    "noise drawn once and broadcast": (
        [
            (
                D_NOISE,
                "        z = ops.broadcast_to(keras.random.normal((1, self.latent_dim), seed=self.seed_generator), (batch, self.latent_dim))\n        with tf.GradientTape() as tape:\n            fake",
            )
        ],
        "drawn once and broadcast",
    ),
    "swapped real and fake": (
        [
            (
                "self.discriminator(real, training=True), self.discriminator(fake, training=True)",
                "self.discriminator(fake, training=True), self.discriminator(real, training=True)",
            )
        ],
        "swapped",
    ),
    "generator loss with a ReLU": (
        [("g_loss = -ops.mean(scores)", "g_loss = ops.mean(ops.relu(1.0 - scores))")],
        "no ReLU",
    ),
    "generator loss sign": (
        [("g_loss = -ops.mean(scores)", "g_loss = ops.mean(scores)")],
        "with a minus sign",
    ),
    "discriminator never updated": (
        [("self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)", "pass")],
        "discriminator's weights did not change",
    ),
    "discriminator step updates the generator too": (
        [("d_vars = self.discriminator.trainable_variables", "d_vars = self.trainable_variables")],
        "did the discriminator's step also update the generator",
    ),
    "no logs": (
        [('return {"d_loss": d_loss, "g_loss": g_loss}', "return None")],
        "'d_loss' and 'g_loss'",
    ),
}


test_hinge_gan_mistakes_are_named = mistakes_test(
    EX, "HingeGAN", checks.check_hinge_gan, GAN_MISTAKES
)


def test_saturation_answers():
    import numpy as np

    expect_pass(checks.check_saturation(lambda: 0.01, quiet=True))
    expect_failure(
        checks.check_saturation(lambda: np.log(0.01), quiet=True), "you answered the logit"
    )
    expect_failure(checks.check_saturation(lambda: 0.99, quiet=True), "the other way round")
    expect_failure(checks.check_saturation(lambda: 0.1, quiet=True), "too large")
    expect_failure(
        checks.check_saturation(lambda: np.array([0.01, 0.02]), quiet=True), "expected one number"
    )


def test_a_wrong_hinge_loss_counts_only_in_its_own_task():
    namespace = solution(EX, "HingeGAN").train_step.__globals__
    right = namespace["hinge_d_loss"]
    namespace["hinge_d_loss"] = variant(
        EX, "hinge_d_loss", ("ops.relu(1.0 - real_scores)", "(1.0 - real_scores)")
    )
    try:
        expect_failure(checks.check_hinge_d_loss(namespace["hinge_d_loss"], quiet=True))
        expect_pass(checks.check_hinge_gan(solution(EX, "HingeGAN"), quiet=True))
    finally:
        namespace["hinge_d_loss"] = right
