import ast
import math
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from tutorial_lib.course import quiz

ROOT = Path(__file__).resolve().parents[1]
QUIZ_FILES = quiz.all_quiz_files()
ALL_QUESTIONS = [
    (path.stem, question) for path in QUIZ_FILES for question in quiz.load_quiz_file(path).questions
]
ALL_IDS = {question.id for _, question in ALL_QUESTIONS}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _question_id(value):
    return getattr(value, "id", value)


def _wrong_responses(question):
    """Every response other than the marked answer (all other subsets for 'multiple')."""
    if question.kind == "choice":
        return [i for i in range(len(question.options)) if i != question.answer]
    if question.kind == "multiple":
        n = len(question.options)
        subsets = [[i for i in range(n) if mask >> i & 1] for mask in range(1, 2**n)]
        return [s for s in subsets if tuple(s) != question.answer]
    inside_ranges = [
        band.low + 0.5 * (band.high - band.low)
        if math.isfinite(band.low) and math.isfinite(band.high)
        else (band.high - 1.0 if math.isfinite(band.high) else band.low + 1.0)
        for band in question.ranges
    ]
    return [
        question.answer + 2 * question.tolerance + 1e-6,
        question.answer - 1.0,
        question.answer * 10 + 7,
        *inside_ranges,
    ]


def _right_response(question):
    return list(question.answer) if question.kind == "multiple" else question.answer


def _gives_away(question, message: str) -> str | None:
    """What in ``message`` reveals the answer of ``question``, or None."""
    if question.kind == "numeric":
        close = max(question.tolerance, 1e-9)
        for token in NUMBER.findall(message):
            if abs(float(token) - question.answer) <= close:
                return f"the number {token}"
        return None
    right = [question.answer] if question.kind == "choice" else list(question.answer)
    for index in right:
        if question.options[index] in message:
            return f"the text of option {quiz.letter(index)}"
        if quiz.letter(index) in message:
            return f"the letter {quiz.letter(index)}"
    return None


# --------------------------------------------------------------------------
# Every question: right answer accepted, everything else rejected, and the
# feedback on a wrong attempt teaches without giving the answer away
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name, question", ALL_QUESTIONS, ids=_question_id)
def test_the_marked_answer_is_accepted_and_every_other_rejected(name, question):
    right = question.check(_right_response(question))
    assert right.correct and right.verdict == quiz.RIGHT
    assert right.explanation == question.explanation  # a right answer gets the whole story
    for wrong in [*_wrong_responses(question), "nan"]:
        feedback = question.check(wrong)
        assert not feedback.correct, f"{name}/{question.id}: {wrong!r} accepted"


@pytest.mark.parametrize("name, question", ALL_QUESTIONS, ids=_question_id)
def test_a_wrong_attempt_gets_specific_feedback_and_a_hint_but_not_the_answer(name, question):
    for wrong in _wrong_responses(question):
        first = question.check(wrong, attempt=1)
        assert first.verdict == quiz.WRONG and first.detail, (question.id, wrong)
        assert first.hint == question.hint and not first.explanation
        assert question.explanation not in first.message
        leak = _gives_away(question, first.message)
        assert leak is None, f"{name}/{question.id}: feedback on {wrong!r} reveals {leak}"
        if question.kind == "choice":
            assert first.detail == question.feedback[wrong]
        if question.kind == "multiple":
            for index in set(wrong) - set(question.answer):
                assert question.feedback[index] in first.detail
        # The second wrong attempt brings the full explanation.
        second = question.check(wrong, attempt=2)
        assert not second.correct and second.explanation == question.explanation
        assert question.explanation in second.message and not second.hint


@pytest.mark.parametrize("name, question", ALL_QUESTIONS, ids=_question_id)
def test_feedback_differs_by_option_or_range(name, question):
    texts = [t for t in question.feedback if t] or [band.feedback for band in question.ranges]
    assert len(set(texts)) == len(texts), f"{name}/{question.id}: feedback repeated"
    for text in texts:
        assert question.explanation not in text
    if question.kind == "numeric":
        for band in question.ranges:
            value = _wrong_responses(question)[3 + question.ranges.index(band)]
            assert question.check(value).detail == band.feedback


# --------------------------------------------------------------------------
# The form of every quiz file: enough questions, most of them asking to apply,
# and no answer that can be told by its letter or its length
# --------------------------------------------------------------------------


def _single_choice(path):
    return [q for q in quiz.load_quiz_file(path).questions if q.kind == "choice"]


@pytest.mark.parametrize("path", QUIZ_FILES, ids=lambda p: p.stem)
def test_enough_questions_and_at_least_half_ask_to_apply(path):
    questions = quiz.load_quiz_file(path).questions
    assert len(questions) >= 8, f"{path.name}: {len(questions)} questions"
    apply = sum(q.skill == "apply" for q in questions)
    assert 2 * apply >= len(questions), f"{path.name}: {apply} of {len(questions)} ask to apply"


@pytest.mark.parametrize("path", QUIZ_FILES, ids=lambda p: p.stem)
def test_no_option_letter_is_right_too_often(path):
    singles = _single_choice(path)
    limit = max(2, math.ceil(len(singles) / 3))
    counts = Counter(quiz.letter(q.answer) for q in singles)
    assert max(counts.values(), default=0) <= limit, f"{path.name}: {dict(counts)}, limit {limit}"


@pytest.mark.parametrize("path", QUIZ_FILES, ids=lambda p: p.stem)
def test_the_right_option_is_seldom_the_longest_or_much_longer(path):
    singles = _single_choice(path)
    longest = []
    for q in singles:
        right = len(q.options[q.answer])
        others = [len(o) for i, o in enumerate(q.options) if i != q.answer]
        if right > max(others):
            longest.append(q.id)
        assert right <= 1.3 * sum(others) / len(others), f"{path.name}/{q.id}: answer stands out"
    assert len(longest) <= math.ceil(len(singles) / 3), f"{path.name}: longest in {longest}"


@pytest.mark.parametrize("path", QUIZ_FILES, ids=lambda p: p.stem)
def test_multiple_select_answers_vary_within_a_quiz(path):
    multiple = [q for q in quiz.load_quiz_file(path).questions if q.kind == "multiple"]
    assert all(len(q.answer) < len(q.options) for q in multiple)  # never "all of them"
    if len(multiple) >= 2:
        answers = [set(q.answer) for q in multiple]
        assert len({tuple(sorted(a)) for a in answers}) > 1, f"{path.name}: always the same"
        assert not set.intersection(*answers), f"{path.name}: one option always right"


def test_multiple_select_answers_vary_across_quizzes():
    questions = [q for _, q in ALL_QUESTIONS if q.kind == "multiple"]
    if len(questions) >= 2:
        assert not set.intersection(*(set(q.answer) for q in questions))
        assert len({len(q.answer) for q in questions}) > 1 or len(questions) < 3


def _example_calls(text: str):
    """(question id, response) of every ``.answer("id", response)`` call in ``text``."""
    for match in re.finditer(r"\.answer\(\s*\"([^\"]+)\"\s*,\s*(.+?)\)", text):
        yield match.group(1), ast.literal_eval(match.group(2))


def _notebook_texts():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
            yield f"{path.name} cell {number}", cell.source


def test_no_example_answers_a_real_question():
    texts = list(_notebook_texts())
    texts += [(f"{p.stem} fallback text", quiz.load_quiz_file(p).as_text()) for p in QUIZ_FILES]
    examples = [(where, call) for where, text in texts for call in _example_calls(text)]
    assert any("fallback" in where for where, _ in examples)  # the check does look
    questions = {question.id: question for _, question in ALL_QUESTIONS}
    for where, (question_id, response) in examples:
        if question_id in questions:
            verdict = questions[question_id].check(response)
            assert not verdict.correct, f"{where}: the example answers {question_id!r}"


# --------------------------------------------------------------------------
# Attempts, summary, text mode
# --------------------------------------------------------------------------


def _solve_all(q, *, first_wrong=()):
    for question in q.questions:
        if question.id in first_wrong:
            q.answer(question.id, _wrong_responses(question)[0], quiet=True)
        q.answer(question.id, _right_response(question), quiet=True)


def test_answers_by_letter_text_list_and_numeric_string():
    q = quiz.load_quiz("01_autoencoder")
    dead = q.question("dead_code_units")
    assert q.answer("dead_code_units", "a", quiet=True).correct
    assert q.answer("dead_code_units", "(A)", quiet=True).correct
    assert q.answer("dead_code_units", dead.options[0], quiet=True).correct
    assert q.answer("code_bytes", " 6.125 ", quiet=True).correct
    assert q.answer("random_codes", ["b", "c", "d"], quiet=True).correct
    assert not q.answer("random_codes", ["b", "c"], quiet=True).correct


@pytest.mark.parametrize(
    "question_id, response",
    [
        ("code_bytes", "lots"),
        ("code_bytes", "inf"),
        ("dead_code_units", "z"),
        ("dead_code_units", 7),
        ("dead_code_units", True),
        ("dead_code_units", ["a"]),
        ("random_codes", ["a", "q"]),
        ("random_codes", []),
    ],
)
def test_unreadable_answers_say_why(question_id, response):
    feedback = quiz.load_quiz("01_autoencoder").answer(question_id, response, quiet=True)
    assert not feedback.readable and not feedback.correct
    assert feedback.message.startswith("Could not read that answer:")


def test_the_first_attempt_counts_and_unreadable_answers_are_no_attempt():
    q = quiz.load_quiz("01_autoencoder")
    q.answer("code_bytes", "lots", quiet=True)
    assert q.summary().answered == 0 and "code_bytes" not in q.attempts
    q.answer("code_bytes", 24.5, quiet=True)  # wrong first, then right
    q.answer("code_bytes", 6.125, quiet=True)
    q.answer("dead_code_units", "a", quiet=True)  # right first, then wrong
    q.answer("dead_code_units", "b", quiet=True)
    assert q.results == {"code_bytes": False, "dead_code_units": True}
    summary = q.summary()
    assert (summary.answered, summary.right_first_time, summary.solved) == (2, 1, 2)
    assert summary.to_review == (2,) and not summary.complete
    assert summary.line == "Progress: 2 of 10 questions answered, 1 right at the first attempt."


def test_the_summary_line_is_printed_once_when_the_last_question_is_answered(capsys):
    q = quiz.load_quiz("02_vae")
    missed = [q.questions[1].id, q.questions[4].id]
    *rest, last = q.questions
    for question in rest:
        if question.id in missed:
            q.answer(question.id, _wrong_responses(question)[0])
        q.answer(question.id, _right_response(question))
    assert "Summary" not in capsys.readouterr().out
    q.answer(last.id, _right_response(last))
    out = capsys.readouterr().out
    total = len(q.questions)
    assert out.count(f"Summary: {total - 2} of {total} right at the first attempt.") == 1
    assert "Worth another look: Q2, Q5." in out
    q.answer(last.id, _right_response(last))  # answering again prints no second summary
    assert "Summary" not in capsys.readouterr().out
    summary = q.summary()
    assert summary.complete and summary.right_first_time == total - 2 and summary.solved == total
    assert str(summary) == summary.line


def test_text_mode_feedback_matches_the_widget_parts(capsys):
    q = quiz.load_quiz("03_gan")
    question = q.question("frozen_discriminator")
    q.answer(question.id, "a")
    out = capsys.readouterr().out
    assert out.startswith(f"[{question.id}] Not quite. {question.feedback[0]}")
    assert f"Hint: {question.hint}" in out and "Explanation" not in out
    q.answer(question.id, "b")
    out = capsys.readouterr().out
    assert question.feedback[1] in out and f"Explanation: {question.explanation}" in out


def test_answering_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    q = quiz.load_quiz("05_diffusion")
    _solve_all(q, first_wrong={"noise_scale"})
    assert q.summary().complete and not list(tmp_path.iterdir())


def test_unknown_question_lists_the_ids():
    with pytest.raises(KeyError, match="wide_code"):
        quiz.load_quiz("01_autoencoder").answer("nope", 0)


def test_headless_show_prints_readable_text(capsys):
    assert quiz.load_quiz("01_autoencoder").show() is None  # no IPython here
    text = capsys.readouterr().out
    assert "Q1 [wide_code]" in text and "(c) The network copies the pixels" in text
    assert '      layers.Dense(32, activation="relu"),   # the code' in text  # code, indented
    assert "knowledge_check.answer(" in text and "knowledge_check.summary()" in text


# --------------------------------------------------------------------------
# The widget
# --------------------------------------------------------------------------


def test_display_bundle_has_a_widget_and_a_text_version():
    view = quiz._QuizView(quiz.load_quiz("01_autoencoder"))
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Knowledge check: 10 questions")
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_widget_gives_option_feedback_then_the_explanation_and_a_summary():
    q = quiz.load_quiz("01_autoencoder")
    widget = quiz.build_widget(q)
    header, *items, progress = widget.children
    assert "Progress: 0 of 10" in progress.value
    question = q.questions[0]
    title, picker, button, feedback = items[0].children
    assert question.options[0] in picker.options[0][0]  # options are lettered
    button.click()
    assert "Pick an answer first" in feedback.value
    picker.index = 0  # a wrong answer
    button.click()
    escaped = quiz.html.escape(question.feedback[0])
    assert "Not quite." in feedback.value and escaped in feedback.value
    assert "Hint:" in feedback.value and "Explanation:" not in feedback.value
    assert quiz.html.escape(question.options[question.answer]) not in feedback.value
    picker.index = question.answer
    button.click()
    assert "Correct!" in feedback.value and "Explanation:" in feedback.value
    assert q.results[question.id] is False  # the first attempt counts
    for item, other in zip(items[1:], q.questions[1:], strict=True):
        _, picker, button, feedback = item.children
        if other.kind == "choice":
            picker.index = other.answer
        elif other.kind == "multiple":
            for index, box in enumerate(picker.children):
                box.value = index in other.answer
        else:
            picker.value = str(other.answer)
        button.click()
        assert "Correct!" in feedback.value, other.id
    assert "Summary: 9 of 10 right at the first attempt. Worth another look: Q1." in progress.value


def test_widget_second_wrong_attempt_shows_the_explanation():
    q = quiz.load_quiz("04b_transformer_gpt")
    items = quiz.build_widget(q).children[1:-1]
    number = next(i for i, question in enumerate(q.questions) if question.kind == "multiple")
    question = q.questions[number]
    _, boxes, button, feedback = items[number].children
    boxes.children[1].value = True  # a false statement
    button.click()
    assert quiz.html.escape(question.feedback[1]) in feedback.value
    assert "Explanation:" not in feedback.value
    button.click()
    assert "Explanation:" in feedback.value


# --------------------------------------------------------------------------
# Malformed files
# --------------------------------------------------------------------------

GOOD = """
[[question]]
id = "q1"
kind = "choice"
skill = "apply"
text = "?"
answer = 0
hint = "look"
explanation = "because"

  [[question.options]]
  text = "a"

  [[question.options]]
  text = "b"
  feedback = "why not b"
"""

NUMERIC = """
[[question]]
id = "n"
kind = "numeric"
skill = "apply"
text = "?"
answer = 10
tolerance = 0.5
hint = "look"
explanation = "because"

  [[question.ranges]]
  min = 99
  max = 101
  feedback = "a factor of 10 too much"
"""


def test_the_fixtures_load(tmp_path):
    for number, text in enumerate((GOOD, NUMERIC)):
        path = tmp_path / f"ok{number}.toml"
        path.write_text(text)
        assert len(quiz.load_quiz_file(path).questions) == 1


@pytest.mark.parametrize(
    "base, edit, message",
    [
        (GOOD, lambda t: t.replace("answer = 0", "answer = 5"), "answer 5 is not an option index"),
        (
            GOOD,
            lambda t: t.replace('explanation = "because"\n', ""),
            "missing the key 'explanation'",
        ),
        (GOOD, lambda t: t.replace('hint = "look"\n', ""), "missing the key 'hint'"),
        (GOOD, lambda t: t.replace('skill = "apply"', 'skill = "guess"'), "skill must be one of"),
        (GOOD, lambda t: t.replace('kind = "choice"', 'kind = "essay"'), "kind must be one of"),
        (GOOD, lambda t: t.split("  [[question.options]]")[0], "at least two"),
        (GOOD, lambda t: t.replace('  feedback = "why not b"\n', ""), "(b) is wrong and needs"),
        (GOOD, lambda t: t.replace('text = "a"', 'text = "a"\n  feedback = "x"'), "(a) is right"),
        (GOOD, lambda t: t.replace('text = "b"', 'text = "a"'), "same text"),
        (GOOD, lambda t: t + t, "question ids must be unique"),
        (
            GOOD,
            lambda t: t.replace("answer = 0", 'answer = 0\nnote = "x"'),
            "unknown keys ['note']",
        ),
        (GOOD, lambda t: t.replace("[[question]]", "[[question"), "not valid TOML"),
        (GOOD, lambda t: "", "no [[question]] entries"),
        (NUMERIC, lambda t: t.replace("answer = 10", 'answer = "ten"'), "must be a number"),
        (NUMERIC, lambda t: t.split("  [[question.ranges]]")[0], "needs [[question.ranges]]"),
        (NUMERIC, lambda t: t.replace("min = 99", "min = 9"), "overlaps the accepted answer"),
        (NUMERIC, lambda t: t.replace("max = 101", "max = 98"), "numbers min < max"),
    ],
)
def test_malformed_files_name_the_file_and_question(tmp_path, base, edit, message):
    path = tmp_path / "broken.toml"
    path.write_text(edit(base))
    with pytest.raises(quiz.QuizFormatError) as info:
        quiz.load_quiz_file(path)
    assert str(path) in str(info.value) and message in str(info.value)
    if "question" not in message and "TOML" not in message:
        assert "question 1 (id" in str(info.value)
