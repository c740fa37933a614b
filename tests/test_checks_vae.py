"""The exercise checks of exercise 02: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that names
their mistake, for codes of any rank, RGB-shaped images and tiny float32 variances."""

import numpy as np
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

from tutorial_lib.backend import backend
from tutorial_lib.checks import vae as checks

EX = "02_vae"
TASKS = {
    "gaussian_kl": checks.check_gaussian_kl,
    "gaussian_nll": checks.check_gaussian_nll,
    "GaussianVAE": checks.check_gaussian_vae,
    "decoder_variance_experiment": checks.check_decoder_variance,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


SUM = "ops.sum(per_dim, axis=list(range(1, len(ops.shape(per_dim)))))"
KL_MISTAKES = {
    "KL(p || q)": (
        [
            (
                "def gaussian_kl(mu_q, log_var_q, mu_p, log_var_p):",
                "def gaussian_kl(mu_p, log_var_p, mu_q, log_var_q):",
            )
        ],
        "not symmetric",
    ),
    "averaged over dimensions": (
        [(SUM, "ops.mean(per_dim, axis=list(range(1, len(ops.shape(per_dim)))))")],
        "averaged over the dimensions",
    ),
    "no 1/2": ([("per_dim = 0.5 * (", "per_dim = (")], "1/2 is missing"),
    "no -1": ([("distance - 1.0)", "distance)")], "-1 of each dimension"),
    "last axis only": ([(SUM, "ops.sum(per_dim, axis=-1)")], "sum over axis=list(range(1, ndim))"),
    "naive variance ratio": (
        [("ops.exp(log_var_q - log_var_p)", "ops.exp(log_var_q) / ops.exp(log_var_p)")],
        "log space",
    ),
    "squeezed (a batch of one)": ([(f"return {SUM}", f"return ops.squeeze({SUM})")], "(1, 7)"),
    "axis 1 only": ([(SUM, "ops.sum(per_dim, axis=1)")], "sum over axis=list(range(1, ndim))"),
}


test_kl_mistakes_are_named = mistakes_test(EX, "gaussian_kl", checks.check_gaussian_kl, KL_MISTAKES)

KL_WITH_NUMPY = [(SUM, "np.sum(np.asarray(per_dim), axis=tuple(range(1, np.ndim(per_dim))))")]


@pytest.mark.skipif(
    backend() == "torch", reason="PyTorch runs a train_step eagerly: NumPy on its tensors works"
)
def test_kl_with_numpy_is_named_where_steps_are_compiled():
    """NumPy on a tensor fails only where the step is compiled (TensorFlow, JAX)."""
    wrong = variant(EX, "gaussian_kl", *KL_WITH_NUMPY)
    expect_failure(
        checks.check_gaussian_kl(wrong, quiet=True), "compiled step (tf.function or jax.jit"
    )


NLL_MISTAKES = {
    "no log 2 pi": ([("np.log(2 * np.pi) + log_var", "log_var")], "log(2 pi)"),
    "averaged over pixels": (
        [
            (
                "ops.sum(per_value, axis=list(range(1, len(ops.shape(per_value)))))",
                "ops.mean(per_value, axis=list(range(1, len(ops.shape(per_value)))))",
            )
        ],
        "averaged over the values",
    ),
    "no 1/2": ([("per_value = 0.5 * (", "per_value = (")], "1/2 is missing"),
    "divided by sigma": ([("ops.exp(-log_var)", "ops.exp(-0.5 * log_var)")], "standard deviation"),
    "log-likelihood": ([("return ops.sum(", "return -ops.sum(")], "its negative"),
    "summed over the batch too": (
        [
            (
                "ops.sum(per_value, axis=list(range(1, len(ops.shape(per_value)))))",
                "ops.sum(per_value)",
            )
        ],
        "one value per example",
    ),
    "image axes fixed": (
        [("axis=list(range(1, len(ops.shape(per_value))))", "axis=[1, 2, 3]")],
        "not a fixed list of image axes",
    ),
}


test_nll_mistakes_are_named = mistakes_test(
    EX, "gaussian_nll", checks.check_gaussian_nll, NLL_MISTAKES
)


def test_nll_of_the_squared_error_alone_is_named():
    def mse(x, mean, log_var):
        return np.sum((np.asarray(x, np.float64) - np.asarray(mean)) ** 2, axis=(1, 2, 3))

    expect_failure(checks.check_gaussian_nll(mse, quiet=True), "squared error alone")


EPS = "epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)"
VAE_MISTAKES = {
    "noise drawn once and broadcast": (
        [
            (
                EPS,
                "epsilon = keras.random.normal((1, ops.shape(z_mean)[1]), seed=self.seed_generator)",
            )
        ],
        "drawn once and broadcast",
    ),
    "scaled by the variance": (
        [("ops.exp(0.5 * z_log_var) * epsilon", "ops.exp(z_log_var) * epsilon")],
        "scaled by the variance",
    ),
    "no noise": ([("z = z_mean + ops.exp(0.5 * z_log_var) * epsilon", "z = z_mean")], "z = z_mean"),
    "beta on the reconstruction": (
        [("reconstruction + self.beta * kl", "self.beta * reconstruction + kl")],
        "beta multiplies the reconstruction",
    ),
    "KL averaged over latent dimensions": (
        [
            (
                "kl = gaussian_kl(z_mean, z_log_var, prior, prior)",
                "kl = gaussian_kl(z_mean, z_log_var, prior, prior) / 3",
            )
        ],
        "averaged over the latent dimensions",
    ),
    "summed over the batch": (
        [
            (
                "loss = ops.mean(reconstruction + self.beta * kl)",
                "loss = ops.sum(reconstruction + self.beta * kl)",
            )
        ],
        "summed over the batch",
    ),
    "update from the loss summed over the batch": (  # (the mean reported, the sum descended)
        [
            (
                "return loss, (reconstruction, kl)",
                "return ops.sum(reconstruction + self.beta * kl), (reconstruction, kl)",
            ),
            ('{"loss": loss,', '{"loss": ops.mean(reconstruction + self.beta * kl),'),
        ],
        "not by one optimizer step",
    ),
    "no gradient through the sampling": (
        [
            (
                "z = z_mean + ops.exp(0.5 * z_log_var) * epsilon",
                "z = ops.stop_gradient(z_mean + ops.exp(0.5 * z_log_var) * epsilon)",
            )
        ],
        "not by one optimizer step",
    ),
    "no optimizer step": (
        [
            (
                "loss, (reconstruction, kl), _ = self.descend(\n"
                "            self.optimizer, self.trainable_variables, loss_fn\n"
                "        )",
                "loss, (reconstruction, kl) = loss_fn()",
            )
        ],
        "did not change",
    ),
    "no logs": (
        [
            (
                'return {"loss": loss, "reconstruction": ops.mean(reconstruction), "kl": ops.mean(kl)}',
                "return {}",
            )
        ],
        "'loss', 'reconstruction' and 'kl'",
    ),
}


test_vae_mistakes_are_named = mistakes_test(
    EX, "GaussianVAE", checks.check_gaussian_vae, VAE_MISTAKES
)


def _evidence(answer, variances=None, nll=None):
    variances = np.exp(np.linspace(-4.0, -1.0, 61)) if variances is None else variances
    nll = checks._nll_curve(variances) if nll is None else nll
    return {"variances": variances, "nll": nll, "answer": answer}


def _right():
    return checks._mean_squared_errors()["test"]


def _curve_min():
    evidence = _evidence(0)
    return float(evidence["variances"][np.argmin(evidence["nll"])])


VARIANCE_MISTAKES = {
    "a number, no evidence": (lambda: _right(), "should return a dict"),
    "the log-variance": (lambda: _evidence(np.log(_curve_min())), "log-variance"),
    "the standard deviation": (lambda: _evidence(np.sqrt(_curve_min())), "standard deviation"),
    "log-variances as variances": (
        lambda: _evidence(_curve_min(), np.linspace(-4.0, -1.0, 61), np.zeros(61)),
        "sigma^2 > 0",
    ),
    "the training images": (
        lambda: _evidence(_curve_min(), nll=checks._nll_curve(_evidence(0)["variances"], "train")),
        "*training* images",
    ),
    "NLL averaged over the pixels": (
        lambda: _evidence(_curve_min(), nll=checks._nll_curve(_evidence(0)["variances"]) / 784),
        "averaged the NLL over the pixels",
    ),
    "no log(2 pi)": (
        lambda: _evidence(
            _curve_min(), nll=checks._nll_curve(_evidence(0)["variances"]) - 392 * np.log(2 * np.pi)
        ),
        "log(2 pi)",
    ),
    "a made-up curve": (lambda: _evidence(_right(), nll=np.zeros(61)), "a rerun disagrees"),
    "a curve without its minimum": (
        lambda: _evidence(0.3, variances=np.linspace(0.1, 0.3, 21)),
        "does not show a minimum",
    ),
    "an answer not read from the curve": (lambda: _evidence(0.5), "your own curve"),
    "a grid too coarse": (
        lambda: _evidence(0.1, variances=np.array([0.01, 0.1, 1.0])),
        "more finely",
    ),
}


test_decoder_variance_mistakes_are_named = evidence_mistakes_test(
    checks.check_decoder_variance, VARIANCE_MISTAKES
)


def test_decoder_variance_evidence_passes():
    expect_pass(checks.check_decoder_variance(lambda: _evidence(_curve_min()), quiet=True))
    three = _right() * np.array([0.97, 1.0, 1.03])
    expect_pass(checks.check_decoder_variance(lambda: _evidence(_right(), three), quiet=True))


def test_a_mistake_in_an_earlier_task_counts_only_there():
    """GaussianVAE calls gaussian_nll and gaussian_kl: its check uses the references, so a
    wrong Task 2 does not fail Task 3 as well."""
    namespace = solution(EX, "GaussianVAE").train_step.__globals__
    right = namespace["gaussian_nll"]
    namespace["gaussian_nll"] = variant(EX, "gaussian_nll", ("np.log(2 * np.pi) + ", ""))
    try:
        expect_failure(checks.check_gaussian_nll(namespace["gaussian_nll"], quiet=True))
        expect_pass(checks.check_gaussian_vae(solution(EX, "GaussianVAE"), quiet=True))
    finally:
        namespace["gaussian_nll"] = right
    assert namespace["gaussian_nll"] is right


def test_a_constant_or_a_bisection_earns_nothing():
    """Constants, and a bisection steered by the messages, never pass; no message says
    which way to move."""
    no_marks_by_guessing(checks.check_decoder_variance, low=0.0, high=1.0)

    def dressed(guess):  # a made-up curve with its minimum at the guess
        variances = guess * np.array([0.5, 1.0, 2.0]) + 1e-9
        return _evidence(guess, variances, nll=[1.0, 0.0, 1.0])

    no_marks_by_guessing(checks.check_decoder_variance, dressed, low=0.0, high=1.0)


@pytest.mark.parametrize(
    "name, mistake",
    [
        ("gaussian_kl", None),
        ("gaussian_kl", KL_WITH_NUMPY),
        ("gaussian_nll", NLL_MISTAKES["image axes fixed"][0]),
        ("GaussianVAE", VAE_MISTAKES["no gradient through the sampling"][0]),
    ],
)
def test_the_remote_path_gives_the_same_verdict(name, mistake):
    """Each check on a Remote (arguments and replies as plain data over the wire, the
    probes where the learner's code lives) says what it says in the notebook."""
    same_verdict_on_a_remote(EX, TASKS[name], name, mistake)
