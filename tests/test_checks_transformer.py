"""The exercise checks of exercise 04: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that names
their mistake, on batched multi-head tensors, logits of +-200, windows of 1 and of the
whole sequence."""

import numpy as np
import pytest
from check_helpers import (
    evidence_mistakes_test,
    expect_pass,
    mistakes_test,
    no_marks_by_guessing,
    same_verdict_on_a_remote,
    solution,
    task_tests,
)

from tutorial_lib.checks import transformer as checks

EX = "04_transformer"
TASKS = {
    "window_mask": checks.check_window_mask,
    "min_p_filter": checks.check_min_p,
    "grouped_query_attention": checks.check_gqa,
    "temperature_experiment": checks.check_temperature,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


def test_the_mask_of_the_task_text():
    got = solution(EX, "window_mask")(2, 5, 3).astype(int).tolist()
    assert got == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]


MASK_MISTAKES = {
    "future let in": (
        [("key_positions <= query_positions", "key_positions >= 0 * query_positions")],
        "lets the future in",
    ),
    "queries at the start": (
        [("np.arange(num_keys - num_queries, num_keys)", "np.arange(num_queries)")],
        "LAST num_queries positions",
    ),
    "window ignored": (
        [("recent = key_positions > query_positions - window", "recent = True")],
        "plain causal mask",
    ),
    "window one too wide": (
        [("query_positions - window", "query_positions - window - 1")],
        "off by one",
    ),
    "diagonal excluded": (
        [("key_positions <= query_positions", "key_positions < query_positions")],
        "the diagonal is False",
    ),
    "integers": (
        [("return not_future & recent", "return (not_future & recent).astype(int)")],
        "boolean",
    ),
}


test_window_mask_mistakes_are_named = mistakes_test(
    EX, "window_mask", checks.check_window_mask, MASK_MISTAKES
)


KEEP = "keep = logits >= row_max + np.log(p_base)"
MIN_P_MISTAKES = {
    "absolute threshold": (
        [
            (
                KEEP,
                "keep = np.exp(logits - row_max) / np.exp(logits - row_max).sum(-1, keepdims=True) >= p_base",
            )
        ],
        "p_base itself",
    ),
    "logit ratio": ([(KEEP, "keep = logits >= p_base * row_max")], "largest logit"),
    "zeros instead of -inf": (
        [("np.where(keep, logits, -np.inf)", "np.where(keep, logits, 0.0)")],
        "-np.inf",
    ),
    "probabilities returned": (
        [
            (
                "np.where(keep, logits, -np.inf)",
                "np.where(keep, np.exp(logits - row_max) / np.exp(logits - row_max).sum(-1, keepdims=True), -np.inf)",
            )
        ],
        "returned probabilities",
    ),
    "one maximum for the batch": (
        [("np.max(logits, axis=-1, keepdims=True)", "np.max(logits)")],
        "its own largest logit",
    ),
    "naive probabilities overflow": (
        [
            (
                KEEP,
                "probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True); keep = probs >= p_base * probs.max(-1, keepdims=True)",
            )
        ],
        "exp(200) overflows",
    ),
    "in place": (
        [("return np.where(keep, logits, -np.inf)", "logits[~keep] = -np.inf\n    return logits")],
        "changed its input",
    ),
}


test_min_p_mistakes_are_named = mistakes_test(
    EX, "min_p_filter", checks.check_min_p, MIN_P_MISTAKES
)


GQA_MISTAKES = {
    "no causal mask": (
        [
            (
                "scores = np.where(np.tril(np.ones((length, length), dtype=bool)), scores, -np.inf)",
                "pass",
            )
        ],
        "causal mask",
    ),
    "np.tile": (
        [
            (
                "np.repeat(split_heads(x @ w_k, num_kv_heads), group, axis=1)",
                "np.tile(split_heads(x @ w_k, num_kv_heads), (1, group, 1, 1))",
            ),
            (
                "np.repeat(split_heads(x @ w_v, num_kv_heads), group, axis=1)",
                "np.tile(split_heads(x @ w_v, num_kv_heads), (1, group, 1, 1))",
            ),
        ],
        "np.tile",
    ),
    "split without transpose": (
        [
            (
                "t.reshape(batch, length, heads, d_head).transpose(0, 2, 1, 3)",
                "t.reshape(batch, heads, length, d_head)",
            )
        ],
        "mixes positions",
    ),
    "merge without transpose": (
        [("(weights @ v).transpose(0, 2, 1, 3).reshape", "(weights @ v).reshape")],
        "merged with a plain reshape",
    ),
    "scaled by the width": ([("/ np.sqrt(d_head)", "/ np.sqrt(width)")], "sqrt(width)"),
    "no output projection": ([("return merged @ w_o", "return merged")], "w_o is missing"),
    "unstable softmax": (
        [("np.exp(scores - scores.max(axis=-1, keepdims=True))", "np.exp(scores)")],
        "inf or nan",
    ),
    "a fixed batch of 2": (
        [("batch, length, width = x.shape", "_, length, width = x.shape\n    batch = 2")],
        "a batch of one sequence",
    ),
}


test_gqa_mistakes_are_named = mistakes_test(
    EX, "grouped_query_attention", checks.check_gqa, GQA_MISTAKES
)


def _evidence(answer, taus=None, bpc=None):
    bigram = checks._bigram_bpc()[0]
    taus = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1.0] if taus is None else taus
    bpc = [bigram(t) for t in taus] if bpc is None else bpc
    return {"temperatures": taus, "bpc": bpc, "answer": answer}


def _crossing(evidence):
    """Where the curve of ``evidence`` crosses twice its value at tau = 1 (linear)."""
    taus, bpc = np.asarray(evidence["temperatures"]), np.asarray(evidence["bpc"])
    below = taus < 1
    return float(np.interp(-2 * bpc[taus == 1][0], -bpc[below], taus[below]))


def _read(**kwargs):
    evidence = _evidence(0.0, **kwargs)
    evidence["answer"] = _crossing(evidence)
    return evidence


TEMPERATURE_MISTAKES = {
    "a number, no evidence": (lambda: checks._doubling(checks._bigram_bpc()[0]), "a dict"),
    "no baseline at 1": (lambda: _evidence(0.3, taus=[0.1, 0.2, 0.3]), "hold tau = 1"),
    "multiplied by tau": (
        lambda: _read(bpc=[checks._bigram_bpc()[0](1 / t) for t in _evidence(0)["temperatures"]]),
        "multiplied",
    ),
    "a unigram model": (
        lambda: _read(bpc=[checks._bigram_bpc()[1](t) for t in _evidence(0)["temperatures"]]),
        "unigram",
    ),
    "nats": (lambda: _read(bpc=[b * np.log(2) for b in _evidence(0)["bpc"]]), "nats"),
    "a made-up curve": (lambda: _read(bpc=[9, 8, 7, 6, 5, 4, 3, 2, 1]), "a rerun disagrees"),
    "a curve that misses the crossing": (
        lambda: _evidence(0.5, taus=[0.5, 0.7, 1.0]),
        "does not cross",
    ),
    "an answer not read from the curve": (lambda: _evidence(0.5), "your own curve"),
    "a curve too coarse": (lambda: _read(taus=[0.05, 0.9, 1.0]), "more temperatures"),
}


test_temperature_mistakes_are_named = evidence_mistakes_test(
    checks.check_temperature, TEMPERATURE_MISTAKES
)


def test_temperature_evidence_passes():
    bigram = checks._bigram_bpc()[0]
    right = checks._doubling(bigram)
    assert 0.1 < right < 0.5
    assert abs(bigram(right) - 2 * bigram(1.0)) < 1e-3
    expect_pass(checks.check_temperature(lambda: _read(), quiet=True))


def test_a_constant_or_a_bisection_earns_nothing():
    """Constants, and a bisection steered by the messages, never pass, whether bare or
    dressed as evidence (a made-up curve through the guess); no message says which way to
    move."""
    no_marks_by_guessing(checks.check_temperature, low=0.05, high=3.0)

    def dressed(guess):
        return _evidence(guess, taus=[guess / 2, guess, 1.0], bpc=[4.0, 2.0, 1.0])

    no_marks_by_guessing(checks.check_temperature, dressed, low=0.05, high=0.9)


@pytest.mark.parametrize(
    "name, mistake",
    [
        ("window_mask", None),
        ("min_p_filter", None),
        ("min_p_filter", MIN_P_MISTAKES["in place"][0]),
        ("grouped_query_attention", GQA_MISTAKES["np.tile"][0]),
        ("temperature_experiment", None),
    ],
)
def test_the_remote_path_gives_the_same_verdict(name, mistake):
    """Each check on a Remote (arguments and replies as plain data over the wire, the
    learner's function in its own namespace) says what it says in the notebook."""
    same_verdict_on_a_remote(EX, TASKS[name], name, mistake)
