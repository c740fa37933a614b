"""Knowledge checks at the end of every notebook.

Questions live as data, one TOML file per notebook in ``tutorial_lib/quizzes/``::

    [[question]]
    id = "bottleneck"
    kind = "choice"                 # one right option
    text = "Why does an autoencoder need a bottleneck?"
    options = ["...", "...", "..."]
    answer = 1                      # index into options, from 0
    explanation = "Shown after every attempt, right or wrong."

    [[question]]
    id = "compression"
    kind = "multiple"               # several right options: answer = [0, 2]
    ...

    [[question]]
    id = "ratio"
    kind = "numeric"                # a number, accepted within the tolerance
    text = "784 pixels into a 32-number code: by what factor is it compressed?"
    answer = 24.5
    tolerance = 0.1
    explanation = "784 / 32 = 24.5."

In JupyterLab, :meth:`Quiz.show` renders each question as widgets: pick,
press *Check*, see right or wrong with the explanation, try again. Without a
widget front end (nbval, papermill, a plain ``python`` run) the same call
prints the questions as readable text, and :meth:`Quiz.answer` answers one
programmatically.
"""

from __future__ import annotations

import dataclasses
import html
import math
import tomllib
from pathlib import Path

QUIZ_DIR = Path(__file__).with_name("quizzes")
KINDS = ("choice", "multiple", "numeric")


class QuizFormatError(ValueError):
    """A question file is malformed; the message names the file and the question."""


@dataclasses.dataclass(frozen=True)
class Feedback:
    """The verdict on one response."""

    correct: bool
    message: str

    def __str__(self) -> str:
        return self.message


@dataclasses.dataclass(frozen=True)
class Question:
    """One question: its text, options (for choices), right answer and explanation."""

    id: str
    kind: str
    text: str
    answer: int | tuple[int, ...] | float
    explanation: str
    options: tuple[str, ...] = ()
    tolerance: float = 0.0

    def check(self, response) -> Feedback:
        """Judge ``response``: an option index (or its text) for ``choice``, a list
        of them for ``multiple``, a number (or numeric text) for ``numeric``."""
        try:
            correct = self._is_correct(response)
        except (TypeError, ValueError) as error:
            return Feedback(False, f"Could not read that answer: {error}")
        verdict = "Correct!" if correct else "Not quite."
        return Feedback(correct, f"{verdict} {self.explanation}")

    def _is_correct(self, response) -> bool:
        if self.kind == "numeric":
            value = float(str(response).strip()) if isinstance(response, str) else float(response)
            return math.isfinite(value) and abs(value - self.answer) <= self.tolerance
        if self.kind == "choice":
            return self._index(response) == self.answer
        chosen = {self._index(item) for item in response}
        return chosen == set(self.answer)

    def _index(self, response) -> int:
        """An option given by index, by letter ("b") or by its full text."""
        if isinstance(response, str):
            text = response.strip()
            if text in self.options:
                return self.options.index(text)
            if len(text) == 1 and text.isalpha():
                return ord(text.lower()) - ord("a")
            raise ValueError(f"{response!r} is not one of the options")
        return int(response)

    def as_text(self, number: int) -> str:
        """The question as plain text, options lettered (a), (b), ..."""
        lines = [f"Q{number} [{self.id}] {self.text}"]
        lines += [f"   ({chr(ord('a') + i)}) {option}" for i, option in enumerate(self.options)]
        if self.kind == "multiple":
            lines.append("   (several options may be right)")
        if self.kind == "numeric":
            lines.append("   (answer with a number)")
        return "\n".join(lines)


@dataclasses.dataclass
class Quiz:
    """The questions of one notebook, with the learner's results so far."""

    name: str
    questions: list[Question]
    results: dict[str, bool] = dataclasses.field(default_factory=dict)

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        ids = ", ".join(q.id for q in self.questions)
        raise KeyError(f"No question {question_id!r} in quiz {self.name!r}; its ids are: {ids}.")

    def answer(self, question_id: str, response, *, quiet: bool = False) -> Feedback:
        """Answer one question programmatically; prints and returns the feedback."""
        feedback = self.question(question_id).check(response)
        self.results[question_id] = feedback.correct
        if not quiet:
            print(f"[{question_id}] {feedback}")
        return feedback

    @property
    def score(self) -> str:
        right = sum(self.results.values())
        return f"{right} of {len(self.questions)} right ({len(self.results)} answered)"

    def as_text(self) -> str:
        head = f"Knowledge check: {len(self.questions)} questions"
        body = "\n\n".join(q.as_text(i + 1) for i, q in enumerate(self.questions))
        tail = f'Answer in code, e.g. quiz.answer("{self.questions[0].id}", "b").'
        return f"{head}\n\n{body}\n\n{tail}"

    def show(self):
        """Widgets in JupyterLab; readable text elsewhere (see :class:`_QuizView`).

        In IPython the returned view displays itself; in a plain ``python`` run
        the questions are printed and nothing is returned.
        """
        try:
            from IPython import get_ipython
        except ImportError:
            get_ipython = None
        if get_ipython is None or get_ipython() is None:
            print(self.as_text())
            return None
        return _QuizView(self)

    def __repr__(self) -> str:
        return f"Quiz({self.name!r}, {len(self.questions)} questions)"


# --------------------------------------------------------------------------
# Loading and validating question files
# --------------------------------------------------------------------------


def _fail(path: Path, where: str, problem: str):
    raise QuizFormatError(f"{path}: {where}: {problem}")


def _parse_question(raw: dict, number: int, path: Path) -> Question:
    where = f"question {number} (id {raw.get('id', '?')!r})"
    for key in ("id", "kind", "text", "answer", "explanation"):
        if key not in raw:
            _fail(path, where, f"missing the key {key!r}")
    kind = raw["kind"]
    if kind not in KINDS:
        _fail(path, where, f"kind must be one of {KINDS}, not {kind!r}")
    unknown = set(raw) - {"id", "kind", "text", "answer", "explanation", "options", "tolerance"}
    if unknown:
        _fail(path, where, f"unknown keys {sorted(unknown)}")
    options = tuple(raw.get("options", ()))
    answer = raw["answer"]
    if kind == "numeric":
        if options:
            _fail(path, where, "a numeric question has no options")
        if not isinstance(answer, int | float) or isinstance(answer, bool):
            _fail(path, where, f"the answer of a numeric question must be a number, not {answer!r}")
        tolerance = raw.get("tolerance", 0.0)
        if not isinstance(tolerance, int | float) or tolerance < 0:
            _fail(path, where, f"tolerance must be a number >= 0, not {tolerance!r}")
        return Question(
            raw["id"],
            kind,
            raw["text"],
            float(answer),
            raw["explanation"],
            tolerance=float(tolerance),
        )
    if len(options) < 2:
        _fail(path, where, "a choice question needs at least two options")
    if len(set(options)) != len(options):
        _fail(path, where, "two options have the same text")
    indices = [answer] if kind == "choice" else answer
    if kind == "multiple" and (not isinstance(answer, list) or not answer):
        _fail(path, where, f"the answer of a multiple question is a non-empty list, not {answer!r}")
    for index in indices:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(options):
            _fail(path, where, f"answer {index!r} is not an option index 0..{len(options) - 1}")
    final = answer if kind == "choice" else tuple(sorted(set(answer)))
    return Question(raw["id"], kind, raw["text"], final, raw["explanation"], options=options)


def load_quiz_file(path: str | Path) -> Quiz:
    """Read and validate one question file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise QuizFormatError(f"{path}: not valid TOML: {error}") from error
    entries = raw.get("question")
    if not isinstance(entries, list) or not entries:
        raise QuizFormatError(f"{path}: no [[question]] entries")
    questions = [_parse_question(entry, i + 1, path) for i, entry in enumerate(entries)]
    ids = [q.id for q in questions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise QuizFormatError(f"{path}: question ids must be unique; repeated: {duplicates}")
    return Quiz(path.stem, questions)


def load_quiz(name: str) -> Quiz:
    """The quiz of a notebook by name, e.g. ``load_quiz("01_autoencoder")``."""
    path = QUIZ_DIR / f"{name}.toml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in QUIZ_DIR.glob("*.toml")))
        raise FileNotFoundError(f"No quiz named {name!r} in {QUIZ_DIR}; available: {available}.")
    return load_quiz_file(path)


def all_quiz_files() -> list[Path]:
    """Every question file shipped with the package."""
    return sorted(QUIZ_DIR.glob("*.toml"))


# --------------------------------------------------------------------------
# Rendering: widgets in a live front end, text everywhere else
# --------------------------------------------------------------------------


class _QuizView:
    """What :meth:`Quiz.show` returns.

    Its display bundle holds both the ipywidgets view (which JupyterLab renders
    as live widgets) and a plain-text version of the questions (which nbval,
    nbconvert and terminals show). Outside IPython it prints the text.
    """

    def __init__(self, quiz: Quiz):
        self.quiz = quiz
        self.widget = None

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": self.quiz.as_text()}
        try:
            self.widget = build_widget(self.quiz)
        except ImportError:
            return bundle
        widget_bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        widget_bundle.update(bundle)
        return widget_bundle

    def __repr__(self) -> str:
        return self.quiz.as_text()


def _feedback_html(feedback: Feedback) -> str:
    colour = "#1a7f37" if feedback.correct else "#b42318"
    mark = "&#10004;" if feedback.correct else "&#10008;"
    return f'<div style="color:{colour}">{mark} {html.escape(feedback.message)}</div>'


def _question_widget(quiz: Quiz, number: int, question: Question):
    import ipywidgets as w

    title = w.HTML(f"<b>Q{number}.</b> {html.escape(question.text)}")
    if question.kind == "choice":
        picker = w.RadioButtons(
            options=list(question.options), value=None, layout=w.Layout(width="auto")
        )

        def response():
            return picker.index
    elif question.kind == "multiple":
        boxes = [
            w.Checkbox(description=o, indent=False, layout=w.Layout(width="auto"))
            for o in question.options
        ]
        picker = w.VBox(boxes)

        def response():
            return [i for i, box in enumerate(boxes) if box.value]
    else:
        picker = w.Text(placeholder="type a number")

        def response():
            return picker.value

    button = w.Button(description="Check", button_style="primary")
    feedback = w.HTML()

    def on_check(_):
        answer = response()
        if answer is None or answer == "":
            feedback.value = "<i>Pick an answer first.</i>"
            return
        result = quiz.answer(question.id, answer, quiet=True)
        feedback.value = _feedback_html(result)

    button.on_click(on_check)
    box = w.VBox([title, picker, button, feedback], layout=w.Layout(margin="0 0 1em 0"))
    box.add_class("quiz-question")
    return box


def build_widget(quiz: Quiz):
    """The whole quiz as one ipywidgets box (raises ImportError without ipywidgets)."""
    import ipywidgets as w

    header = w.HTML(f"<h3>Knowledge check: {len(quiz.questions)} questions</h3>")
    items = [_question_widget(quiz, i + 1, q) for i, q in enumerate(quiz.questions)]
    return w.VBox([header, *items])
