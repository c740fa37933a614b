"""The exercise checks of exercise 01: the solution passes (the visible and the hidden
cases), stubs are 'not attempted', and plausible wrong answers fail with the message
that names their mistake."""

import keras
import numpy as np
import pytest
from check_helpers import (
    evidence_mistakes_test,
    expect_failure,
    expect_pass,
    hidden_cases,
    mistakes_test,
    no_marks_by_guessing,
    same_verdict_on_a_remote,
    task_tests,
)

from tutorial_lib.checks import autoencoder as checks

EX = "01_autoencoder"
TASKS = {
    "build_encoder": checks.check_encoder,
    "mask_noise": checks.check_mask_noise,
    "PCAAutoencoder": checks.check_pca_autoencoder,
    "code_size_experiment": checks.check_code_size,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


def test_hints_come_in_two_tiers():
    first, second = checks.hint.text("pca"), checks.hint.text("pca", 2)
    assert first.startswith("Hint 1 of 2 for pca (the idea)") and "hint('pca', 2)" in first
    assert second.startswith("Hint 2 of 2 for pca (what to use)")
    with pytest.raises(KeyError, match="no hints"):
        checks.hint.text("nope")


# --------------------------------------------------------------------------
# Task 1: the encoder
# --------------------------------------------------------------------------

ENCODER_MISTAKES = {
    "no hidden activations": (
        [('activation="relu"', "activation=None")],
        "affine map",
    ),
    "ReLU on the code": (
        [("keras.layers.Dense(latent_dim)", 'keras.layers.Dense(latent_dim, activation="relu")')],
        "ReLU on the code layer",
    ),
    "tanh on the code": (
        [("keras.layers.Dense(latent_dim)", 'keras.layers.Dense(latent_dim, activation="tanh")')],
        "squashed",
    ),
    "fixed grey input": (
        [("keras.Input(input_shape)", "keras.Input((28, 28, 1))")],
        "not a fixed (28, 28, 1)",
    ),
    "hidden argument ignored": (
        [("for units in hidden:", "for units in (256, 128):")],
        "make one Dense layer per entry of the hidden argument",
    ),
    "no Flatten": (
        [("keras.layers.Flatten()(inputs)", "inputs")],
        "flatten the image first",
    ),
    "fixed code size": (
        [("keras.layers.Dense(latent_dim)", "keras.layers.Dense(32)")],
        "use the latent_dim argument",
    ),
    "hidden widths in reverse": (
        [("for units in hidden:", "for units in hidden[::-1]:")],
        "in order",
    ),
    "first hidden layer only": ([("for units in hidden:", "for units in hidden[:1]:")], "in order"),
    "sigmoid on the code": (
        [
            (
                "keras.layers.Dense(latent_dim)",
                'keras.layers.Dense(latent_dim, activation="sigmoid")',
            )
        ],
        "squashed",
    ),
}


test_encoder_mistakes_are_named = mistakes_test(
    EX, "build_encoder", checks.check_encoder, ENCODER_MISTAKES
)


def test_encoder_not_a_model():
    expect_failure(checks.check_encoder(lambda *a: "encoder", quiet=True), "keras.Model")


def test_encoder_with_a_relu_layer_of_its_own_passes():
    """ReLU as a layer of its own is as good as activation='relu'."""

    def build(input_shape, latent_dim, hidden=(256, 128)):
        inputs = keras.Input(input_shape)
        h = keras.layers.Flatten()(inputs)
        for units in hidden:
            h = keras.layers.ReLU()(keras.layers.Dense(units)(h))
        return keras.Model(inputs, keras.layers.Dense(latent_dim)(h))

    expect_pass(checks.check_encoder(build, quiet=True))
    expect_pass(checks.check_encoder(build, hidden=hidden_cases(EX, "check_encoder"), quiet=True))


# --------------------------------------------------------------------------
# Task 2: masking noise
# --------------------------------------------------------------------------

MASK_MISTAKES = {
    "mask drawn once and broadcast": (
        [("rng.random(np.shape(x))", "rng.random(np.shape(x)[1:])")],
        "the mask was drawn once (for one image) and broadcast",
    ),
    "one coin per image": (
        [("rng.random(np.shape(x))", "rng.random((len(x),) + (1,) * (np.ndim(x) - 1))")],
        "dropped whole or kept whole",
    ),
    "keep probability swapped": (
        [(">= drop_rate", "< drop_rate")],
        "it is the probability of dropping it",
    ),
    "dropout rescaling": (
        [("np.where(keep, x, 0.0)", "np.where(keep, x / (1 - drop_rate), 0.0)")],
        "rescaling of dropout layers",
    ),
    "global random state": (
        [("rng.random(np.shape(x))", "np.random.random(np.shape(x))")],
        "np.random.default_rng(seed)",
    ),
    "float64": ([(".astype(np.float32)", ".astype(np.float64)")], "float32"),
    "one coin per pixel, shared by the last axis": (
        [("rng.random(np.shape(x))", "rng.random(np.shape(x)[:-1] + (1,))")],
        "dropped whole or kept whole",
    ),
}


test_mask_noise_mistakes_are_named = mistakes_test(
    EX, "mask_noise", checks.check_mask_noise, MASK_MISTAKES
)


def test_mask_noise_in_place_and_multiplicative_noise():
    def in_place(x, drop_rate, seed):
        x[np.random.default_rng(seed).random(x.shape) < drop_rate] = 0
        return x.astype(np.float32)

    def scaled_by_noise(x, drop_rate, seed):
        return (x * np.random.default_rng(seed).random(x.shape)).astype(np.float32)

    expect_failure(checks.check_mask_noise(in_place, quiet=True), "do not zero values in place")
    expect_failure(checks.check_mask_noise(scaled_by_noise, quiet=True), "0/1 mask")


# --------------------------------------------------------------------------
# Task 3: the PCA autoencoder
# --------------------------------------------------------------------------

PCA_MISTAKES = {
    "no centring": (
        [("self.mean = flat.mean(axis=0)", "self.mean = 0.0 * flat.mean(axis=0)")],
        "the data was not centred",
    ),
    "one mean for all pixels": (
        [("self.mean = flat.mean(axis=0)", "self.mean = flat.mean()")],
        "subtract the mean *image*",
    ),
    "smallest directions": (
        [("vectors[:, ::-1]", "vectors")],
        "directions of *smallest* variance",
    ),
    "flat images out": (
        [("flat.reshape(len(codes), *self.image_shape)", "flat")],
        "reshape the flat vectors back",
    ),
    "fit returns nothing": ([("        return self\n", "")], "return self"),
    "mean forgotten when decoding": (
        [("codes @ self.directions + self.mean", "codes @ self.directions")],
        "best 3-code linear autoencoder",
    ),
    "image shape of rank 3 only": (
        [
            (
                "self.image_shape = x.shape[1:]",
                "self.image_shape = x.shape[1:4] + (1,) * (4 - x.ndim)",
            )
        ],
        "reshape the flat vectors back",
    ),
    "decoded as a batch of one image": (
        [
            (
                "flat.reshape(len(codes), *self.image_shape)",
                "flat.reshape(-1, *self.image_shape).squeeze()",
            )
        ],
        "decode should give images",
    ),
    "directions in ascending order of variance": (
        [
            (
                "vectors[:, ::-1][:, : self.latent_dim].T",
                "vectors[:, ::-1][:, : self.latent_dim][:, ::-1].T",
            )
        ],
        "the first code should carry the most variance",
    ),
}


test_pca_mistakes_are_named = mistakes_test(
    EX, "PCAAutoencoder", checks.check_pca_autoencoder, PCA_MISTAKES
)


def test_pca_with_svd_passes_on_rgb_images():
    class SVDAutoencoder:
        def __init__(self, latent_dim):
            self.k = latent_dim

        def fit(self, x):
            self.shape, flat = x.shape[1:], x.reshape(len(x), -1).astype(np.float64)
            self.mu = flat.mean(0)
            self.v = np.linalg.svd(flat - self.mu, full_matrices=False)[2][: self.k]
            return self

        def encode(self, x):
            return (x.reshape(len(x), -1) - self.mu) @ self.v.T

        def decode(self, codes):
            return (codes @ self.v + self.mu).reshape(len(codes), *self.shape)

    cases = hidden_cases(EX, "check_pca_autoencoder")
    expect_pass(checks.check_pca_autoencoder(SVDAutoencoder, hidden=cases, quiet=True))


# --------------------------------------------------------------------------
# Task 4 (investigate): the code size
# --------------------------------------------------------------------------


def _evidence(answer, dims=None, mse=None):
    curve = checks._mnist_pca_curves()["test"]
    dims = list(range(20, 40)) if dims is None else dims
    mse = [float(curve[d - 1]) for d in dims] if mse is None else mse
    return {"latent_dims": dims, "test_mse": mse, "answer": answer}


def _right():
    return checks._smallest_dim(checks._mnist_pca_curves()["test"])


CODE_SIZE_MISTAKES = {
    "a number, no evidence": (lambda: _right(), "should return a dict"),
    "the training images": (
        lambda: _evidence(24, mse=list(checks._mnist_pca_curves()["train"][19:39])),
        "*training* images",
    ),
    "summed over the pixels": (
        lambda: _evidence(_right(), mse=[784 * m for m in _evidence(0)["test_mse"]]),
        "summed the squared errors",
    ),
    "an RMSE": (
        lambda: _evidence(_right(), mse=[m**0.5 for m in _evidence(0)["test_mse"]]),
        "square root",
    ),
    "a made-up curve": (lambda: _evidence(_right(), mse=[0.02] * 20), "a rerun of that fit"),
    "the last size above the target": (lambda: _evidence(_right() - 1), "not a size your curve"),
    "the first size below the target, its neighbour unmeasured": (
        lambda: _evidence(_right(), dims=[_right(), _right() + 1]),
        "*smallest*",
    ),
    "not a whole number": (lambda: _evidence(_right() + 0.5), "whole number"),
    "lists of different lengths": (
        lambda: _evidence(_right(), mse=[0.02]),
        "two arrays of the same length",
    ),
}


test_code_size_mistakes_are_named = evidence_mistakes_test(
    checks.check_code_size, CODE_SIZE_MISTAKES
)


def test_code_size_evidence_passes():
    right = _right()
    train = checks._smallest_dim(checks._mnist_pca_curves()["train"])
    assert 10 < right < 100 and train < right
    expect_pass(checks.check_code_size(lambda: _evidence(right), quiet=True))
    expect_pass(checks.check_code_size(lambda: _evidence(right, dims=[right - 1, right])))


def test_a_constant_or_a_bisection_earns_nothing():
    """Constants, and a bisection steered by the messages, never pass, whether bare or
    dressed as evidence (a made-up curve through the guess); no message says which way to
    move."""
    no_marks_by_guessing(checks.check_code_size, low=1, high=784)

    def flat(guess):
        return _evidence(round(guess), dims=[round(guess) - 1, round(guess)], mse=[0.021, 0.019])

    no_marks_by_guessing(checks.check_code_size, flat, low=2, high=784)


# --------------------------------------------------------------------------
# While grading: the same verdicts across the process boundary
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mistake",
    [
        ("build_encoder", ENCODER_MISTAKES["no hidden activations"][0]),
        ("mask_noise", None),
        ("mask_noise", [("np.where(keep, x, 0.0)", "x.__imul__(keep)")]),
        ("PCAAutoencoder", PCA_MISTAKES["no centring"][0]),
    ],
)
def test_the_remote_path_gives_the_same_verdict(name, mistake):
    """Each check on a Remote (arguments and replies as plain data over the wire, the
    probes where the learner's code lives) says what it says in the notebook."""
    there = same_verdict_on_a_remote(EX, TASKS[name], name, mistake)
    if mistake and name == "mask_noise":
        expect_failure(there, "do not zero values in place")
