"""The exercise checks of notebook 04: right answers pass, stubs are 'not attempted',
and typical wrong answers fail with the message meant for them."""

import numpy as np
import pytest
from check_helpers import expect_failure, stub

from tutorial_lib import transformer
from tutorial_lib.checks import NOT_ATTEMPTED, PASSED
from tutorial_lib.checks import transformer as checks


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attention(q, k, v, mask=None, *, scale="sqrt", axis=-1, mask_after=False, stable=True):
    """A NumPy attention with switches for the classic mistakes."""
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2)
    scores = scores / {"sqrt": np.sqrt(d), "none": 1.0, "d": d}[scale]
    if mask is not None and not mask_after:
        scores = np.where(mask, scores, -np.inf)
    if stable:
        weights = _softmax(scores, axis=axis)
    else:
        weights = np.exp(scores) / np.exp(scores).sum(axis=axis, keepdims=True)
    if mask is not None and mask_after:
        weights = weights * mask
    return weights @ v, weights


ALL_CHECKS = [checks.check_causal_mask, checks.check_attention, checks.check_top_k]
REFERENCES = [
    transformer.causal_mask,
    transformer.scaled_dot_product_attention,
    transformer.top_k_filter,
]


@pytest.mark.parametrize("check, reference", list(zip(ALL_CHECKS, REFERENCES, strict=True)))
def test_the_reference_solution_passes(check, reference, capsys):
    result = check(reference)
    assert result.status == PASSED, result
    assert capsys.readouterr().out.startswith("[pass]")


def test_a_numpy_attention_passes():
    assert checks.check_attention(attention, quiet=True).passed


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_a_stub_is_not_attempted_yet(check):
    result = check(stub, quiet=True)
    assert result.status == NOT_ATTEMPTED
    assert "not attempted yet" in str(result) and "stub" in str(result)


# --- task 1: the causal mask ---------------------------------------------


def test_mask_that_lets_the_future_in():
    expect_failure(
        checks.check_causal_mask(lambda n: np.triu(np.ones((n, n), bool)), quiet=True),
        "lets the future in: query 0 may look at key 1",
    )
    expect_failure(
        checks.check_causal_mask(lambda n: np.ones((n, n), bool), quiet=True),
        "lets the future in",
    )


def test_mask_without_the_diagonal():
    expect_failure(
        checks.check_causal_mask(lambda n: np.tril(np.ones((n, n), bool), k=-1), quiet=True),
        "the diagonal is False",
        "j <= i, not j < i",
    )


def test_additive_float_mask_is_not_what_is_asked():
    def additive(n):
        return np.where(np.tril(np.ones((n, n), bool)), 0.0, -np.inf)

    expect_failure(checks.check_causal_mask(additive, quiet=True), "expected a boolean array")


def test_mask_of_a_fixed_size():
    expect_failure(
        checks.check_causal_mask(lambda n: np.tril(np.ones((4, 4), bool)), quiet=True),
        "causal_mask(1) is wrong",
        "from the argument n",
    )


# --- task 2: attention ----------------------------------------------------


def test_attention_without_scaling():
    expect_failure(
        checks.check_attention(
            lambda q, k, v, m=None: attention(q, k, v, m, scale="none"), quiet=True
        ),
        "no scaling: divide the scores q @ k^T by sqrt(d)",
    )


def test_attention_scaled_by_d():
    expect_failure(
        checks.check_attention(
            lambda q, k, v, m=None: attention(q, k, v, m, scale="d"), quiet=True
        ),
        "divide by sqrt(d)",
    )


def test_softmax_over_the_wrong_axis():
    expect_failure(
        checks.check_attention(lambda q, k, v, m=None: attention(q, k, v, m, axis=-2), quiet=True),
        "the softmax runs over the wrong axis",
        "axis=-1",
    )


def test_attention_that_ignores_the_mask():
    expect_failure(
        checks.check_attention(lambda q, k, v, m=None: attention(q, k, v, None), quiet=True),
        "the mask lets the future in",
        "before the softmax",
    )


def test_mask_applied_after_the_softmax():
    expect_failure(
        checks.check_attention(
            lambda q, k, v, m=None: attention(q, k, v, m, mask_after=True), quiet=True
        ),
        "rows no longer sum to 1",
        "not the weights after it",
    )


def test_softmax_without_the_max_shift_overflows():
    expect_failure(
        checks.check_attention(
            lambda q, k, v, m=None: attention(q, k, v, m, stable=False), quiet=True
        ),
        "subtract each row's maximum",
    )


def test_attention_with_keys_and_queries_swapped():
    def swapped(q, k, v, mask=None):
        weights = _softmax(k @ np.swapaxes(q, -1, -2) / np.sqrt(q.shape[-1]))
        return weights @ v[..., : weights.shape[-1], :], weights

    expect_failure(checks.check_attention(swapped, quiet=True), "should have shape (2, 3, 5)")


def test_attention_returning_only_the_output():
    expect_failure(
        checks.check_attention(lambda q, k, v, m=None: attention(q, k, v, m)[0], quiet=True),
        "should return a pair (output, weights)",
    )


# --- task 3: top-k --------------------------------------------------------


def _top_k_with(fill=-np.inf, smallest=False, extra=0, in_place=False, axis=-1, probs=False):
    def top_k(logits, k):
        order = np.argsort(logits if smallest else -logits, axis=axis)
        keep = np.take(order, range(k + extra), axis=axis)
        out = logits if in_place else logits.copy()
        mask = np.zeros(logits.shape, bool)
        np.put_along_axis(mask, keep, True, axis=axis)
        if probs:
            values = _softmax(logits)
            out[...] = np.where(mask, values, fill)
        else:
            out[~mask] = fill
        return out

    return top_k


def test_top_k_with_zeros_instead_of_minus_infinity():
    expect_failure(
        checks.check_top_k(_top_k_with(fill=0.0), quiet=True), "the removed logits are 0"
    )


def test_top_k_with_a_large_negative_fill():
    expect_failure(checks.check_top_k(_top_k_with(fill=-1e9), quiet=True), "set them to -np.inf")


def test_top_k_off_by_one():
    expect_failure(
        checks.check_top_k(_top_k_with(extra=1), quiet=True),
        "with k=1 your filter keeps 2 logits, expected 1",
        "off by one",
    )


def test_top_k_keeping_the_smallest():
    expect_failure(checks.check_top_k(_top_k_with(smallest=True), quiet=True), "3 smallest logits")


def test_top_k_returning_probabilities():
    expect_failure(checks.check_top_k(_top_k_with(probs=True), quiet=True), "return logits")


def test_top_k_in_place():
    expect_failure(checks.check_top_k(_top_k_with(in_place=True), quiet=True), "changed the array")


def test_top_k_with_one_threshold_for_the_whole_batch():
    def global_threshold(logits, k):
        threshold = np.sort(logits, axis=None)[-k]
        return np.where(logits >= threshold, logits, -np.inf)

    expect_failure(checks.check_top_k(global_threshold, quiet=True), "each row should keep its own")
