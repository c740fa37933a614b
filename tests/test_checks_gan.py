"""The exercise checks of exercise 03: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that
names their mistake, for examples of any rank and logits of +-200."""

import keras
import pytest
from check_helpers import (
    evidence_mistakes_test,
    expect_failure,
    expect_pass,
    mistakes_test,
    no_marks_by_guessing,
    same_verdict_on_a_remote,
    solution,
    task_tests,
    variant,
)

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
    "no ReLU on the real term": (
        [(REAL, "(1.0 - real_scores)")],
        "the ReLU is missing on the real",
    ),
    "no ReLU on the fake term": (
        [(FAKE, "(1.0 + fake_scores)")],
        "the ReLU is missing on the fake",
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
}
if keras.backend.backend() != "torch":  # PyTorch's steps run eagerly: NumPy works there
    HINGE_MISTAKES["NumPy"] = (
        [
            (
                "ops.mean(ops.relu(1.0 - real_scores))",
                "np.mean(np.maximum(0, 1.0 - np.asarray(real_scores)))",
            )
        ],
        "inside a compiled step",
    )


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
    "rank 4 only": (
        [("list(range(1, len(grads.shape)))", "[1, 2, 3] if len(grads.shape) == 4 else [1]")],
        "over axis 1 only",
    ),
    "off by one axis": (
        [("list(range(1, len(grads.shape)))", "list(range(2, len(grads.shape)))")],
        "for examples of shape",
    ),
    # the scores computed before, and a function that returns them: no gradient at all
    # (TensorFlow's None, PyTorch's refusal) or zeros (JAX's)
    "the gradient of scores computed before": (
        [
            (
                "grads = input_gradient(critic, x_hat)",
                "scores = critic(x_hat)\n    grads = input_gradient(lambda x: scores, x_hat)",
            )
        ],
        "is there a gradient at all",
    ),
}


test_penalty_mistakes_are_named = mistakes_test(
    EX, "gradient_penalty", checks.check_gradient_penalty, PENALTY_MISTAKES
)


D_NOISE = "z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)\n\n        def d_loss_fn"
D_STEP = "d_loss, _, _ = self.descend(self.d_optimizer, d_vars, d_loss_fn)"
G_STEP = "g_loss, _, _ = self.descend(self.g_optimizer, g_vars, g_loss_fn)"
GAN_MISTAKES = {
    "noise drawn once and broadcast": (
        [
            (
                D_NOISE,
                "z = ops.broadcast_to(keras.random.normal((1, self.latent_dim), seed=self.seed_generator), (batch, self.latent_dim))\n\n        def d_loss_fn",
            )
        ],
        "drawn once and broadcast",
    ),
    "swapped real and fake": (
        [
            (
                "hinge_d_loss(real_scores, fake_scores)",
                "hinge_d_loss(fake_scores, real_scores)",
            )
        ],
        "swapped",
    ),
    "generator loss with a ReLU": (
        [("return -ops.mean(scores), ()", "return ops.mean(ops.relu(1.0 - scores)), ()")],
        "no ReLU",
    ),
    "generator loss sign": (
        [("return -ops.mean(scores), ()", "return ops.mean(scores), ()")],
        "with a minus sign",
    ),
    "discriminator never updated": (
        [(D_STEP, "d_loss, _ = d_loss_fn()")],
        "discriminator's weights did not change",
    ),
    "discriminator step updates the generator too": (
        [("d_vars = self.discriminator.trainable_variables", "d_vars = self.trainable_variables")],
        "d_optimizer updated",
    ),
    "noise reused between the two steps": (
        [
            (
                "        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)\n\n        def g_loss_fn",
                "        def g_loss_fn",
            )
        ],
        "reused the noise of the discriminator's step",
    ),
    "swapped optimizers": (
        [
            (D_STEP, D_STEP.replace("self.d_optimizer", "self.g_optimizer")),
            (G_STEP, G_STEP.replace("self.g_optimizer", "self.d_optimizer")),
        ],
        "optimizers are swapped",
    ),
    "Keras 2's trainable = False": (
        [
            (
                "g_vars = self.generator.trainable_variables",
                "self.discriminator.trainable = False\n        g_vars = self.trainable_variables",
            )
        ],
        "trainable = False",
    ),
    "generator step updates the discriminator too": (
        [("g_vars = self.generator.trainable_variables", "g_vars = self.trainable_variables")],
        "g_optimizer updated",
    ),
    "no logs": (
        [('return {"d_loss": d_loss, "g_loss": g_loss}', "return None")],
        "'d_loss' and 'g_loss'",
    ),
}


test_hinge_gan_mistakes_are_named = mistakes_test(
    EX, "HingeGAN", checks.check_hinge_gan, GAN_MISTAKES
)


def _evidence(answer, d=None, ratio=None):
    import numpy as np

    d = np.geomspace(1e-3, 0.05, 40) if d is None else d
    return {"D": d, "ratio": d / (1 - d) if ratio is None else ratio, "answer": answer}


SATURATION_MISTAKES = {
    "a number, no evidence": (lambda: 0.0099, "should return a dict"),
    "the logit": (lambda: _evidence(-4.6), "you answered the logit"),
    "the inverse ratio": (
        lambda: _evidence(100 / 101, ratio=(1 - _evidence(0)["D"]) / _evidence(0)["D"]),
        "the other way round",
    ),
    "a curve that was not measured": (
        lambda: _evidence(1 / 101, ratio=_evidence(0)["D"] * 0.5),
        "a rerun of your experiment",
    ),
    "too few points": (
        lambda: _evidence(1 / 101, d=_evidence(0)["D"][::4]),
        "at least 20 points",
    ),
    "a curve that misses the crossing": (
        lambda: _evidence(1 / 101, d=_evidence(0)["D"] * 0.1),
        "cover the ratio's 1% crossing",
    ),
    "an answer not read from the curve": (lambda: _evidence(0.0120), "your own curve"),
    "the 10% crossing": (lambda: _evidence(1 / 11, d=_evidence(0)["D"] * 3), "your own curve"),
}


test_saturation_mistakes_are_named = evidence_mistakes_test(
    checks.check_saturation, SATURATION_MISTAKES
)


def test_saturation_evidence_passes():
    expect_pass(checks.check_saturation(lambda: _evidence(1 / 101), quiet=True))


def test_saturation_gives_no_marks_for_a_constant_or_a_bisection():
    import numpy as np

    """Plain numbers, and numbers dressed as evidence (a made-up straight curve), never
    pass, and no message says which way to move."""
    seen = no_marks_by_guessing(checks.check_saturation, low=0.0, high=0.05)
    seen += no_marks_by_guessing(
        checks.check_saturation,
        lambda g: _evidence(g, ratio=np.linspace(0, 0.05, 40)),
        low=0.0,
        high=0.05,
    )
    assert not any("too large" in m or "too small" in m for m in seen)


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


# --------------------------------------------------------------------------
# While grading: the same verdicts across the process boundary
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mistake",
    [
        ("hinge_d_loss", None),
        ("gradient_penalty", None),
        ("gradient_penalty", PENALTY_MISTAKES["the gradient of scores computed before"][0]),
        ("HingeGAN", None),
        ("HingeGAN", GAN_MISTAKES["swapped optimizers"][0]),
    ],
)
def test_the_remote_path_gives_the_same_verdict(name, mistake):
    """Each check on a Remote (arguments and replies as plain data over the wire, the
    toy critics rebuilt there, the GAN's probe where the learner's code lives) says what it
    says in the notebook."""
    same_verdict_on_a_remote(EX, TASKS[name], name, mistake)
