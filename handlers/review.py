"""Ôn tập: questions a person missed come back a few days later, offered from /hoc (spaced repetition)."""

from __future__ import annotations

from datetime import timedelta

from content.schema import Question
from handlers import texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply, redrawn
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.quiz import feedback, question_reply
from handlers.registry import Registry, Replies
from storage import queries
from storage.models import Answer, QuizAttempt

REVIEW_LESSON = "on-tap"
MAX_QUESTIONS = 5
BUTTON = "🔁 Ôn tập: {count} câu cần xem lại"
QUESTION = "🔁 Ôn tập – câu {number}/{total}: {question}"
DONE = (
    "Ôn tập xong: bạn đúng {correct}/{total} câu. Câu đã đúng sẽ không hỏi lại; "
    "câu còn sai sẽ quay lại sau {days} ngày."
)
NOTHING_DUE = "Hiện chưa có câu nào cần ôn. Câu bạn trả lời sai sẽ quay lại đây sau {days} ngày."
BTN_LIST = "📚 Danh sách bài"


def _question(turn: Turn, key: str) -> Question | None:
    lesson_id, _, question_id = key.partition("/")
    lesson = turn.catalog.lesson(lesson_id)
    return lesson.question(question_id) if lesson else None


async def due_keys(turn: Turn) -> list[str]:
    """Questions due for this person that still exist in the content."""
    if turn.person is None:
        return []
    after = timedelta(days=turn.config.review_after_days)
    keys = await queries.due_for_review(turn.session, turn.person.id, turn.now, after)  # type: ignore[arg-type]
    return [key for key in keys if _question(turn, key) is not None]


def review_button(count: int) -> tuple[str, str]:
    return BUTTON.format(count=count), "review:start"


async def start_review(turn: Turn) -> Replies:
    person = turn.person
    if person is None:
        return await show_main_menu(turn, texts.NEEDS_CONSENT)
    attempt = await queries.open_review(turn.session, person.id)  # type: ignore[arg-type]
    if attempt is None:
        keys = (await due_keys(turn))[:MAX_QUESTIONS]
        if not keys:
            return await show_main_menu(turn, NOTHING_DUE.format(days=turn.config.review_after_days))
        attempt = QuizAttempt(person_id=person.id, lesson_id=REVIEW_LESSON, kind="review", question_ids=keys,
                              total=len(keys), started_at=turn.now, assisted=turn.helper is not None,
                              assisted_by=turn.helper_id)
        turn.session.add(attempt)
        await turn.session.flush()
        await queries.log_activity(turn.session, person, "review_started", turn.now)
    saved = await queries.answers_of(turn.session, attempt.id)  # type: ignore[arg-type]
    order = [key for key in attempt.question_ids if _question(turn, key) is not None]
    answers = {key: saved[key].option_index for key in order if key in saved}
    right = [key for key in answers if saved[key].correct]  # as answered, whatever the options' order now
    turn.goto("review", order=order, answers=answers, right=right, attempt=attempt.id)
    return await view_review(turn)


def _position(turn: Turn) -> tuple[int, str, Question] | None:
    for number, key in enumerate(turn.data.get("order", []), start=1):
        if key not in turn.data.get("answers", {}):
            question = _question(turn, key)
            if question is not None:
                return number, key, question
    return None


async def view_review(turn: Turn) -> Replies:
    position = _position(turn)
    if position is None:
        return await _finish(turn)
    number, _, question = position
    text = QUESTION.format(number=number, total=len(turn.data["order"]), question=question.question)
    return [question_reply(text, question, f"rv:{number}")]


async def on_review(turn: Turn, arg: str) -> Replies:
    if arg == "start":
        return await start_review(turn)
    return [Reply(texts.STALE_BUTTON), *await view_review(turn)]


async def on_review_answer(turn: Turn, arg: str) -> Replies:
    if turn.state.step != "review":
        return await show_main_menu(turn, texts.STALE_BUTTON)
    position = _position(turn)
    number_text, _, choice_text = arg.partition(":")
    if position is None or str(position[0]) != number_text:
        return [Reply(texts.STALE_BUTTON), *await view_review(turn)]
    _, key, question = position
    choice = action_number(choice_text)
    if choice is None or choice >= len(question.options):
        return [Reply(texts.STALE_BUTTON), *await view_review(turn)]
    correct = choice == question.correct_index
    right = [*turn.data.get("right", []), key] if correct else turn.data.get("right", [])
    turn.update(answers={**turn.data["answers"], key: choice}, right=right)
    turn.session.add(Answer(attempt_id=turn.data["attempt"], question_id=key, option_index=choice,
                            correct=correct, answered_at=turn.now))
    await queries.log_activity(turn.session, turn.person, "answer_given", turn.now, key.partition("/")[0],
                               f"on-tap:{'dung' if correct else 'sai'}")
    return redrawn([Reply(feedback(question, choice)), *await view_review(turn)])


async def _finish(turn: Turn) -> Replies:
    order: list[str] = turn.data.get("order", [])
    answers: dict[str, int] = turn.data.get("answers", {})
    questions = {key: _question(turn, key) for key in order}
    right = set(turn.data.get("right", [key for key, q in questions.items()
                                        if q is not None and answers.get(key) == q.correct_index]))
    correct = sum(1 for key, q in questions.items() if q is not None and key in right)
    attempt = await turn.session.get(QuizAttempt, turn.data.get("attempt")) if turn.data.get("attempt") else None
    if attempt is not None and attempt.finished_at is None:
        attempt.correct, attempt.total, attempt.finished_at = correct, len(order), turn.now
        attempt.score = round(correct * 100 / len(order)) if order else 0
        attempt.passed = correct == len(order)
        turn.session.add(attempt)
        await queries.log_activity(turn.session, turn.person, "review_finished", turn.now, None, str(attempt.score))
    turn.goto("main")
    keyboard = Keyboard().add(BTN_LIST, "hoc").add(texts.BTN_MENU, "menu")
    days = turn.config.review_after_days
    return [Reply(DONE.format(correct=correct, total=len(order), days=days), keyboard.build())]


def register(registry: Registry) -> None:
    registry.add_action("review", on_review)
    registry.add_action("rv", on_review_answer)
    registry.add_step("review", view_review)
