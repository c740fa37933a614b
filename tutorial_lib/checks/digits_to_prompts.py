"""Checks for ``exercises/09_digits_to_prompts.ipynb``: one training step of byte-pair
encoding, cross-attention with a padding mask, encoding a text with learned merges, and
how many merges make every digit name one token.

The learner's functions take and return plain data (lists of strings, NumPy arrays,
dicts), so each check calls them directly, or across the grader's process boundary, and
compares with its own reference on hidden cases, naming the usual mistakes. The hidden
cases are in the instructor's source notebook (``hidden={...}``).
"""

from __future__ import annotations

import collections
import functools
import itertools

import numpy as np

from tutorial_lib import bpe
from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)

hint = Hints(
    {
        "merge_step": (
            "Count every pair of neighbouring symbols inside each word, each word as often "
            "as it occurs; the most frequent pair wins (an exact tie goes to the pair that "
            "sorts first). Then walk each word from the left and join that pair wherever it "
            "starts, skipping past what you just joined.",
            "collections.Counter, zip(word, word[1:]) or itertools.pairwise, max or min "
            "with a key of (-count, pair), and a while loop with an index per word.",
        ),
        "cross_attention": (
            "Scores are the queries against the keys, scaled by the square root of the key "
            "width; padding keys must get no weight, so replace their scores before the "
            "softmax over the keys. A caption that is all padding should still give finite "
            "weights.",
            "np.einsum or @ with np.swapaxes, np.where on the mask broadcast to (N, 1, T_k), "
            "a large negative number such as -1e9, and a softmax that subtracts the row "
            "maximum before np.exp.",
        ),
        "tokenize": (
            "Cut the text into chunks first; inside a chunk start from single characters "
            "and keep joining the neighbouring pair that was learned earliest, until no "
            "learned pair is left.",
            "bpe.chunks(text), a dict from pair to its position in merges, min over the "
            "neighbouring pairs with that position as key, and list slicing to join two "
            "symbols.",
        ),
        "name_merges": (
            "Train tokenizers with more and more merges on the same captions and count, "
            "for each, how many digit names come out as one token; the count only grows, so "
            "search for where it first reaches ten.",
            "data.load_images('mnist', 'train', limit=...), captions.captions(images, "
            "labels), '\\n'.join, bpe.train_bpe(text, merges), tokenizer.split(' seven') and "
            "a bisection over the number of merges.",
        ),
    }
)


def _same(got, right) -> bool:
    return _as_lists(got) == _as_lists(right)


def _as_lists(value):
    if isinstance(value, list | tuple):
        return [_as_lists(v) for v in value]
    return value


# --------------------------------------------------------------------------
# Task 1: one step of byte-pair-encoding training
# --------------------------------------------------------------------------


def _merge_step(words, counts, *, mistake: str | None = None):
    """The reference: ``(pair, merged words)``; ``mistake`` gives the usual ones."""
    pairs: collections.Counter = collections.Counter()
    if mistake == "across_words":
        joined = [symbol for word in words for symbol in word]
        for pair in itertools.pairwise(joined):
            pairs[pair] += 1
    else:
        for word, count in zip(words, counts, strict=True):
            for pair in itertools.pairwise(word):
                pairs[pair] += 1 if mistake == "unweighted" else count
    if mistake == "first_seen":
        best = max(pairs, key=lambda pair: pairs[pair])  # the first of the tied, as counted
    else:
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
    merged = []
    for word in words:
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        merged.append(out)
    return best, merged


def _words(seed: int, n: int = 12):
    rng = np.random.default_rng(seed)
    letters = list("abcde")
    words = [[str(c) for c in rng.choice(letters, rng.integers(2, 7))] for _ in range(n)]
    counts = [int(c) for c in rng.integers(1, 9, n)]
    return words, counts


MERGE_CASES = {
    # counts decide: unweighted, ('b','c') would win 3 to 2
    "weighted": ([list("ab"), list("bc"), list("bc"), list("bc")], [5, 1, 1, 1]),
    # a pair across the boundary of two words must not count
    "boundaries": ([list("xa"), list("ax"), list("ay"), list("xy")], [1, 1, 2, 2]),
    # a tie goes to the pair that sorts first
    "tie": ([list("cd"), list("ab")], [3, 3]),
    # three in a row: the pair is joined once, from the left
    "runs": ([list("aaa"), list("aab"), list("baaaa")], [4, 1, 1]),
}


def check_merge_step(merge_step, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``merge_step(words, counts)``: ``(pair, merged)``, the most frequent pair of
    neighbouring symbols (counted inside each word, each word ``counts[i]`` times; ties to
    the pair that sorts first) and every word with that pair joined, left to right.
    ``hidden``: ``{"seeds": [...]}``."""
    cases = hidden_cases(hidden, "check_merge_step")
    seeds = cases.get("seeds", [1, 2])

    def call(words, counts):
        got = merge_step([list(w) for w in words], list(counts))
        expect(
            isinstance(got, list | tuple) and len(got) == 2,
            f"merge_step should return two things, (pair, merged words); got {type(got).__name__}.",
        )
        pair, merged = got
        expect(
            isinstance(pair, list | tuple) and len(pair) == 2,
            f"the pair should be two symbols, like ('a', 'b'); got {pair!r}.",
        )
        return tuple(pair), _as_lists(merged)

    def finds_the_pair(words, counts, label):
        pair, _ = call(words, counts)
        right, _ = _merge_step(words, counts)
        if pair == right:
            return
        for mistake, message in (
            (
                "unweighted",
                "you counted each word once: count it as often as it occurs (counts[i] times)",
            ),
            (
                "across_words",
                "you counted pairs across the end of one word and the start "
                "of the next: pairs are counted inside each word only",
            ),
            (
                "first_seen",
                "on a tie you took the pair seen first: take the pair that sorts "
                "first, so the result does not depend on the words' order",
            ),
        ):
            if pair == _merge_step(words, counts, mistake=mistake)[0]:
                raise CheckFailed(f"{message} ({label} case: expected {right}, got {pair}).")
        raise CheckFailed(f"the most frequent pair of the {label} case is {right}; got {pair}.")

    def picks_the_most_frequent_pair():
        for label in ("weighted", "boundaries", "tie"):
            finds_the_pair(*MERGE_CASES[label], label)
        for seed in seeds:
            finds_the_pair(*_words(seed), f"random (seed {seed})")

    def joins_the_pair_in_every_word():
        for label, (words, counts) in [*MERGE_CASES.items()] + [
            (f"random (seed {s})", _words(s)) for s in seeds
        ]:
            _, merged = call(words, counts)
            right = _merge_step(words, counts)[1]
            if merged == right:
                continue
            expect(
                len(merged) == len(words),
                f"expected one merged word per word ({len(words)}), got {len(merged)}.",
            )
            for got, word, want in zip(merged, words, right, strict=True):
                if got == want:
                    continue
                expect(
                    "".join(map(str, got)) == "".join(word),
                    f"merging must keep the word's letters: {''.join(word)!r} became {got!r}.",
                )
                raise CheckFailed(
                    f"{''.join(word)!r} should become {want} with the pair joined from the "
                    f"left wherever it starts (after a join, continue after it); got {got} "
                    f"({label} case)."
                )

    def leaves_the_input_alone():
        words, counts = _words(seeds[0])
        copies = [list(w) for w in words]
        merge_step(copies, list(counts))
        expect(copies == words, "merge_step changed the words it was given: build new lists.")

    checks = [picks_the_most_frequent_pair, joins_the_pair_in_every_word, leaves_the_input_alone]
    return run_check("check_merge_step", merge_step, checks, quiet=quiet, task="merge_step")


# --------------------------------------------------------------------------
# Task 2: cross-attention with a padding mask
# --------------------------------------------------------------------------


def _attention(q, k, v, mask, *, mistake: str | None = None):
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    d = q.shape[-1]
    scale = {"no_scale": 1.0, "by_d": d}.get(mistake, np.sqrt(d))
    scores = q @ np.swapaxes(k, -1, -2) / scale
    keep = np.asarray(mask, bool)[:, None, :]
    if mistake == "inverted":
        keep = ~keep
    if mistake not in ("ignored", "after_softmax"):
        scores = np.where(keep, scores, -1e9)
    axis = 1 if mistake == "query_axis" else -1
    weights = np.exp(scores - scores.max(axis=axis, keepdims=True))
    weights /= weights.sum(axis=axis, keepdims=True)
    if mistake == "after_softmax":
        weights = weights * keep
    return weights @ v


def _attention_case(seed: int, n=3, tq=2, tk=5, d=4, dv=3):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, tq, d))
    k = rng.standard_normal((n, tk, d))
    v = rng.standard_normal((n, tk, dv))
    mask = np.ones((n, tk), bool)
    mask[0, 3:] = False
    mask[1, 1:] = False
    return q, k, v, mask


def check_cross_attention(cross_attention, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``cross_attention(queries, keys, values, mask)``: (N, T_q, d), (N, T_k, d),
    (N, T_k, d_v) and a boolean (N, T_k) mask, True on real tokens -> (N, T_q, d_v),
    softmax(Q K^T / sqrt(d)) V over the real tokens only; a row with no real token gets
    finite, even weights. ``hidden``: ``{"seed": s, "sizes": [n, t_q, t_k, d, d_v]}``."""
    cases = hidden_cases(hidden, "check_cross_attention")
    seed = cases.get("seed", 3)
    n, tq, tk, d, dv = cases.get("sizes", [3, 2, 5, 4, 3])
    q, k, v, mask = _attention_case(seed, n, tq, tk, d, dv)

    def call(a, b, c, m):
        return np.asarray(cross_attention(a, b, c, m), np.float64)

    def has_the_shape():
        got = call(q, k, v, mask)
        expect(
            got.shape == (n, tq, dv),
            f"expected an output of shape {(n, tq, dv)} (N, T_q, d_v); got {got.shape}.",
        )

    def matches_masked_attention():
        got = call(q, k, v, mask)
        right = _attention(q, k, v, mask)
        if np.allclose(got, right, atol=1e-6):
            return
        for mistake, message in (
            (
                "no_scale",
                "the scores are not scaled: divide them by sqrt(d), the square "
                "root of the queries' and keys' width",
            ),
            ("by_d", "the scores are divided by d: divide by its square root, sqrt(d)"),
            ("ignored", "the padding still gets weight: mask the keys where mask is False"),
            (
                "inverted",
                "the mask is the wrong way round: it is True on the real tokens, "
                "which must keep their weight",
            ),
            (
                "after_softmax",
                "the padding was zeroed after the softmax, so the weights "
                "no longer sum to 1: mask the scores before the softmax",
            ),
            (
                "query_axis",
                "the softmax runs over the queries: each query's weights over "
                "the keys (the last axis of the scores) must sum to 1",
            ),
        ):
            if np.allclose(got, _attention(q, k, v, mask, mistake=mistake), atol=1e-6):
                raise CheckFailed(f"{message}.")
        raise CheckFailed(
            "the output differs from softmax(Q K^T / sqrt(d)) V with the padding's scores "
            "replaced by a large negative number before the softmax."
        )

    def padding_values_do_not_matter():
        changed = v.copy()
        changed[~mask] = 1e3
        expect(
            np.allclose(call(q, k, changed, mask), call(q, k, v, mask), atol=1e-6),
            "changing what the padding holds changed the output: padding must get no weight.",
        )

    def the_empty_caption_is_finite():
        empty = mask.copy()
        empty[2] = False
        got = call(q, k, v, empty)
        expect(
            bool(np.all(np.isfinite(got))),
            "a caption that is all padding gave NaN: with every score at -inf the softmax "
            "divides 0 by 0. Use a large negative number (such as -1e9) instead of -inf.",
        )
        expect(
            np.allclose(got[2], np.broadcast_to(v[2].mean(axis=0), got[2].shape), atol=1e-6),
            "a caption that is all padding should attend evenly over its positions (every "
            "score equally low): its output is the mean of its values.",
        )

    checks = [
        has_the_shape,
        matches_masked_attention,
        padding_values_do_not_matter,
        the_empty_caption_is_finite,
    ]
    return run_check(
        "check_cross_attention", cross_attention, checks, quiet=quiet, task="cross_attention"
    )


# --------------------------------------------------------------------------
# Task 3: encoding a text with learned merges
# --------------------------------------------------------------------------


def _tokenize(text, merges, *, mistake: str | None = None):
    rank = {tuple(pair): i for i, pair in enumerate(merges)}
    pieces = [text] if mistake == "no_chunks" else bpe.chunks(text)
    tokens = []
    for chunk in pieces:
        symbols = list(chunk)
        if mistake == "one_pass":  # left to right, joining any learned pair as met
            i = 0
            while i + 1 < len(symbols):
                if (symbols[i], symbols[i + 1]) in rank:
                    symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
                else:
                    i += 1
        else:
            while len(symbols) > 1:
                found = [
                    (rank.get(p, len(rank)), i) for i, p in enumerate(itertools.pairwise(symbols))
                ]
                best, i = min(found)
                if best == len(rank):
                    break
                symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        tokens.extend(symbols)
    return tokens


TOKENIZE_CASES = {
    # the earlier merge wins, wherever it sits in the chunk
    "order": ("abc", [("b", "c"), ("a", "b")]),
    # a merge of merges
    "nested": ("aaaa", [("a", "a"), ("aa", "aa")]),
    # chunks: no token crosses from one word to the next
    "chunks": ("ab ab", [("b", " "), ("a", "b")]),
}


@functools.cache
def _caption_merges(limit: int = 300, merges: int = 40):
    from tutorial_lib import captions, data

    images, labels = data.load_images("mnist", "train", limit=limit)
    text = "\n".join(captions.captions(images, labels))
    return [list(pair) for pair in bpe.train_bpe(text, merges).merges]


def check_tokenize(tokenize, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``tokenize(text, merges)``: the tokens (strings) of ``text``, cut into chunks
    (:func:`tutorial_lib.bpe.chunks`), each chunk from its characters joined by the learned
    ``merges``, earliest first. ``hidden``: ``{"texts": [...]}``."""
    cases = hidden_cases(hidden, "check_tokenize")
    texts = cases.get("texts", ["a thick seven leaning right", "an eight, a nine"])

    def call(text, merges):
        got = tokenize(text, [list(pair) for pair in merges])
        expect(
            isinstance(got, list | tuple) and all(isinstance(t, str) for t in got),
            f"tokenize should return a list of strings; got {type(got).__name__}.",
        )
        expect(
            "".join(got) == text,
            f"the tokens of {text!r} should join back into it; they join into {''.join(got)!r}.",
        )
        return list(got)

    def compare(text, merges, label):
        got = call(text, merges)
        right = _tokenize(text, merges)
        if got == right:
            return
        if got == list(text):
            raise CheckFailed(f"no merge was applied to {text!r}: join the learned pairs.")
        for mistake, message in (
            (
                "one_pass",
                "you joined pairs in one pass from the left as you met them: the "
                "pair learned earliest must be joined first, wherever it is",
            ),
            (
                "no_chunks",
                "a token crosses from one chunk to the next: cut the text with "
                "bpe.chunks first and merge inside each chunk",
            ),
        ):
            if got == _tokenize(text, merges, mistake=mistake):
                raise CheckFailed(f"{message} ({label}: expected {right}, got {got}).")
        raise CheckFailed(f"{label}: {text!r} should give {right}; got {got}.")

    def applies_the_merges_in_order():
        for label, (text, merges) in TOKENIZE_CASES.items():
            compare(text, merges, f"the {label} case")

    def encodes_captions_as_the_tokenizer_does():
        merges = _caption_merges()
        for text in texts:
            compare(text, merges, "a caption")

    def unknown_pairs_stay_characters():
        got = call("zz", [("a", "b")])
        expect(got == ["z", "z"], f"with no learned pair, 'zz' should stay ['z', 'z']; got {got}.")

    checks = [
        applies_the_merges_in_order,
        encodes_captions_as_the_tokenizer_does,
        unknown_pairs_stay_characters,
    ]
    return run_check("check_tokenize", tokenize, checks, quiet=quiet, task="tokenize")


# --------------------------------------------------------------------------
# Task 4 (investigate): how many merges make every digit name one token?
# --------------------------------------------------------------------------

NAME_MERGES = {"captions": 2000}
NAMES = [
    " " + name
    for name in ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
]


@functools.cache
def _caption_text(limit: int = NAME_MERGES["captions"]) -> str:
    from tutorial_lib import captions, data

    images, labels = data.load_images("mnist", "train", limit=limit)
    return "\n".join(captions.captions(images, labels))


@functools.cache
def _singles(merges: int, limit: int = NAME_MERGES["captions"]) -> int:
    tokenizer = bpe.train_bpe(_caption_text(limit), int(merges))
    return sum(len(tokenizer.split(name)) == 1 for name in NAMES)


@functools.cache
def _name_merges(limit: int = NAME_MERGES["captions"]) -> int:
    low, high = 0, 200
    while low < high:
        middle = (low + high) // 2
        if _singles(middle, limit) == len(NAMES):
            high = middle
        else:
            low = middle + 1
    return low


def check_name_merges(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"merges": the merge counts tried, "single": how many of
    the ten digit names (with their leading space) are one token after each, "answer": the
    fewest merges that make all ten one token}``, for a tokenizer trained on the captions of
    the first 2,000 training digits. The check reruns the learner's points near the answer
    and reads the answer off the learner's own curve before comparing with its own."""
    state: dict = {}

    def returns_its_evidence():
        merges, single, answer = read_evidence(
            experiment,
            {"merges": "the merge counts you tried", "single": "how many names are one token"},
            min_points=4,
        )
        state.update(merges=merges, single=single, answer=answer)

    def the_counts_are_measured():
        merges, single = state["merges"], state["single"]
        expect(
            bool(np.all(merges == np.round(merges)) and np.all(merges >= 0)),
            "every entry of 'merges' should be a whole number of merges, 0 or more.",
        )
        expect(
            bool(np.any(single == len(NAMES)) and np.any(single < len(NAMES))),
            "your counts should cover the answer: some number of merges with fewer than ten "
            "names as one token, and some with all ten.",
        )
        near = sorted({int(m) for m in merges[np.argsort(np.abs(merges - state["answer"]))[:3]]})
        for m in near:
            got = int(single[np.flatnonzero(merges == m)[0]])
            right = _singles(m)
            if got != right:
                if _singles(m, 60000) == got:
                    raise CheckFailed(
                        "your counts are those of a tokenizer trained on every training "
                        "digit's caption; the task asks for the first 2,000."
                    )
                raise CheckFailed(
                    f"after {m} merges a rerun finds {right} of the ten names as one token; "
                    f"your curve says {got}: check the captions, the names' leading space and "
                    "how you count a single token."
                )

    def the_answer_is_read_from_the_counts():
        merges, single, answer = state["merges"], state["single"], state["answer"]
        complete = merges[single == len(NAMES)]
        below = merges[single < len(NAMES)]
        expect(
            answer in complete and answer == complete.min(),
            f"your answer {answer:.0f} is not the fewest merges at which your own counts reach "
            "ten: read it off your measurement.",
        )
        expect(
            (answer - 1) in below,
            f"your counts do not show that {answer - 1:.0f} merges are too few: measure the "
            "count just below your answer too.",
        )

    checks = [returns_its_evidence, the_counts_are_measured, the_answer_is_read_from_the_counts]
    return run_check("check_name_merges", experiment, checks, quiet=quiet, task="name_merges")
