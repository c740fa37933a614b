"""The exercise checks of exercise 06: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that
names their mistake, for images of any size (down to one column per half), data of
any rank, other bit depths and a kernel with a negative determinant."""

import keras
import numpy as np
from check_helpers import (
    expect_failure,
    expect_pass,
    mistakes_test,
    no_marks_even_with_made_up_evidence,
    same_verdicts_over_the_wire,
    solution,
    task_tests,
    variant,
)

from tutorial_lib.checks import flows as checks

EX = "06_flows"
TASKS = {
    "width_coupling": checks.check_width_coupling,
    "bits_per_dim": checks.check_bits_per_dim,
    "Invertible1x1Conv": checks.check_invertible_conv,
    "curved_path_experiment": checks.check_curved_path,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


INVERSE_SIGN = "        sign = -1.0\n"
COUPLING_MISTAKES = {
    "inverse log-det with the forward sign": (
        [(INVERSE_SIGN, "        sign = 1.0\n")],
        "the inverse's log-determinant has the wrong sign",
    ),
    "forward log-det negated": (
        [("        sign = 1.0\n", "        sign = -1.0\n"), (INVERSE_SIGN, "        sign = 1.0\n")],
        "the log-determinant has the wrong sign",
    ),
    "log-det summed over the batch": (
        [("axis=tuple(range(1, np.ndim(s)))", "axis=None")],
        "one number for the whole batch",
    ),
    "log-det as the mean of s": (
        [("np.sum(s, axis=tuple(range(1, np.ndim(s))))", "np.mean(s, axis=(1, 2, 3))")],
        "the mean of s",
    ),
    "scaled by s, not e^s": (
        [("changed * np.exp(s) + t", "changed * s + t")],
        "multiplied by s itself",
    ),
    "inverse undoes the scale first": (
        [("(changed - t) * np.exp(-s)", "changed * np.exp(-s) - t")],
        "subtracts t first",
    ),
    "s and t from the changed half": (
        [("s, t = s_and_t(kept)", "s, t = s_and_t(changed)")],
        "got the half that changes",
    ),
    "split along the channels": (
        [
            ("half = x.shape[2] // 2", "half = x.shape[3] // 2"),
            ("x[:, :, :half], x[:, :, half:]", "x[..., :half], x[..., half:]"),
            ("np.concatenate(halves, axis=2)", "np.concatenate(halves, axis=3)"),
        ],
        "split along the channels",
    ),
    "kept half always first": (
        [("[kept, changed] if parity == 0 else [changed, kept]", "[kept, changed]")],
        "changed places",
    ),
    "a fixed width": (
        [("half = x.shape[2] // 2", "half = 3")],
        "wrong for images of shape",
    ),
}


test_width_coupling_mistakes_are_named = mistakes_test(
    EX, "width_coupling", checks.check_width_coupling, COUPLING_MISTAKES
)


JACOBIAN = " + dims * np.log(2.0 / levels)"
BITS_MISTAKES = {
    "no Jacobian term": ([(JACOBIAN, "")], "the change of variables is missing"),
    "Jacobian with the wrong sign": (
        [(JACOBIAN, " - dims * np.log(2.0 / levels)")],
        "the Jacobian term has the wrong sign",
    ),
    "the lesson's 1/256 scaling": (
        [("np.log(2.0 / levels)", "np.log(1.0 / levels)")],
        "the scaling of the lesson's pixels",
    ),
    "nats, not bits": ([("(dims * np.log(2.0))", "dims")], "nats per dimension"),
    "bits per image": ([("(dims * np.log(2.0))", "np.log(2.0)")], "bits per image"),
    "K - 1 levels": ([("np.log(2.0 / levels)", "np.log(2.0 / (levels - 1))")], "not 2/(K - 1)"),
    "always 256 levels": ([("np.log(2.0 / levels)", "np.log(2.0 / 256)")], "use levels, not 256"),
    "averaged over the images": (
        [("return -log_p_pixels", "return np.mean(-log_p_pixels)")],
        "averaged (or summed) over the images",
    ),
    "log-likelihood, not its negative": (
        [("return -log_p_pixels", "return log_p_pixels")],
        "the sign is flipped",
    ),
}


test_bits_per_dim_mistakes_are_named = mistakes_test(
    EX, "bits_per_dim", checks.check_bits_per_dim, BITS_MISTAKES
)


SLOGDET = "ops.slogdet(self.kernel)[1]"
CONV_MISTAKES = {
    "log of a negative determinant": (
        [(SLOGDET, "ops.log(ops.det(self.kernel))")],
        "log|det W|, the log of the absolute value",
    ),
    "one position only": (
        [("log_det = positions * ", "log_det = 1 * ")],
        "log|det W| once",
    ),
    "log-det with the wrong sign": (
        [("log_det = positions * ", "log_det = -positions * ")],
        "wrong sign",
    ),
    "transposed kernel": (
        [("y = ops.matmul(x, ops.transpose(self.kernel))", "y = ops.matmul(x, self.kernel)")],
        "transposed kernel",
    ),
    "transpose as the inverse": (
        [("ops.transpose(ops.inv(self.kernel))", "self.kernel")],
        "inverts only a rotation",
    ),
    "one log-det for the batch": (
        [("return y, ops.ones((ops.shape(x)[0],)) * log_det", "return y, log_det")],
        "one number for the whole batch",
    ),
    "NumPy log-determinant": (
        [(SLOGDET, "np.linalg.slogdet(self.kernel)[1]")],
        # PyTorch's steps run eagerly: NumPy works there, and cuts the kernel's gradient off.
        "does not depend on the kernel"
        if keras.backend.backend() == "torch"
        else "fails inside a compiled step",
    ),
    "identity start": (
        [("keras.initializers.Orthogonal()", '"identity"')],
        "starts as the identity",
    ),
    "not a rotation": (
        [("keras.initializers.Orthogonal()", '"glorot_uniform"')],
        "does not start orthogonal",
    ),
    "images only": (
        [("int(np.prod(x.shape[1:-1]))", "x.shape[1] * x.shape[2]")],
        "wrong for data of shape (5, 3)",
    ),
}


test_invertible_conv_mistakes_are_named = mistakes_test(
    EX, "Invertible1x1Conv", checks.check_invertible_conv, CONV_MISTAKES
)


def test_positions_of_images_only_fail_for_other_ranks():
    """H * W as the product of the two middle axes, and 1 for any other rank."""
    images_only = variant(
        EX,
        "Invertible1x1Conv",
        ("int(np.prod(x.shape[1:-1]))", "int(np.prod(x.shape[1:3])) if len(x.shape) == 4 else 1"),
    )
    expect_failure(checks.check_invertible_conv(images_only, quiet=True), "wrong for data of shape")


def _curve(answer, mistake=None):
    """The evidence of a search that ends at ``answer``: the check's own distances (with
    ``mistake``'s change) at 1, answer // 2, answer - 1 and answer steps."""
    steps = sorted({1, max(answer // 2, 1), answer - 1, answer} - {0})
    distance = [checks._curved_error(n, mistake) for n in steps]
    return {"n": steps, "distance": distance, "answer": answer}


def test_curved_path_checks_the_evidence_then_the_answer():
    """A right curve passes (an int64 answer too); curves measured with each named mistake
    fail naming it; an answer off the curve, a coarse curve and malformed returns fail.
    (About 1 s.)"""
    check = checks.check_curved_path
    right = checks._curved_steps()
    assert right == 17
    assert checks._curved_steps("midpoint") < right < checks._curved_steps("own_draw")
    assert right < checks._curved_steps("no_factor")
    expect_pass(check(lambda: _curve(right), quiet=True))
    expect_pass(check(lambda: dict(_curve(right), answer=np.int64(right)), quiet=True))
    for mistake, message in {
        "midpoint": "midpoint method",
        "no_factor": "chain-rule factor",
        "own_draw": "own noise x0",
        "squared": "mean squared distances",
    }.items():
        wrong = checks._curved_steps(mistake)
        expect_failure(check(lambda w=wrong, m=mistake: _curve(w, m), quiet=True), message)
    nan = dict(_curve(right), distance=[np.nan] * 4)
    expect_failure(check(lambda: nan, quiet=True), "NaN")
    expect_failure(check(lambda: dict(_curve(right), answer=right + 3), quiet=True), "read")
    coarse = {"n": [1, 10, 20], "answer": 20}
    coarse["distance"] = [checks._curved_error(n) for n in coarse["n"]]
    expect_failure(check(lambda: coarse, quiet=True), "one by one")
    expect_failure(check(lambda: right, quiet=True), "should return a dict")
    expect_failure(check(lambda: dict(_curve(right), n=[1.5] * 4), quiet=True), "whole number")


def test_the_reference_experiment_is_the_solutions():
    assert solution(EX, "curved_path_experiment")()["answer"] == checks._curved_steps()


def test_a_constant_or_a_bisection_earns_nothing():
    """Constants, and a bisection steered by the messages, never pass, with or without an
    invented curve; no message says which way to move."""

    def invented(answer):  # a curve made up to cross 0.01 at the guess
        steps = np.arange(1, 41)
        return {"n": steps, "distance": 0.01 * (answer + 0.5) / steps, "answer": answer}

    no_marks_even_with_made_up_evidence(
        checks.check_curved_path, invented, bare=(0.0, 10.0), dressed=(1.0, 40.0)
    )


def test_the_probes_give_the_same_verdicts_in_process_and_over_the_wire():
    """The coupling's and the layer's checks judge the probes' plain data: run through the
    wire format (what crosses from the learner's process), the verdicts are the same."""
    pairs = [
        (checks.check_width_coupling, solution(EX, "width_coupling")),
        (
            checks.check_width_coupling,
            variant(EX, "width_coupling", *COUPLING_MISTAKES["scaled by s, not e^s"][0]),
        ),
        (checks.check_invertible_conv, solution(EX, "Invertible1x1Conv")),
    ]
    same_verdicts_over_the_wire(checks, pairs)
