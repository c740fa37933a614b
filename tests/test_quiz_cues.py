"""No surface cue may give a knowledge check's right option away.

A learner who has not followed the lesson should not find the answer by its look: the
one hedged option ("usually", "roughly", "can"), the longest one, the one without an
"always" or "never", or the feedback on a wrong pick that names the right answer. These
tests measure each cue over every quiz file in ``tutorial_lib/course/quizzes/`` (single- and
multiple-choice questions; numeric ones for the feedback) and fail when the right
options differ from the wrong ones by more than a small margin. Reads the TOML files
only: well under a second.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

QUIZ_DIR = Path(__file__).resolve().parents[1] / "tutorial_lib" / "course" / "quizzes"
HEDGES = {
    "about", "almost", "approximately", "can", "could", "generally", "largely", "likely",
    "mainly", "may", "might", "mostly", "nearly", "often", "partly", "probably", "rather",
    "roughly", "sometimes", "somewhat", "tend", "tends", "typically", "usually",
}  # fmt: skip
ABSOLUTES = {
    "all", "always", "cannot", "completely", "entirely", "every", "exactly", "guarantee",
    "guaranteed", "guarantees", "impossible", "must", "never", "none", "nothing", "only",
}  # fmt: skip
STOPWORDS = {
    "about", "also", "among", "and", "another", "answer", "are", "because", "been",
    "being", "both", "but", "can", "cannot", "could", "does", "doing", "done", "each",
    "either", "even", "every", "from", "give", "gives", "have", "having", "here", "into",
    "its", "itself", "just", "least", "less", "like", "many", "more", "most", "much",
    "must", "never", "none", "nothing", "only", "other", "over", "same", "should", "since",
    "some", "such", "than", "that", "their", "them", "then", "there", "these", "they",
    "this", "those", "though", "through", "under", "until", "very", "were", "what", "when",
    "where", "which", "while", "whom", "whose", "will", "with", "within", "without",
    "would", "your",
}  # fmt: skip
# How far the right options may differ from the wrong ones, over all quiz files at once
# and within one file (a file has 5 to 10 choice questions, so its own rates are noisier).
POOLED_GAP, FILE_GAP = 0.06, 0.25
LENGTH_RATIO = (0.9, 1.1)  # mean length of the right option over the wrong ones' mean
LONGEST_SHARE = 0.35  # right options that are the longest (or the shortest): chance is about 1 in 4
FEEDBACK_SHARE, FEEDBACK_WORDS = 0.5, 3  # a wrong pick's feedback may not echo the answer


def _questions():
    for path in sorted(QUIZ_DIR.glob("*.toml")):
        for question in tomllib.loads(path.read_text(encoding="utf-8"))["question"]:
            yield path.name, question


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*|\d+(?:\.\d+)?", text.lower())


def _key_words(text: str) -> set[str]:
    """The words that carry an option's meaning: numbers, and words of 4 letters or more
    that are not function words."""
    return {w for w in _words(text) if (w[0].isdigit() or len(w) >= 4) and w not in STOPWORDS}


def _has(text: str, vocabulary: set[str]) -> bool:
    return bool(set(_words(text)) & vocabulary)


def _choice_options():
    """(file, question id, right option texts, wrong options) of every choice question."""
    for name, question in _questions():
        if question["kind"] not in ("choice", "multiple"):
            continue
        answer = question["answer"]
        right = set(answer) if isinstance(answer, list) else {answer}
        options = question["options"]
        yield (
            name,
            question,
            [o["text"] for i, o in enumerate(options) if i in right],
            [o for i, o in enumerate(options) if i not in right],
        )


def cue_rates(vocabulary: set[str]) -> dict:
    """Per file and over all files (key "all"): the fraction of right options and of wrong
    options that use a word of ``vocabulary``, as ``(right, wrong)``."""
    counts: dict = {}
    for name, _, right, wrong in _choice_options():
        for key in (name, "all"):
            found = counts.setdefault(key, [[], []])
            found[0] += [_has(text, vocabulary) for text in right]
            found[1] += [_has(option["text"], vocabulary) for option in wrong]
    return {key: (sum(r) / len(r), sum(w) / len(w)) for key, (r, w) in counts.items()}


def _gaps(rates: dict, sign: int) -> list[str]:
    """The files (and "all") where sign * (right - wrong) exceeds its allowed gap."""
    return [
        f"{key}: right options {right:.0%}, wrong options {wrong:.0%}"
        for key, (right, wrong) in rates.items()
        if sign * (right - wrong) > (POOLED_GAP if key == "all" else FILE_GAP)
    ]


def test_the_right_option_is_not_the_hedged_one():
    too_hedged = _gaps(cue_rates(HEDGES), +1)
    assert not too_hedged, "right options hedge more than wrong ones:\n" + "\n".join(too_hedged)


def test_absolutes_are_not_only_in_the_wrong_options():
    absolute = _gaps(cue_rates(ABSOLUTES), -1)
    assert not absolute, "wrong options say 'always', 'never', 'only'... more:\n" + "\n".join(
        absolute
    )


def test_the_right_option_is_neither_the_longest_nor_the_shortest():
    ratios, longest = [], []
    for _, _, right, wrong in _choice_options():
        mean_wrong = sum(len(o["text"]) for o in wrong) / len(wrong)
        ratios += [len(text) / mean_wrong for text in right]
        longest += [len(text) > max(len(o["text"]) for o in wrong) for text in right]
    mean = sum(ratios) / len(ratios)
    assert LENGTH_RATIO[0] <= mean <= LENGTH_RATIO[1], f"right options are {mean:.2f} times as long"
    share = sum(longest) / len(longest)
    assert share <= LONGEST_SHARE, f"the right option is the longest in {share:.0%} of questions"
    shortest = [
        len(text) < min(len(o["text"]) for o in wrong)
        for _, _, right, wrong in _choice_options()
        for text in right
    ]
    share = sum(shortest) / len(shortest)
    assert share <= LONGEST_SHARE, f"the right option is the shortest in {share:.0%} of questions"


def echoed_answers() -> list[str]:
    """Wrong-option feedback that repeats the right option's key words (at least
    FEEDBACK_WORDS of them and FEEDBACK_SHARE of those not already in the question or the
    wrong option), and numeric feedback that states the answer."""
    found = []
    for name, question, right, wrong in _choice_options():
        given = _key_words(question["text"])
        for option in wrong:
            keys = set().union(*map(_key_words, right)) - given - _key_words(option["text"])
            echoed = keys & _key_words(option.get("feedback", ""))
            if keys and len(echoed) >= FEEDBACK_WORDS and len(echoed) >= FEEDBACK_SHARE * len(keys):
                found.append(f"{name} {question['id']}: {sorted(echoed)} in {option['feedback']!r}")
    for name, question in _questions():
        if question["kind"] != "numeric":
            continue
        answer = f"{question['answer']:g}"
        for band in question.get("ranges", []):
            if answer in _words(band["feedback"]) and answer not in _words(question["text"]):
                found.append(
                    f"{name} {question['id']}: the answer {answer} in {band['feedback']!r}"
                )
    return found


def test_wrong_option_feedback_does_not_give_the_answer_away():
    echoed = echoed_answers()
    assert not echoed, "feedback on a wrong pick that repeats the answer:\n" + "\n".join(echoed)


@pytest.mark.parametrize(
    ("text", "hedged", "absolute"),
    [
        ("It usually helps.", True, False),
        ("It always helps.", False, True),
        ("It helps the loss.", False, False),
    ],
)
def test_the_cue_words_are_found_as_words(text, hedged, absolute):
    assert _has(text, HEDGES) is hedged and _has(text, ABSOLUTES) is absolute
