"""Checks for ``exercises/04_transformer.ipynb``.

The learner writes three NumPy functions: the causal mask, scaled dot-product
attention and the top-k filter. Each check compares them, on hidden cases, with
the definitions of :mod:`tutorial_lib.transformer` and names the usual mistakes
(a mask that lets the future in, no scaling, a softmax over the wrong axis).
"""

from __future__ import annotations

import math

import numpy as np

from tutorial_lib.checks import CheckFailed, CheckResult, expect, run_check


def _softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = scores - np.max(scores, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def _reference_attention(q, k, v, mask=None, scale=None):
    """softmax(q k^T * scale, masked) v in float64; scale defaults to 1 / sqrt(d)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = _softmax(scores)
    return np.matmul(weights, v), weights


def _qkv(seed: int, batch=2, queries=3, keys=5, d=4, d_v=6, scale=1.0):
    rng = np.random.default_rng(seed)
    q = scale * rng.standard_normal((batch, queries, d))
    k = rng.standard_normal((batch, keys, d))
    v = rng.standard_normal((batch, keys, d_v))
    return q, k, v


# --------------------------------------------------------------------------
# Task 1: the causal mask
# --------------------------------------------------------------------------


def check_causal_mask(causal_mask, *, quiet: bool = False) -> CheckResult:
    """``causal_mask(n)``: a boolean (n, n) array, True where query ``i`` may look at
    key ``j``, that is ``j <= i`` (the lower triangle, diagonal included)."""
    state = {}

    def returns_a_boolean_square():
        mask = np.asarray(causal_mask(4))
        expect(
            mask.shape == (4, 4),
            f"causal_mask(4) should have shape (4, 4), got {mask.shape}.",
        )
        expect(
            mask.dtype == np.bool_,
            f"expected a boolean array (True: may look), got dtype {mask.dtype}: compare "
            "positions, e.g. key index <= query index, to get True/False. (An additive mask "
            "of 0 and -inf is another convention; this exercise uses booleans.)",
        )
        state["mask"] = mask

    def keeps_the_future_out():
        mask = state["mask"]
        leaks = [(i, j) for i in range(4) for j in range(4) if j > i and mask[i, j]]
        if leaks:
            raise CheckFailed(
                f"the mask lets the future in: query {leaks[0][0]} may look at key "
                f"{leaks[0][1]}, a later position. Only keys j <= i may be True (the lower "
                "triangle, np.tril)."
            )

    def lets_each_position_see_itself():
        mask = state["mask"]
        expect(
            mask.diagonal().all(),
            "the diagonal is False: each position must see itself (j = i), or the first "
            "position has nothing to attend to and its softmax divides by zero. Use j <= i, "
            "not j < i.",
        )

    def lets_the_past_in():
        mask = state["mask"]
        expect(
            np.array_equal(mask, np.tril(np.ones((4, 4), dtype=bool))),
            "some past keys are masked: query i should see every key j <= i.",
        )

    def follows_n():
        for n in (1, 3, 7):
            mask = np.asarray(causal_mask(n))
            expect(
                mask.shape == (n, n) and np.array_equal(mask, np.tril(np.ones((n, n), dtype=bool))),
                f"causal_mask({n}) is wrong (shape {mask.shape}): build it from the argument n, "
                "not a fixed size.",
            )

    cases = [
        returns_a_boolean_square,
        keeps_the_future_out,
        lets_each_position_see_itself,
        lets_the_past_in,
        follows_n,
    ]
    return run_check("check_causal_mask", causal_mask, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 2: scaled dot-product attention
# --------------------------------------------------------------------------


def check_attention(attention, *, quiet: bool = False) -> CheckResult:
    """``attention(q, k, v, mask=None)``: ``(output, weights)`` with
    weights = softmax(q k^T / sqrt(d), masked where ``mask`` is False) over the keys
    and output = weights v; q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v)."""
    state = {}

    def call(q, k, v, mask=None):
        result = attention(q, k, v, mask)
        expect(
            isinstance(result, tuple | list) and len(result) == 2,
            f"attention should return a pair (output, weights), got {type(result).__name__}.",
        )
        return np.asarray(result[0], dtype=np.float64), np.asarray(result[1], dtype=np.float64)

    def returns_the_right_shapes():
        q, k, v = _qkv(0)
        output, weights = call(q, k, v)
        expect(
            weights.shape == (2, 3, 5),
            f"with 3 queries and 5 keys the weights should have shape (2, 3, 5) (batch, "
            f"queries, keys), got {weights.shape}: scores are q @ k^T, i.e. "
            "q @ np.swapaxes(k, -1, -2).",
        )
        expect(
            output.shape == (2, 3, 6),
            f"the output should have shape (2, 3, 6) (batch, queries, value width), got "
            f"{output.shape}: multiply the weights by v.",
        )

    def normalises_over_the_keys():
        q, k, v = _qkv(1, queries=4, keys=4)
        _, weights = call(q, k, v)
        rows, columns = weights.sum(axis=-1), weights.sum(axis=-2)
        if not np.allclose(rows, 1.0, atol=1e-6) and np.allclose(columns, 1.0, atol=1e-6):
            raise CheckFailed(
                "the softmax runs over the wrong axis: your weights sum to 1 down each column "
                "(over the queries). Each query's weights over the keys must sum to 1: "
                "softmax over the last axis (axis=-1)."
            )
        expect(
            np.allclose(rows, 1.0, atol=1e-6),
            f"each row of weights should sum to 1 (a softmax over the keys), found sums "
            f"{np.round(rows.ravel()[:3], 3)}...",
        )
        state["weights"] = weights
        state["qkv"] = (q, k, v)

    def scales_by_sqrt_d():
        q, k, v = state["qkv"]
        weights = state["weights"]
        _, expected = _reference_attention(q, k, v)
        if np.allclose(weights, expected, atol=1e-6):
            return
        _, unscaled = _reference_attention(q, k, v, scale=1.0)
        _, by_d = _reference_attention(q, k, v, scale=1.0 / q.shape[-1])
        if np.allclose(weights, unscaled, atol=1e-6):
            raise CheckFailed(
                "no scaling: divide the scores q @ k^T by sqrt(d) before the softmax "
                "(d = q.shape[-1]), or large widths make the softmax saturate."
            )
        if np.allclose(weights, by_d, atol=1e-6):
            raise CheckFailed("you divide the scores by d; divide by sqrt(d) (np.sqrt(d)).")
        raise CheckFailed(
            f"weights differ from softmax(q @ k^T / sqrt(d)): first row expected "
            f"{np.round(expected[0, 0], 3)}, got {np.round(weights[0, 0], 3)}."
        )

    def output_is_the_weighted_values():
        q, k, v = state["qkv"]
        output, weights = call(q, k, v)
        expect(
            np.allclose(output, weights @ v, atol=1e-6),
            "the output should be the weights times the values: weights @ v.",
        )

    def applies_the_mask_before_the_softmax():
        q, k, v = _qkv(2, queries=5, keys=5)
        mask = np.tril(np.ones((5, 5), dtype=bool))
        output, weights = call(q, k, v, mask)
        expected_output, expected = _reference_attention(q, k, v, mask)
        future = weights[:, ~mask]
        expect(
            np.allclose(future, 0.0, atol=1e-9),
            f"the mask lets the future in: masked (False) entries get weights up to "
            f"{np.abs(future).max():.3f}. Set masked scores to -np.inf (np.where(mask, "
            "scores, -np.inf)) before the softmax.",
        )
        expect(
            np.allclose(weights.sum(axis=-1), 1.0, atol=1e-6),
            "masked weights are 0 but the rows no longer sum to 1: mask the scores before "
            "the softmax, not the weights after it.",
        )
        expect(
            np.allclose(weights, expected, atol=1e-6) and np.allclose(output, expected_output),
            "with a mask, the weights differ from softmax(masked scores / sqrt(d)).",
        )

    def survives_large_scores():
        q, k, v = _qkv(3, scale=1e4)  # scores in the thousands
        with np.errstate(all="ignore"):
            output, weights = call(q, k, v, np.ones((3, 5), dtype=bool))
        expect(
            np.isfinite(weights).all() and np.isfinite(output).all(),
            "large scores give inf or nan: subtract each row's maximum score before np.exp "
            "(softmax is unchanged by a shift, and exp can no longer overflow).",
        )

    cases = [
        returns_the_right_shapes,
        normalises_over_the_keys,
        scales_by_sqrt_d,
        output_is_the_weighted_values,
        applies_the_mask_before_the_softmax,
        survives_large_scores,
    ]
    return run_check("check_attention", attention, cases, quiet=quiet)


# --------------------------------------------------------------------------
# Task 3: top-k filtering
# --------------------------------------------------------------------------


def check_top_k(top_k_logits, *, quiet: bool = False) -> CheckResult:
    """``top_k_logits(logits, k)``: a copy of ``logits`` (..., V) with all but the ``k``
    largest of each row set to ``-np.inf``; the kept logits keep their values."""
    logits = np.random.default_rng(4).standard_normal(12)
    state = {}

    def call(x, k):
        return np.asarray(top_k_logits(x.copy(), k), dtype=np.float64)

    def keeps_the_shape():
        out = call(logits, 3)
        expect(
            out.shape == logits.shape,
            f"expected an array of shape {logits.shape} like the input, got {out.shape}: "
            "return the filtered logits, not only the kept ones.",
        )
        state["out"] = out

    def removes_with_minus_infinity():
        removed = state["out"][np.argsort(-logits)[3:]]  # all but the 3 largest
        if np.all(np.isneginf(removed)):
            return
        expect(
            not np.all(removed == 0.0),
            "the removed logits are 0: a logit of 0 still has probability exp(0) > 0 after "
            "the softmax. Set them to -np.inf.",
        )
        expect(
            not np.all(removed < -1e6),
            "the removed logits are large negative numbers: set them to -np.inf, so they get "
            "a probability of exactly 0 whatever the other logits are.",
        )

    def keeps_exactly_k():
        for k in (1, 3, 5):
            kept = int(np.isfinite(call(logits, k)).sum())
            expect(
                kept == k,
                f"with k={k} your filter keeps {kept} logits, expected {k}"
                + (": check the cut-off (off by one?)." if abs(kept - k) == 1 else "."),
            )

    def keeps_the_largest():
        out = state["out"]
        kept = set(np.flatnonzero(np.isfinite(out)))
        largest = set(np.argsort(-logits)[:3])
        if kept == set(np.argsort(logits)[:3]):
            raise CheckFailed(
                "you kept the 3 smallest logits: keep the largest (sort in decreasing order)."
            )
        expect(
            kept == largest,
            f"with k=3 expected to keep positions {sorted(largest)}, kept {sorted(kept)}.",
        )

    def leaves_kept_values_alone():
        out = state["out"]
        kept = np.isfinite(out)
        expect(
            np.allclose(out[kept], logits[kept]),
            "the kept entries changed: return logits (not probabilities); leave the k "
            "largest as they are.",
        )

    def leaves_the_input_alone():
        x = logits.copy()
        top_k_logits(x, 2)
        expect(
            np.array_equal(x, logits),
            "top_k_logits changed the array it was given: work on a copy (logits.copy() or "
            "np.where(...)).",
        )

    def filters_each_row_of_a_batch():
        batch = np.random.default_rng(5).standard_normal((3, 10))
        out = call(batch, 2)
        expected = np.zeros_like(batch, dtype=bool)
        np.put_along_axis(expected, np.argsort(-batch, axis=-1)[:, :2], True, axis=-1)
        expect(
            out.shape == batch.shape and np.array_equal(np.isfinite(out), expected),
            "on a batch of shape (3, 10) each row should keep its own 2 largest logits: "
            "sort or compare along the last axis (axis=-1), with a threshold per row "
            "(keepdims=True).",
        )

    def k_of_the_whole_vocabulary_keeps_all():
        out = call(logits, 12)
        expect(
            np.allclose(out, logits),
            "with k equal to the vocabulary size nothing should be removed.",
        )

    cases = [
        keeps_the_shape,
        removes_with_minus_infinity,
        keeps_exactly_k,
        keeps_the_largest,
        leaves_kept_values_alone,
        leaves_the_input_alone,
        filters_each_row_of_a_batch,
        k_of_the_whole_vocabulary_keeps_all,
    ]
    return run_check("check_top_k", top_k_logits, cases, quiet=quiet)
