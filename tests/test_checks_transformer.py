"""The exercise checks of exercise 04: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that names
their mistake, on batched multi-head tensors, logits of +-200, windows of 1 and of the
whole sequence."""

from check_helpers import expect_failure, expect_pass, mistakes_test, solution, task_tests

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
}


test_gqa_mistakes_are_named = mistakes_test(
    EX, "grouped_query_attention", checks.check_gqa, GQA_MISTAKES
)


def test_temperature_answers():
    bigram, unigram = checks._bigram_bpc()
    right = checks._doubling(bigram)
    assert 0.1 < right < 0.5
    assert abs(bigram(right) - 2 * bigram(1.0)) < 1e-3
    expect_pass(checks.check_temperature(lambda: round(right, 2), quiet=True))
    expect_failure(checks.check_temperature(lambda: 1 / right, quiet=True), "multiplied")
    expect_failure(
        checks.check_temperature(lambda: checks._doubling(unigram), quiet=True), "unigram"
    )
    expect_failure(checks.check_temperature(lambda: 0.5, quiet=True), "too large")
    expect_failure(checks.check_temperature(lambda: float("inf"), quiet=True), "expected the")
