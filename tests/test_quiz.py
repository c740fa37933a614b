import pytest

from tutorial_lib import quiz

ALL_QUESTIONS = [
    (path.stem, question)
    for path in quiz.all_quiz_files()
    for question in quiz.load_quiz_file(path).questions
]


def _wrong_responses(question):
    """Every response other than the marked answer (all other subsets for 'multiple')."""
    if question.kind == "choice":
        return [i for i in range(len(question.options)) if i != question.answer]
    if question.kind == "multiple":
        n = len(question.options)
        subsets = [[i for i in range(n) if mask >> i & 1] for mask in range(1, 2**n)]
        return [s for s in subsets if tuple(s) != question.answer]
    return [question.answer + 2 * question.tolerance + 1e-6, question.answer - 1.0, "nan"]


def test_every_notebook_quiz_has_at_least_six_questions():
    for path in quiz.all_quiz_files():
        assert len(quiz.load_quiz_file(path).questions) >= 6, path.name


@pytest.mark.parametrize("name, question", ALL_QUESTIONS, ids=lambda v: getattr(v, "id", v))
def test_the_marked_answer_is_accepted_and_every_other_rejected(name, question):
    right = list(question.answer) if question.kind == "multiple" else question.answer
    assert question.check(right).correct
    for wrong in _wrong_responses(question):
        feedback = question.check(wrong)
        assert not feedback.correct, f"{name}/{question.id}: {wrong!r} accepted"
        assert question.explanation in feedback.message


def test_answers_by_letter_text_and_numeric_string():
    q = quiz.load_quiz("01_autoencoder")
    assert q.answer("bottleneck", "b", quiet=True).correct
    assert q.answer("sigmoid_output", q.question("sigmoid_output").options[0], quiet=True).correct
    assert q.answer("compression_ratio", " 24.5 ", quiet=True).correct
    assert q.answer("anomaly_signal", ["a", "b"], quiet=True).correct
    assert not q.answer("anomaly_signal", ["a"], quiet=True).correct
    assert q.score == "3 of 8 right (4 answered)"  # the last answer to a question counts
    assert "Could not read" in q.answer("compression_ratio", "lots", quiet=True).message


def test_unknown_question_lists_the_ids():
    with pytest.raises(KeyError, match="bottleneck"):
        quiz.load_quiz("01_autoencoder").answer("nope", 0)


def test_headless_show_prints_readable_text(capsys):
    assert quiz.load_quiz("01_autoencoder").show() is None  # no IPython here
    text = capsys.readouterr().out
    assert "Q1 [bottleneck]" in text and "(b) Without it" in text and "quiz.answer(" in text


def test_display_bundle_has_a_widget_and_a_text_version():
    view = quiz._QuizView(quiz.load_quiz("01_autoencoder"))
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Knowledge check: 8 questions")
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_widget_check_button_gives_feedback():
    q = quiz.load_quiz("01_autoencoder")
    widget = quiz.build_widget(q)
    first = widget.children[1]  # the header comes first
    title, picker, button, feedback = first.children
    button.click()
    assert "Pick an answer first" in feedback.value
    picker.index = 0  # a wrong answer
    button.click()
    assert "Not quite." in feedback.value and q.results["bottleneck"] is False
    picker.index = 1
    button.click()
    assert "Correct!" in feedback.value and q.results["bottleneck"] is True


GOOD = """
[[question]]
id = "q1"
kind = "choice"
text = "?"
options = ["a", "b"]
answer = 0
explanation = "because"
"""


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("answer = 0", "answer = 5"), "answer 5 is not an option index 0..1"),
        (lambda t: t.replace('explanation = "because"\n', ""), "missing the key 'explanation'"),
        (lambda t: t.replace('kind = "choice"', 'kind = "essay"'), "kind must be one of"),
        (lambda t: t.replace('options = ["a", "b"]', 'options = ["a"]'), "at least two options"),
        (lambda t: t + t, "question ids must be unique"),
        (lambda t: t.replace("answer = 0", 'answer = 0\nhint = "x"'), "unknown keys ['hint']"),
        (lambda t: t.replace("[[question]]", "[[question"), "not valid TOML"),
        (lambda t: "", "no [[question]] entries"),
    ],
)
def test_malformed_files_name_the_file_and_question(tmp_path, edit, message):
    path = tmp_path / "broken.toml"
    path.write_text(edit(GOOD))
    with pytest.raises(quiz.QuizFormatError) as info:
        quiz.load_quiz_file(path)
    assert str(path) in str(info.value) and message in str(info.value)
    if "question" not in message and "TOML" not in message:
        assert "question 1 (id 'q1')" in str(info.value)


def test_numeric_question_needs_a_numeric_answer(tmp_path):
    path = tmp_path / "n.toml"
    path.write_text(
        '[[question]]\nid = "n"\nkind = "numeric"\ntext = "?"\nanswer = "ten"\nexplanation = "."\n'
    )
    with pytest.raises(quiz.QuizFormatError, match="question 1 .* must be a number"):
        quiz.load_quiz_file(path)
