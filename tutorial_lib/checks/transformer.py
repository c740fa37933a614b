"""Checks for ``exercises/04_transformer.ipynb``: a sliding-window causal mask for a
key/value cache, min-p filtering, grouped-query attention, and the temperature at
which a bigram model's bits per character double.

The learner writes NumPy. Each check compares with float64 references on hidden
cases (batched multi-head tensors, logits of +-200, windows of 1 and of the whole
sequence) and names the usual mistakes. While grading, the learner's functions run in
their own process and the checks send them arrays (:mod:`tutorial_lib.grading`); the
hidden cases (``hidden={...}``) are in the instructor's source notebook only.
"""

from __future__ import annotations

import functools

import numpy as np

from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)
from tutorial_lib.grading.remote import run_probe

hint = Hints(
    {
        "window_mask": (
            "Give every query and every key its absolute position in the sequence: the "
            "queries are the *last* num_queries positions (the keys before them are in the "
            "cache). A query may look at a key that is not in its future and at most "
            "window - 1 positions in its past.",
            "np.arange for the two position vectors, [:, None] and [None, :] to compare every "
            "query with every key, the comparisons <= and >, and & to combine them.",
        ),
        "min_p": (
            "Keep a token when its probability is at least p_base times the probability of "
            "the most likely token of the same row. The softmax's normaliser cancels in that "
            "ratio, so it is a comparison of logits with the row's largest logit (no exp "
            "needed, so no overflow).",
            "np.max(..., axis=-1, keepdims=True), np.log(p_base), np.where(keep, logits, "
            "-np.inf); return a new array.",
        ),
        "gqa": (
            "Project x to queries (num_heads heads) and to keys and values (num_kv_heads heads "
            "only), split the width into heads, let each group of num_heads // num_kv_heads "
            "consecutive query heads share one key/value head, then causal scaled dot-product "
            "attention per head, merge the heads back, and project with w_o.",
            "@ with the weight matrices, reshape to (batch, length, heads, d_head) and "
            "transpose to (batch, heads, length, d_head), np.repeat(..., axis=1) for the "
            "shared heads, np.tril for the mask, a softmax that subtracts the row maximum, "
            "and the inverse transpose and reshape.",
        ),
        "temperature": (
            "Count character pairs in the training text (plus one for every pair), turn each "
            "row into log-probabilities, divide them by the temperature and renormalise, and "
            "measure the mean negative log-probability of each validation character given "
            "the one before it, in bits; search the temperature below 1 where it doubles.",
            "data.load_shakespeare() (.train, .val, .vocab.size), np.add.at on a (V, V) array "
            "of ones, np.log, a log-softmax over axis 1, indexing with [previous, next], "
            "np.log(2), a bisection over the temperature, and a dict that keeps every "
            "temperature you measured (1 too) with its bits per character.",
        ),
    }
)


def _softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = scores - np.max(scores, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


# --------------------------------------------------------------------------
# Task 1: a sliding-window causal mask for a key/value cache
# --------------------------------------------------------------------------


def _window(num_queries, num_keys, window, *, offset=True, diagonal=True, lower=None):
    start = num_keys - num_queries if offset else 0
    q = np.arange(start, start + num_queries)[:, None]
    k = np.arange(num_keys)[None, :]
    past = (k <= q) if diagonal else (k < q)
    lower = window if lower is None else lower
    return past & (k > q - lower)


def check_window_mask(window_mask, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``window_mask(num_queries, num_keys, window)``: boolean (num_queries, num_keys); the
    queries are the last num_queries positions; a query at position p sees the keys
    p - window < j <= p. ``hidden``: ``{"main": [num_queries, num_keys, window]}``."""
    main = tuple(hidden_cases(hidden, "check_window_mask").get("main", (4, 10, 3)))

    def call(*args):
        return np.asarray(window_mask(*args))

    def returns_booleans_of_the_right_shape():
        mask = call(*main)
        expect(
            mask.shape == main[:2],
            f"window_mask{main} should have shape {main[:2]} (queries, keys), got {mask.shape}.",
        )
        expect(
            mask.dtype == np.bool_,
            f"expected a boolean array (True: may look), got dtype {mask.dtype}.",
        )

    def matches_the_window():
        mask = call(*main)
        nq, nk, w = main
        expected = _window(nq, nk, w)
        if np.array_equal(mask, expected):
            return
        future = mask & ~_window(nq, nk, nk)  # True where a key is in the query's future
        if future.any():
            i, j = np.argwhere(future)[0]
            raise CheckFailed(
                f"the mask lets the future in: query {i} (at position {nk - nq + i}) may look "
                f"at key {j}. Keys after the query's own position must be False."
            )
        mistakes = [
            (
                _window(nq, nk, w, offset=False),
                "the queries are placed at positions 0, 1, ...: with a cache, the queries are "
                "the LAST num_queries positions, num_keys - num_queries onwards",
            ),
            (_window(nq, nk, nk), "the window is ignored: this is a plain causal mask"),
            (
                _window(nq, nk, w, lower=w + 1),
                f"each query sees {w + 1} keys: a window of {w} is the query itself and the "
                f"{w - 1} keys before it (off by one)",
            ),
            (
                _window(nq, nk, w, lower=w - 1),
                f"each query sees {w - 1} keys: a window of {w} includes the query's own "
                "position (off by one)",
            ),
            (
                _window(nq, nk, w, diagonal=False, lower=w + 1),
                "the diagonal is False: each query must see its own position",
            ),
            (
                _window(nq, nk, w, diagonal=False),
                "the diagonal is False: each query must see itself",
            ),
        ]
        for wrong, message in mistakes:
            expect(not np.array_equal(mask, wrong), f"for window_mask{main}: {message}.")
        raise CheckFailed(
            f"window_mask{main} differs from the expected mask; its first row should be "
            f"{expected[0].astype(int).tolist()}, got {mask[0].astype(int).tolist()}."
        )

    def edges():
        cases = [
            ((5, 5, 5), "a window as long as the sequence is the plain causal mask"),
            ((5, 5, 1), "a window of 1 lets each query see only itself"),
            ((1, 7, 3), "one query (a decoding step) is the last position"),
            ((6, 6, 2), "a square mask (no cache)"),
            ((2, 4, 10), "a window longer than the sequence is the plain causal mask"),
        ]
        for args, what in cases:
            got = call(*args)
            expect(
                got.shape == args[:2] and np.array_equal(got, _window(*args)),
                f"window_mask{args} is wrong: {what}; got {got.astype(int).tolist()}.",
            )

    cases = [returns_booleans_of_the_right_shape, matches_the_window, edges]
    return run_check("check_window_mask", window_mask, cases, quiet=quiet, task="window_mask")


# --------------------------------------------------------------------------
# Task 2: min-p filtering
# --------------------------------------------------------------------------


def _min_p(logits, p_base) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    keep = logits >= np.max(logits, axis=-1, keepdims=True) + np.log(p_base)
    return np.where(keep, logits, -np.inf)


def _same(a, b) -> bool:
    """Equal, -inf where the other is -inf, close elsewhere."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or not np.array_equal(np.isneginf(a), np.isneginf(b)):
        return False
    finite = ~np.isneginf(b)
    return bool(np.allclose(a[finite], b[finite], rtol=1e-6, atol=1e-6))


def check_min_p(min_p_filter, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``min_p_filter(logits, p_base)``: a new array like ``logits`` (..., V) in which the
    tokens whose probability is below p_base times the row's largest are -inf; the kept
    logits keep their values. ``hidden``: ``{"seed": s, "vocab": V, "p": p_base}``."""
    cases_ = hidden_cases(hidden, "check_min_p")
    rng = np.random.default_rng(int(cases_.get("seed", 8)))
    logits = 2.0 * rng.standard_normal(int(cases_.get("vocab", 30)))
    p = float(cases_.get("p", 0.1))

    def call(x, p_base):
        return np.asarray(min_p_filter(x.copy(), p_base), dtype=np.float64)

    def keeps_the_shape():
        out = call(logits, p)
        expect(
            out.shape == logits.shape,
            f"expected an array of shape {logits.shape} like the input, got {out.shape}: "
            "return every logit, the removed ones as -inf.",
        )

    def keeps_the_right_tokens():
        out = call(logits, p)
        if _same(out, _min_p(logits, p)):
            return
        probs = _softmax(logits)
        absolute = np.where(probs >= p, logits, -np.inf)
        by_logit = np.where(logits >= p * logits.max(), logits, -np.inf)
        mistakes = [
            (
                absolute,
                "you compared the probabilities with p_base itself: min-p is relative, a token "
                "stays when its probability is at least p_base times the LARGEST probability",
            ),
            (
                by_logit,
                "you compared logits with p_base times the largest logit: probabilities are "
                "exp(logits) / sum, so the ratio of probabilities is exp(logit - max logit)",
            ),
            (
                np.where(np.isneginf(_min_p(logits, p)), logits, -np.inf),
                "you kept exactly the tokens that should be removed",
            ),
            (
                np.where(np.isneginf(_min_p(logits, p)), -np.inf, probs),
                "you returned probabilities: return the logits, the removed ones as -inf",
            ),
        ]
        for wrong, message in mistakes:
            expect(not _same(out, wrong), f"{message}.")
        kept = ~np.isneginf(_min_p(logits, p))
        if np.array_equal(np.isclose(out, logits), kept) and np.all(out[~kept] > -np.inf):
            raise CheckFailed(
                "the removed tokens must be -np.inf: a logit of 0 (or a large negative number) "
                "still gets a probability after the softmax."
            )
        expect(
            np.array_equal(~np.isneginf(out), kept),
            f"with p_base = {p} you kept {int((~np.isneginf(out)).sum())} tokens, expected "
            f"{int(kept.sum())}.",
        )
        expect(
            np.allclose(out[kept], logits[kept]), "the kept logits changed: leave them as they are."
        )

    def leaves_the_input_alone():
        report = run_probe(min_p_filter, "call_keeps_input", args=[logits, p])
        expect(
            np.array_equal(np.asarray(report["args_after"][0]), logits),
            "min_p_filter changed its input: build a new array.",
        )

    def filters_each_row_of_a_batch():
        for shape in ((2, 3, 12), (1, 41), (5, 7)):  # (a batch of one row; odd vocabularies)
            batch = 3.0 * np.random.default_rng(3).standard_normal(shape)
            batch[0, 0] += 5.0  # one row far above the others: a global maximum would be wrong
            out = call(batch, 0.3)
            expect(
                _same(out, _min_p(batch, 0.3)),
                f"on logits of shape {shape} each row must be filtered against its own largest "
                "logit: take the maximum over the last axis with keepdims=True.",
            )

    def edges_and_large_logits():
        expect(
            _same(call(logits, 1.0), _min_p(logits, 1.0)),
            "with p_base = 1 only the most likely token (and any tie) should stay.",
        )
        expect(
            _same(call(logits, 1e-300), logits),
            "with a tiny p_base every token should stay.",
        )
        huge = np.array([[200.0, 199.0, -200.0, 150.0], [-200.0, -199.5, -200.0, -210.0]])
        with np.errstate(all="ignore"):
            out = call(huge.astype(np.float32), 0.3)
        expect(
            _same(out, _min_p(huge, 0.3)),
            "logits of +-200 break your filter: exp(200) overflows float32 (and exp(-200) "
            "underflows to 0). Compare logits with max + log(p_base) instead of computing "
            "probabilities.",
        )

    cases = [
        keeps_the_shape,
        keeps_the_right_tokens,
        leaves_the_input_alone,
        filters_each_row_of_a_batch,
        edges_and_large_logits,
    ]
    return run_check("check_min_p", min_p_filter, cases, quiet=quiet, task="min_p")


# --------------------------------------------------------------------------
# Task 3: grouped-query attention
# --------------------------------------------------------------------------


def _gqa(x, w_q, w_k, w_v, w_o, heads, kv_heads, *, mistake=None):
    """Causal grouped-query attention in float64, and the usual mistakes."""
    x = np.asarray(x, np.float64)
    b, n, width = x.shape
    d = width // heads

    def split(t, h):
        if mistake == "no_transpose":
            return t.reshape(b, h, n, d)
        return t.reshape(b, n, h, d).transpose(0, 2, 1, 3)

    q = split(x @ w_q, heads)
    k, v = split(x @ w_k, kv_heads), split(x @ w_v, kv_heads)
    group = heads // kv_heads
    if mistake == "tile":
        k, v = np.tile(k, (1, group, 1, 1)), np.tile(v, (1, group, 1, 1))
    else:
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scale = np.sqrt(width) if mistake == "scale_width" else np.sqrt(d)
    scores = q @ k.transpose(0, 1, 3, 2) / (1.0 if mistake == "no_scale" else scale)
    if mistake != "no_mask":
        scores = np.where(np.tril(np.ones((n, n), bool)), scores, -np.inf)
    out = _softmax(scores) @ v
    out = (
        out.reshape(b, n, width)
        if mistake == "no_merge_transpose"
        else out.transpose(0, 2, 1, 3).reshape(b, n, width)
    )
    return out if mistake == "no_w_o" else out @ w_o


def _gqa_weights(width, heads, kv_heads, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    d = width // heads
    w_q = scale * rng.standard_normal((width, width))
    w_k = scale * rng.standard_normal((width, kv_heads * d))
    w_v = scale * rng.standard_normal((width, kv_heads * d))
    w_o = scale * rng.standard_normal((width, width))
    return w_q, w_k, w_v, w_o


def check_gqa(grouped_query_attention, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``grouped_query_attention(x, w_q, w_k, w_v, w_o, num_heads, num_kv_heads)``: causal
    multi-head attention of x (batch, length, width) in which each group of
    num_heads // num_kv_heads consecutive query heads shares one key/value head.
    ``hidden``: ``{"shape": [batch, length, width], "heads": h, "kv": k, "seeds": [x, w]}``."""
    cases_ = hidden_cases(hidden, "check_gqa")
    batch, length, width = (int(n) for n in cases_.get("shape", (2, 5, 16)))
    heads, kv = int(cases_.get("heads", 4)), int(cases_.get("kv", 2))
    seed_x, seed_w = cases_.get("seeds", (30, 33))
    rng = np.random.default_rng(int(seed_x))
    x = rng.standard_normal((batch, length, width))
    weights = _gqa_weights(width, heads, kv, seed=int(seed_w))

    def call(inputs, w, h, k):
        return np.asarray(grouped_query_attention(inputs, *w, h, k), dtype=np.float64)

    def keeps_the_shape():
        out = call(x, weights, heads, kv)
        expect(
            out.shape == x.shape,
            f"expected an output of shape {x.shape} (batch, length, width), got {out.shape}.",
        )

    def matches_grouped_query_attention():
        out = call(x, weights, heads, kv)
        if np.allclose(out, _gqa(x, *weights, heads, kv), atol=1e-6):
            return
        mistakes = {
            "no_mask": "a query sees the future: apply the causal mask (np.tril) to the scores "
            "before the softmax",
            "tile": "query head h uses key/value head h % num_kv_heads (np.tile): the heads of "
            "one group are consecutive, head h uses h // (num_heads // num_kv_heads) "
            "(np.repeat along the head axis)",
            "no_transpose": "the heads were split with a plain reshape to (batch, heads, "
            "length, d_head), which mixes positions: reshape to (batch, length, heads, "
            "d_head), then move the head axis forward",
            "no_merge_transpose": "the heads were merged with a plain reshape: move the head "
            "axis back next to d_head before reshaping to (batch, length, width)",
            "scale_width": "the scores are divided by sqrt(width): divide by the square root "
            "of one head's width, d_head (the width divided by num_heads)",
            "no_scale": "the scores are not scaled: divide by sqrt(d_head)",
            "no_w_o": "the output projection w_o is missing",
        }
        for key, message in mistakes.items():
            expect(
                not np.allclose(out, _gqa(x, *weights, heads, kv, mistake=key), atol=1e-6),
                f"{message}.",
            )
        raise CheckFailed(
            "the output differs from causal grouped-query attention: project, split into "
            "heads, share each key/value head with its group, attend per head, merge, project."
        )

    def never_looks_ahead():
        changed = x.copy()
        changed[:, -1] += 10.0  # change only the last position
        before, after = call(x, weights, heads, kv), call(changed, weights, heads, kv)
        expect(
            np.allclose(before[:, :-1], after[:, :-1], atol=1e-9),
            "changing the LAST token changed the outputs of earlier positions: the "
            "attention is not causal (mask the future keys).",
        )

    def multi_and_single_kv_heads():
        for h, k in ((heads, heads), (heads, 1)):
            w = _gqa_weights(width, h, k, seed=40 + k)
            out = call(x, w, h, k)
            expect(
                out.shape == x.shape and np.allclose(out, _gqa(x, *w, h, k), atol=1e-6),
                f"wrong with num_kv_heads = {k} ({'ordinary multi-head' if k == h else 'multi-query'} "
                "attention): each query head h uses key/value head h // (num_heads // num_kv_heads).",
            )

    def one_token_and_large_scores():
        message = "wrong for a batch of one sequence: take the sizes from x.shape, not constants."
        try:
            out = call(x[:1], weights, heads, kv)
        except Exception as error:
            if getattr(error, "aborts_grading", False) or isinstance(error, NotImplementedError):
                raise
            raise CheckFailed(f"{message} ({type(error).__name__}: {str(error)[:120]})") from None
        expect(
            out.shape == (1, length, width) and np.allclose(out, _gqa(x[:1], *weights, heads, kv)),
            message,
        )
        out = call(x[:, :1], weights, heads, kv)
        expect(
            out.shape == (batch, 1, width)
            and np.allclose(out, _gqa(x[:, :1], *weights, heads, kv)),
            "wrong for a sequence of length 1.",
        )
        big = 50.0 * x
        with np.errstate(all="ignore"):
            out = call(big, weights, heads, kv)
        expect(
            np.isfinite(out).all() and np.allclose(out, _gqa(big, *weights, heads, kv), atol=1e-4),
            "large inputs (scores in the thousands) give inf or nan: subtract each row's "
            "maximum score before np.exp.",
        )

    cases = [
        keeps_the_shape,
        matches_grouped_query_attention,
        never_looks_ahead,
        multi_and_single_kv_heads,
        one_token_and_large_scores,
    ]
    return run_check("check_gqa", grouped_query_attention, cases, quiet=quiet, task="gqa")


# --------------------------------------------------------------------------
# Task 4 (investigate): the temperature at which bits per character double
# --------------------------------------------------------------------------


@functools.cache
def _bigram_bpc():
    """bits per character of the add-one bigram model as a function of the temperature."""
    from tutorial_lib import data

    text = data.load_shakespeare()
    size = text.vocab.size
    counts = np.ones((size, size))
    np.add.at(counts, (text.train[:-1], text.train[1:]), 1.0)
    log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
    pairs = (text.val[:-1], text.val[1:])
    unigram = np.ones(size)
    np.add.at(unigram, text.train, 1.0)
    unigram_log = np.log(unigram / unigram.sum())

    def bpc(tau: float, table=log_probs, rows=pairs[0]) -> float:
        z = table / tau
        z = z - z.max(axis=-1, keepdims=True)
        z = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return float(-np.mean(z[rows, pairs[1]] if z.ndim == 2 else z[pairs[1]]) / np.log(2))

    return bpc, lambda tau: bpc(tau, unigram_log, None)


def _doubling(bpc) -> float:
    target, low, high = 2.0 * bpc(1.0), 1e-3, 1.0
    for _ in range(40):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if bpc(middle) > target else (low, middle)
    return 0.5 * (low + high)


def check_temperature(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"temperatures": the tau tried (1 among them), "bpc": the
    bits per character measured on the validation text at each, "answer": the tau below 1
    where they are twice those at tau = 1}`` for the add-one bigram model. The curve is
    checked against the check's own run at the learner's points (within 0.1%: correct runs
    agree to 1e-9), the answer against the curve (where it crosses twice its value at 1,
    2%), then against the truth (2%)."""
    state: dict = {}

    def returns_its_evidence():
        taus, bpc, answer = read_evidence(
            experiment,
            {
                "temperatures": "the tau you tried, 1 among them",
                "bpc": "the bits per character you measured at each",
            },
            min_points=3,
        )
        expect(
            bool(np.all(np.isfinite(taus)) and np.all(taus > 0)) and np.isfinite(answer),
            "every temperature (and your answer) should be a number above 0.",
        )
        expect(
            bool(np.any(np.isclose(taus, 1.0))),
            "your curve should hold tau = 1: the bits per character there are the baseline "
            "the question doubles.",
        )
        state.update(taus=taus, bpc=bpc, answer=answer)

    def the_curve_is_a_measurement():
        taus, bpc = state["taus"], state["bpc"]
        bigram, unigram = _bigram_bpc()
        truth = np.array([bigram(t) for t in taus])

        def same(curve):
            return np.allclose(bpc, curve, rtol=1e-3)

        if same(truth):
            return
        mistakes = {
            "you multiplied the log-probabilities by the temperature; divide them by it": [
                bigram(1.0 / t) for t in taus
            ],
            "that is a unigram model (one distribution for every character); condition on "
            "the previous character": [unigram(t) for t in taus],
            "these are nats: bits per character use log base 2 (divide by log 2)": truth
            * np.log(2.0),
        }
        for message, wrong in mistakes.items():
            expect(not same(np.asarray(wrong)), f"your curve: {message}.")
        bad = int(np.argmax(~np.isclose(bpc, truth, rtol=1e-3)))
        raise CheckFailed(
            f"at tau = {taus[bad]:.4g} your bits per character are {bpc[bad]:.5g}; a rerun "
            "disagrees (it is not within 0.1%): divide the log-probabilities by tau, "
            "renormalise each row, and average -log2 P over the validation pairs."
        )

    def the_answer_is_read_from_the_curve():
        taus, bpc, answer = state["taus"], state["bpc"], state["answer"]
        target = 2.0 * float(bpc[np.argmin(np.abs(taus - 1.0))])
        below = taus < 1.0
        expect(
            bool(np.any(below & (bpc > target)) and np.any(below & (bpc < target))),
            "your curve does not cross twice the bits per character at tau = 1 below 1: "
            "measure temperatures on both sides of the crossing.",
        )
        order = np.argsort(taus[below])
        crossing = float(
            np.interp(-target, -bpc[below][order], taus[below][order])
        )  # (bpc falls as tau grows)
        expect(
            abs(answer - crossing) <= 0.02 * crossing,
            f"your answer {answer:.4g} is not where your own curve crosses twice its value at "
            f"tau = 1 ({crossing:.4g}): read the answer off your measurement.",
        )

    def the_answer_is_the_truth():
        truth = _doubling(_bigram_bpc()[0])
        expect(
            abs(state["answer"] - truth) <= 0.02 * truth,
            f"your answer {state['answer']:.4g} is not the temperature at which the bits per "
            "character double (accepted within 2%): measure more temperatures around your "
            "curve's crossing.",
        )

    cases = [
        returns_its_evidence,
        the_curve_is_a_measurement,
        the_answer_is_read_from_the_curve,
        the_answer_is_the_truth,
    ]
    return run_check("check_temperature", experiment, cases, quiet=quiet, task="temperature")
