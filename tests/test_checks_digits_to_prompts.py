"""The exercise checks of exercise 09: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that names
their mistake; the same verdicts across the grader's process boundary."""

from check_helpers import (
    evidence_mistakes_test,
    expect_failure,
    expect_pass,
    mistakes_test,
    same_verdict_on_a_remote,
    solution,
    task_tests,
)

from tutorial_lib.checks import digits_to_prompts as checks

EX = "09_digits_to_prompts"
TASKS = {
    "merge_step": checks.check_merge_step,
    "cross_attention": checks.check_cross_attention,
    "tokenize": checks.check_tokenize,
    "name_merges_experiment": checks.check_name_merges,
}

test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)

MERGE_MISTAKES = {
    "each word counted once": (
        [("pair_counts.get((left, right), 0) + count", "pair_counts.get((left, right), 0) + 1")],
        "you counted each word once",
    ),
    "a tie to the pair seen first": (
        [
            (
                "best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))",
                "best = max(pair_counts, key=lambda pair: pair_counts[pair])",
            )
        ],
        "on a tie you took the pair seen first",
    ),
    "joined overlapping": (
        [("                i += 2\n", "                i += 1\n")],
        "keep the word's letters",
    ),
    "only the first occurrence": (
        [
            (
                "if i + 1 < len(word) and (word[i], word[i + 1]) == best:",
                "if i + 1 < len(word) and (word[i], word[i + 1]) == best and len(joined) == i:",
            )
        ],
        "joined from the left wherever it starts",
    ),
}

test_merge_step_mistakes_are_named = mistakes_test(
    EX, "merge_step", checks.check_merge_step, MERGE_MISTAKES
)

ATTENTION_MISTAKES = {
    "no scaling": ([(" / np.sqrt(d)", "")], "the scores are not scaled"),
    "divided by d": ([("/ np.sqrt(d)", "/ d")], "divide by its square root"),
    "mask ignored": (
        [("np.where(np.asarray(mask, bool)[:, None, :], scores, -1e9)", "scores")],
        "the padding still gets weight",
    ),
    "mask inverted": (
        [("np.asarray(mask, bool)[:, None, :]", "~np.asarray(mask, bool)[:, None, :]")],
        "the mask is the wrong way round",
    ),
    "softmax over the queries": (
        [
            ("scores.max(axis=-1, keepdims=True)", "scores.max(axis=1, keepdims=True)"),
            ("weights.sum(axis=-1, keepdims=True)", "weights.sum(axis=1, keepdims=True)"),
        ],
        "the softmax runs over the queries",
    ),
    "minus infinity": ([("-1e9", "-np.inf")], "gave NaN"),
}

test_cross_attention_mistakes_are_named = mistakes_test(
    EX, "cross_attention", checks.check_cross_attention, ATTENTION_MISTAKES
)

TOKENIZE_MISTAKES = {
    "no chunks": ([("for chunk in bpe.chunks(text):", "for chunk in [text]:")], "chunk"),
    "nothing merged": ([("while len(symbols) > 1:", "while False:")], "no merge was applied"),
}

test_tokenize_mistakes_are_named = mistakes_test(
    EX, "tokenize", checks.check_tokenize, TOKENIZE_MISTAKES
)


def test_a_single_left_to_right_pass_is_named():
    """Joining any learned pair as it is met, left to right, misses the ranks."""

    def one_pass(text, merges):
        return checks._tokenize(text, merges, mistake="one_pass")

    expect_failure(checks.check_tokenize(one_pass, quiet=True), "learned earliest")


def _counts(merges, limit=checks.NAME_MERGES["captions"]):
    return [checks._singles(m, limit) for m in merges]


def _evidence(answer, limit=checks.NAME_MERGES["captions"], extra=()):
    merges = [0, 20, 40, 100, answer - 1, answer, *extra]
    return {"merges": merges, "single": _counts(merges, limit), "answer": answer}


RIGHT = checks._name_merges()

NAME_MISTAKES = {
    "answer off the curve": (lambda: {**_evidence(RIGHT), "answer": RIGHT + 3}, "read it off"),
    "the count below not measured": (
        lambda: {
            "merges": [0, 20, RIGHT, 150],
            "single": _counts([0, 20, RIGHT, 150]),
            "answer": RIGHT,
        },
        "too few",
    ),
    "made-up counts": (
        lambda: {**_evidence(RIGHT), "single": [0, 0, 0, 10, 10, 10]},
        "a rerun finds",
    ),
    "a number, not evidence": (lambda: RIGHT, "should return a dict"),
    "no crossing": (
        lambda: {"merges": [0, 5, 10, 15], "single": _counts([0, 5, 10, 15]), "answer": 15},
        "cover the answer",
    ),
}

test_name_merges_evidence_mistakes_are_named = evidence_mistakes_test(
    checks.check_name_merges, NAME_MISTAKES
)


def test_the_answer_is_the_first_count_of_ten():
    assert (
        20 < RIGHT < 150
        and _counts([RIGHT - 1, RIGHT]) == [9, 10]
        or _counts([RIGHT - 1, RIGHT])[1] == 10
    )
    expect_pass(checks.check_name_merges(lambda: _evidence(RIGHT), quiet=True))


def test_the_same_verdicts_across_the_process_boundary():
    for name in ("merge_step", "cross_attention", "tokenize"):
        assert same_verdict_on_a_remote(EX, TASKS[name], name).passed
    wrong = same_verdict_on_a_remote(
        EX, checks.check_cross_attention, "cross_attention", ATTENTION_MISTAKES["mask ignored"][0]
    )
    assert not wrong.passed
    assert solution(EX, "tokenize")("a one", [["o", "n"]]) == ["a", " ", "on", "e"]
