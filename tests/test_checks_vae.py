"""The exercise checks of exercise 02: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that names
their mistake, for codes of any rank, RGB-shaped images and tiny float32 variances."""

import numpy as np
from check_helpers import (
    expect_failure,
    expect_pass,
    mistakes_test,
    solution,
    task_tests,
    variant,
)

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
    "NumPy": (
        [(SUM, "np.sum(np.asarray(per_dim), axis=tuple(range(1, np.ndim(per_dim))))")],
        "tf.function",
    ),
}


test_kl_mistakes_are_named = mistakes_test(EX, "gaussian_kl", checks.check_gaussian_kl, KL_MISTAKES)


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
}


test_nll_mistakes_are_named = mistakes_test(
    EX, "gaussian_nll", checks.check_gaussian_nll, NLL_MISTAKES
)


def test_nll_of_the_squared_error_alone_is_named():
    def mse(x, mean, log_var):
        return np.sum((np.asarray(x, np.float64) - mean) ** 2, axis=(1, 2, 3))

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
    "no optimizer step": (
        [("self.optimizer.apply(grads, self.trainable_variables)", "pass")],
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


def test_decoder_variance_answers():
    right = checks._best_variances()["test"]
    expect_pass(checks.check_decoder_variance(lambda: right * 1.03, quiet=True))
    expect_failure(checks.check_decoder_variance(lambda: np.log(right), quiet=True), "log-variance")
    expect_failure(
        checks.check_decoder_variance(lambda: np.sqrt(right), quiet=True), "standard deviation"
    )
    expect_failure(checks.check_decoder_variance(lambda: 0.5, quiet=True), "too large")
    expect_failure(checks.check_decoder_variance(lambda: "0.06", quiet=True), "too small")


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
