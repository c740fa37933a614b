"""Knowledge checks at the end of every notebook.

Questions live as data, one TOML file per notebook in ``tutorial_lib/course/quizzes/``.
Every question says what it asks of the learner (``skill``: ``"apply"`` for
reading a number, predicting an effect, spotting a bug or computing something;
``"recall"`` for remembering the lesson), gives a ``hint`` (a nudge shown after
a first wrong attempt, never the answer) and an ``explanation`` (shown after a
right attempt or a second wrong one). Every way of being wrong has feedback of
its own::

    [[question]]
    id = "bottleneck_width"
    kind = "choice"                 # one right option
    skill = "apply"
    text = "A colleague widens the code from 32 to 1024 numbers. What do you predict?"
    code = "optional snippet, shown in a monospaced block"
    answer = 1                      # index into the options, from 0
    hint = "What stops a network from copying its input?"
    explanation = "Shown after a right attempt, or after a second wrong one."

      [[question.options]]
      text = "The codes become better features, because the error is lower."
      feedback = "Why this is tempting, and why it is wrong (no answer in it)."

      [[question.options]]
      text = "The right option: it needs no feedback."

    [[question]]
    kind = "multiple"               # several right options: answer = [0, 2]
    ...                             # feedback for every option that is false

    [[question]]
    kind = "numeric"                # a number, accepted within the tolerance
    answer = 24.5
    tolerance = 0.05

      [[question.ranges]]           # feedback by range for the usual slips
      min = 97.5                    # min <= value < max; either may be left out
      max = 98.5
      feedback = "You multiplied where you should have divided."

A wrong number outside every range is told whether it is too large or too small.

In JupyterLab, :meth:`Quiz.show` renders each question as widgets: pick, press
*Check*, read the feedback, try again, and a line at the end counts the
questions right at the first attempt. Without a widget front end (nbval,
papermill, a plain ``python`` run) the same call prints the questions as
readable text, :meth:`Quiz.answer` answers one and prints the same feedback,
and :meth:`Quiz.summary` returns the progress as data. Nothing is written to disk.
"""

from __future__ import annotations

import dataclasses
import html
import math
import textwrap
import tomllib
from pathlib import Path

QUIZ_DIR = Path(__file__).with_name("quizzes")
KINDS = ("choice", "multiple", "numeric")
SKILLS = ("apply", "recall")
QUESTION_KEYS = {
    "id",
    "kind",
    "skill",
    "text",
    "code",
    "answer",
    "hint",
    "explanation",
    "options",
    "tolerance",
    "ranges",
}
REQUIRED_KEYS = ("id", "kind", "skill", "text", "answer", "hint", "explanation")
TEXT_WIDTH = 100  # the plain-text view wraps questions and options to this width

RIGHT = "Correct!"
WRONG = "Not quite."
UNREADABLE = "Could not read that answer:"


class QuizFormatError(ValueError):
    """A question file is malformed; the message names the file and the question."""


def letter(index: int) -> str:
    """The label of option ``index``: (a), (b), ..."""
    return f"({chr(ord('a') + index)})"


@dataclasses.dataclass(frozen=True)
class Feedback:
    """The verdict on one response, in parts the text and widget views both show.

    ``detail`` says why the response is wrong (for the option or range it hit),
    ``hint`` nudges after a first wrong attempt, ``explanation`` is the full
    explanation (after a right attempt or a second wrong one). ``readable`` is
    False when the response could not be read; such a response is no attempt.
    """

    correct: bool
    verdict: str
    detail: str = ""
    hint: str = ""
    explanation: str = ""
    readable: bool = True

    @property
    def message(self) -> str:
        lines = [f"{self.verdict} {self.detail}".strip()]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        if self.explanation:
            lines.append(f"Explanation: {self.explanation}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message


@dataclasses.dataclass(frozen=True)
class Range:
    """Feedback for a wrong numeric answer in ``[low, high)``."""

    low: float
    high: float
    feedback: str

    def __contains__(self, value: float) -> bool:
        return self.low <= value < self.high


@dataclasses.dataclass(frozen=True)
class Question:
    """One question: text, options (for choices), right answer, feedback, explanation."""

    id: str
    kind: str
    skill: str
    text: str
    answer: int | tuple[int, ...] | float
    hint: str
    explanation: str
    options: tuple[str, ...] = ()
    feedback: tuple[str, ...] = ()  # one per option; "" where the option is right
    code: str = ""
    tolerance: float = 0.0
    ranges: tuple[Range, ...] = ()

    def check(self, response, *, attempt: int = 1) -> Feedback:
        """Judge ``response``: an option index, letter or text for ``choice``, a list
        of them for ``multiple``, a number (or numeric text) for ``numeric``.

        ``attempt`` is the learner's attempt at this question, from 1: a wrong
        first attempt gets a hint, a wrong later one the full explanation.
        """
        try:
            correct, detail = self._judge(response)
        except (TypeError, ValueError) as error:
            return Feedback(False, UNREADABLE, str(error), readable=False)
        if correct:
            return Feedback(True, RIGHT, explanation=self.explanation)
        if attempt <= 1:
            return Feedback(False, WRONG, detail, hint=self.hint)
        return Feedback(False, WRONG, detail, explanation=self.explanation)

    def _judge(self, response) -> tuple[bool, str]:
        if self.kind == "numeric":
            value = float(str(response).strip()) if isinstance(response, str) else float(response)
            if not math.isfinite(value):
                raise ValueError(f"{response!r} is not a finite number")
            if abs(value - self.answer) <= self.tolerance:
                return True, ""
            for band in self.ranges:
                if value in band:
                    return False, band.feedback
            return False, f"Your number is too {'large' if value > self.answer else 'small'}."
        if self.kind == "choice":
            if isinstance(response, list | tuple | set):
                raise ValueError("pick one option (a letter, an index or the option's text)")
            index = self._index(response)
            return index == self.answer, self.feedback[index]
        if isinstance(response, str | int):
            response = [response]
        chosen = sorted({self._index(item) for item in response})
        if not chosen:
            raise ValueError("tick at least one option")
        right = set(self.answer)
        if set(chosen) == right:
            return True, ""
        wrong = [f"You ticked {letter(i)}: {self.feedback[i]}" for i in chosen if i not in right]
        if right - set(chosen):
            if wrong:
                wrong.append("And at least one true statement is still unticked.")
            else:
                wrong.append(
                    "Everything you ticked is true, but at least one true statement is unticked."
                )
        return False, " ".join(wrong)

    def _index(self, response) -> int:
        """An option given by index, by letter ("b" or "(b)") or by its full text."""
        if isinstance(response, bool):
            raise TypeError(f"{response!r} is not an option")
        if isinstance(response, str):
            text = response.strip()
            if text in self.options:
                return self.options.index(text)
            text = text.strip("()").lower()
            if len(text) != 1 or not text.isalpha():
                raise ValueError(f"{response!r} is not one of the options")
            index = ord(text) - ord("a")
        else:
            index = int(response)
        if not 0 <= index < len(self.options):
            last = letter(len(self.options) - 1)
            raise ValueError(f"{response!r} is not one of the options (a) to {last}")
        return index

    def as_text(self, number: int) -> str:
        """The question as plain text, options lettered (a), (b), ..."""
        lines = textwrap.wrap(f"Q{number} [{self.id}] {self.text}", TEXT_WIDTH)
        if self.code:
            lines += ["", *(f"      {line}" for line in self.code.rstrip().splitlines()), ""]
        for i, option in enumerate(self.options):
            lines += textwrap.wrap(
                f"{letter(i)} {option}",
                TEXT_WIDTH,
                initial_indent="   ",
                subsequent_indent="       ",
            )
        if self.kind == "multiple":
            lines.append("   (several options may be right: answer with a list of letters)")
        if self.kind == "numeric":
            lines.append("   (answer with a number)")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Summary:
    """A learner's progress through one quiz (what :meth:`Quiz.summary` returns)."""

    total: int
    answered: int
    right_first_time: int
    solved: int
    to_review: tuple[int, ...]  # numbers (from 1) of the questions missed at the first attempt

    @property
    def complete(self) -> bool:
        return self.answered == self.total

    @property
    def line(self) -> str:
        if not self.complete:
            return (
                f"Progress: {self.answered} of {self.total} questions answered, "
                f"{self.right_first_time} right at the first attempt."
            )
        line = f"Summary: {self.right_first_time} of {self.total} right at the first attempt."
        if self.to_review:
            numbers = ", ".join(f"Q{n}" for n in self.to_review)
            line += f" Worth another look: {numbers}."
        return line

    def __str__(self) -> str:
        return self.line


@dataclasses.dataclass
class Quiz:
    """The questions of one notebook, with the learner's attempts so far (in memory only)."""

    name: str
    questions: list[Question]
    attempts: dict[str, list[bool]] = dataclasses.field(default_factory=dict)

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        ids = ", ".join(q.id for q in self.questions)
        raise KeyError(f"No question {question_id!r} in quiz {self.name!r}; its ids are: {ids}.")

    def answer(self, question_id: str, response, *, quiet: bool = False) -> Feedback:
        """Answer one question; prints and returns the feedback.

        When this answer is the first to the last unanswered question, the
        summary line is printed after it.
        """
        question = self.question(question_id)
        tries = self.attempts.setdefault(question_id, [])
        was_complete = self.summary().complete
        feedback = question.check(response, attempt=len(tries) + 1)
        if feedback.readable:
            tries.append(feedback.correct)
        elif not tries:
            del self.attempts[question_id]
        if not quiet:
            print(f"[{question_id}] {feedback}")
            summary = self.summary()
            if summary.complete and not was_complete:
                print(summary.line)
        return feedback

    @property
    def results(self) -> dict[str, bool]:
        """Whether each answered question was right at the first attempt."""
        return {qid: tries[0] for qid, tries in self.attempts.items() if tries}

    def summary(self) -> Summary:
        """Progress as data: answered, right at the first attempt, solved, to review."""
        first = self.results
        return Summary(
            total=len(self.questions),
            answered=len(first),
            right_first_time=sum(first.values()),
            solved=sum(any(tries) for tries in self.attempts.values()),
            to_review=tuple(
                number
                for number, question in enumerate(self.questions, start=1)
                if first.get(question.id) is False
            ),
        )

    def as_text(self) -> str:
        head = f"Knowledge check: {len(self.questions)} questions"
        body = "\n\n".join(q.as_text(i + 1) for i, q in enumerate(self.questions))
        tail = "\n".join(
            [
                "Answer in code with the question's id (in brackets) and your choice, for example",
                '    knowledge_check.answer("some_id", "b")          one option, by its letter',
                '    knowledge_check.answer("some_id", ["a", "d"])   several options',
                '    knowledge_check.answer("some_id", 0.25)         a number',
                "A wrong answer gets feedback and a hint; try again, and after a second miss you",
                "get the full explanation. knowledge_check.summary() shows your progress.",
            ]
        )
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


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(raw: dict, key: str, path: Path, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        _fail(path, where, f"{key} must be a string, not {value!r}")
    return value.strip()


def _parse_options(raw: dict, kind: str, answer, path: Path, where: str):
    entries = raw.get("options", [])
    if not isinstance(entries, list) or len(entries) < 2:
        _fail(path, where, "a choice question needs at least two [[question.options]]")
    texts, feedback = [], []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            _fail(path, where, f"option {letter(number)} must be a table with text and feedback")
        unknown = set(entry) - {"text", "feedback"}
        if unknown:
            _fail(path, where, f"option {letter(number)} has unknown keys {sorted(unknown)}")
        texts.append(_text(entry, "text", path, where))
        feedback.append(_text(entry, "feedback", path, where))
        if not texts[-1]:
            _fail(path, where, f"option {letter(number)} has no text")
    if len(set(texts)) != len(texts):
        _fail(path, where, "two options have the same text")
    if kind == "multiple" and (not isinstance(answer, list) or not answer):
        _fail(path, where, f"the answer of a multiple question is a non-empty list, not {answer!r}")
    indices = [answer] if kind == "choice" else answer
    for index in indices:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(texts):
            _fail(path, where, f"answer {index!r} is not an option index 0..{len(texts) - 1}")
    right = set(indices)
    for number, text in enumerate(feedback):
        if number in right and text:
            _fail(path, where, f"option {letter(number)} is right and takes no feedback")
        if number not in right and not text:
            _fail(path, where, f"option {letter(number)} is wrong and needs its own feedback")
    final = answer if kind == "choice" else tuple(sorted(right))
    return tuple(texts), tuple(feedback), final


def _parse_ranges(raw: dict, answer: float, tolerance: float, path: Path, where: str):
    entries = raw.get("ranges", [])
    if not isinstance(entries, list) or not entries:
        _fail(path, where, "a numeric question needs [[question.ranges]] with feedback")
    ranges = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) - {"min", "max", "feedback"}:
            _fail(path, where, f"range {number} takes only min, max and feedback")
        low, high = entry.get("min", -math.inf), entry.get("max", math.inf)
        if not (_is_number(low) and _is_number(high)) or not low < high:
            _fail(path, where, f"range {number} needs numbers min < max, not {low!r}, {high!r}")
        band = Range(float(low), float(high), _text(entry, "feedback", path, where))
        if not band.feedback:
            _fail(path, where, f"range {number} has no feedback")
        if band.low < answer + tolerance and answer - tolerance < band.high:
            _fail(path, where, f"range {number} overlaps the accepted answer")
        ranges.append(band)
    return tuple(ranges)


def _parse_question(raw: dict, number: int, path: Path) -> Question:
    where = f"question {number} (id {raw.get('id', '?')!r})"
    for key in REQUIRED_KEYS:
        if key not in raw:
            _fail(path, where, f"missing the key {key!r}")
    kind = raw["kind"]
    if kind not in KINDS:
        _fail(path, where, f"kind must be one of {KINDS}, not {kind!r}")
    if raw["skill"] not in SKILLS:
        _fail(path, where, f"skill must be one of {SKILLS}, not {raw['skill']!r}")
    unknown = set(raw) - QUESTION_KEYS
    if unknown:
        _fail(path, where, f"unknown keys {sorted(unknown)}")
    common = {"id": raw["id"], "kind": kind, "skill": raw["skill"]}
    for key in ("text", "hint", "explanation"):
        common[key] = _text(raw, key, path, where)
        if not common[key]:
            _fail(path, where, f"{key} is empty")
    code = raw.get("code", "")
    if not isinstance(code, str):
        _fail(path, where, f"code must be a string, not {code!r}")
    common["code"] = code.strip("\n")
    answer = raw["answer"]
    if kind == "numeric":
        if "options" in raw:
            _fail(path, where, "a numeric question has no options")
        if not _is_number(answer):
            _fail(path, where, f"the answer of a numeric question must be a number, not {answer!r}")
        tolerance = raw.get("tolerance", 0.0)
        if not _is_number(tolerance) or tolerance < 0:
            _fail(path, where, f"tolerance must be a number >= 0, not {tolerance!r}")
        ranges = _parse_ranges(raw, float(answer), float(tolerance), path, where)
        return Question(**common, answer=float(answer), tolerance=float(tolerance), ranges=ranges)
    if "ranges" in raw or "tolerance" in raw:
        _fail(path, where, "only a numeric question has ranges and a tolerance")
    options, feedback, final = _parse_options(raw, kind, answer, path, where)
    return Question(**common, answer=final, options=options, feedback=feedback)


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


# Long option labels wrap instead of being cut off with an ellipsis.
_STYLE = """<style>
.quiz-question label, .quiz-question .widget-label-basic span {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  height: auto !important; line-height: 1.4 !important; }
.quiz-question .widget-radio-box label { align-items: flex-start; margin-bottom: 0.3em; }
.quiz-question pre.quiz-code { background: #f6f8fa; padding: 0.5em; margin: 0.3em 0; }
</style>"""


def _feedback_html(feedback: Feedback) -> str:
    if not feedback.readable:
        return f"<i>{html.escape(feedback.message)}</i>"
    colour = "#1a7f37" if feedback.correct else "#b42318"
    mark = "&#10004;" if feedback.correct else "&#10008;"
    parts = [
        f'<div style="color:{colour}">{mark} <b>{html.escape(feedback.verdict)}</b> '
        f"{html.escape(feedback.detail)}</div>"
    ]
    if feedback.hint:
        parts.append(f'<div class="quiz-hint"><b>Hint:</b> {html.escape(feedback.hint)}</div>')
    if feedback.explanation:
        parts.append(
            f'<div class="quiz-explanation"><b>Explanation:</b> '
            f"{html.escape(feedback.explanation)}</div>"
        )
    return '<div class="quiz-feedback">' + "".join(parts) + "</div>"


def _title_html(number: int, question: Question) -> str:
    title = f"<b>Q{number}.</b> {html.escape(question.text)}"
    if question.kind == "multiple":
        title += " <i>(Several options may be right.)</i>"
    if question.code:
        title += f'<pre class="quiz-code">{html.escape(question.code)}</pre>'
    return title


def _question_widget(quiz: Quiz, number: int, question: Question, on_answer=None):
    import ipywidgets as w

    title = w.HTML(_title_html(number, question))
    labels = [f"{letter(i)} {option}" for i, option in enumerate(question.options)]
    if question.kind == "choice":
        picker = w.RadioButtons(
            options=[(label, i) for i, label in enumerate(labels)],
            value=None,
            layout=w.Layout(width="auto"),
        )

        def response():
            return picker.index
    elif question.kind == "multiple":
        boxes = [
            w.Checkbox(description=label, indent=False, layout=w.Layout(width="auto"))
            for label in labels
        ]
        picker = w.VBox(boxes)

        def response():
            return [i for i, box in enumerate(boxes) if box.value] or None
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
        if on_answer is not None:
            on_answer()

    button.on_click(on_check)
    box = w.VBox([title, picker, button, feedback], layout=w.Layout(margin="0 0 1em 0"))
    box.add_class("quiz-question")
    return box


def build_widget(quiz: Quiz):
    """The whole quiz as one ipywidgets box (raises ImportError without ipywidgets).

    The last child is the progress line, which becomes the summary once every
    question has been answered.
    """
    import ipywidgets as w

    header = w.HTML(f"{_STYLE}<h3>Knowledge check: {len(quiz.questions)} questions</h3>")
    progress = w.HTML()
    progress.add_class("quiz-summary")

    def update():
        summary = quiz.summary()
        text = html.escape(summary.line)
        progress.value = f"<b>{text}</b>" if summary.complete else f"<i>{text}</i>"

    items = [_question_widget(quiz, i + 1, q, update) for i, q in enumerate(quiz.questions)]
    update()
    return w.VBox([header, *items, progress])
