"""A lesson's quiz: one question at a time, each answer saved as it is given."""

from __future__ import annotations

from content.schema import Course, Lesson, Question, answer_key
from handlers import certificates, texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply, redrawn
from handlers.home import show_main_menu
from handlers.numbers import action_number
from handlers.registry import Registry, Replies
from storage import queries
from storage.models import Answer, LessonProgress, QuizAttempt

QUESTION = "❓ Câu {number}/{total}: {question}"
RIGHT = "✅ Đúng rồi! {explanation}"
WRONG = "❌ Chưa đúng. Đáp án đúng: {answer}\n💡 {explanation}"
PASSED = "🎉 Bạn trả lời đúng {correct}/{total} câu ({score}%). Bạn đã hoàn thành bài \"{title}\"!"
FAILED = (
    "Bạn trả lời đúng {correct}/{total} câu ({score}%). Cần đúng từ {needed}% để hoàn thành bài. "
    "Bạn xem lại các câu chưa đúng rồi làm lại nhé:"
)
MISSED = "❓ {question}\n✔️ Đáp án đúng: {answer}\n💡 {explanation}"
COURSE_DONE = (
    "🏅 Chúc mừng! Bạn đã hoàn thành cả {course}. Kết quả này được tính vào phong trào "
    "Bình dân học vụ số của xã."
)
RESUMED = "Bạn đang làm dở bài kiểm tra của bài này. Mình tiếp tục ở câu {number}/{total} nhé."
UNKNOWN_LESSON = "Không tìm thấy bài học này."
BTN_RETRY = "🔁 Làm lại bài kiểm tra"
BTN_REREAD = "📖 Đọc lại bài"
BTN_NEXT_LESSON = "▶️ Bài tiếp: {title}"
BTN_LIST = "📚 Danh sách bài"


def _lesson(turn: Turn) -> Lesson | None:
    return turn.catalog.lesson(str(turn.data.get("lesson", "")))


def _current(lesson: Lesson, order: list[str], answers: dict[str, int]) -> tuple[int, Question] | None:
    for number, question_id in enumerate(order, start=1):
        if question_id not in answers:
            question = lesson.question(question_id)
            if question is not None:
                return number, question
    return None


async def start_quiz(turn: Turn, lesson: Lesson) -> Replies:
    resumed = await resume_quiz(turn, lesson)
    if resumed is not None:
        return resumed
    order = [question.id for question in lesson.quiz]
    attempt_id = None
    if turn.person is not None:
        attempt = QuizAttempt(
            person_id=turn.person.id, lesson_id=lesson.id, question_ids=order, total=len(order),
            started_at=turn.now, assisted=turn.helper is not None, assisted_by=turn.helper_id,
        )
        turn.session.add(attempt)
        await turn.session.flush()
        attempt_id = attempt.id
    await queries.log_activity(turn.session, turn.person, "quiz_started", turn.now, lesson.id)
    turn.goto("quiz", lesson=lesson.id, order=order, answers={}, attempt=attempt_id)
    return await view_quiz(turn)


async def resume_quiz(turn: Turn, lesson: Lesson) -> Replies | None:
    """Continue the person's unfinished attempt at this lesson's quiz, rebuilt from saved answers."""
    if turn.person is None:
        return None
    attempt = await queries.open_attempt(turn.session, turn.person.id, lesson.id)  # type: ignore[arg-type]
    if attempt is None:
        return None
    saved = await queries.answers_of(turn.session, attempt.id)  # type: ignore[arg-type]
    order = [qid for qid in attempt.question_ids if lesson.question(qid) is not None]
    answers = {
        qid: saved[key].option_index for qid in order if (key := answer_key(lesson.id, qid)) in saved
    }
    # Right or wrong as it was when answered: the lesson's options may have been reordered since.
    right = [qid for qid in answers if saved[answer_key(lesson.id, qid)].correct]
    turn.goto("quiz", lesson=lesson.id, order=order, answers=answers, right=right, attempt=attempt.id)
    position = _current(lesson, order, answers)
    if position is None:  # every answer was saved but the result was not: finish now
        return await _finish(turn, lesson)
    return [Reply(RESUMED.format(number=position[0], total=len(order))), *await view_quiz(turn)]


async def view_quiz(turn: Turn) -> Replies:
    lesson = _lesson(turn)
    if lesson is None:
        return await show_main_menu(turn, UNKNOWN_LESSON)
    position = _current(lesson, turn.data.get("order", []), turn.data.get("answers", {}))
    if position is None:
        return await _finish(turn, lesson)
    number, question = position
    text = QUESTION.format(number=number, total=len(turn.data["order"]), question=question.question)
    return [question_reply(text, question, f"qa:{question.id}")]


def question_reply(text: str, question: Question, action_prefix: str) -> Reply:
    """A question with one button per option; the option's index ends the action."""
    keyboard = Keyboard()
    for index, option in enumerate(question.options):
        keyboard.add(option.text, f"{action_prefix}:{index}")
    return Reply(text, keyboard.build())


def feedback(question: Question, choice: int) -> str:
    """Right or wrong, with the explanation that teaches."""
    if choice == question.correct_index:
        return RIGHT.format(explanation=question.explanation)
    return WRONG.format(answer=question.options[question.correct_index].text, explanation=question.explanation)


async def on_answer(turn: Turn, arg: str) -> Replies:
    lesson = _lesson(turn)
    question_id, _, option_text = arg.partition(":")
    if lesson is None or turn.state.step != "quiz":
        return await show_main_menu(turn, texts.STALE_BUTTON)
    position = _current(lesson, turn.data["order"], turn.data["answers"])
    choice = action_number(option_text)
    if position is None or position[1].id != question_id or choice is None:
        return [Reply(texts.STALE_BUTTON), *await view_quiz(turn)]
    question = position[1]
    if choice >= len(question.options):
        return [Reply(texts.STALE_BUTTON), *await view_quiz(turn)]
    await _save_answer(turn, lesson, question, choice, choice == question.correct_index)
    # The answered question is replaced by its feedback and the next question (or the result).
    return redrawn([Reply(feedback(question, choice)), *await view_quiz(turn)])


async def _save_answer(turn: Turn, lesson: Lesson, question: Question, choice: int, correct: bool) -> None:
    right = [*turn.data.get("right", []), question.id] if correct else turn.data.get("right", [])
    turn.update(answers={**turn.data["answers"], question.id: choice}, right=right)
    attempt_id = turn.data.get("attempt")
    if turn.person is None or attempt_id is None:
        return
    turn.session.add(
        Answer(
            attempt_id=attempt_id, question_id=answer_key(lesson.id, question.id), option_index=choice,
            correct=correct, answered_at=turn.now,
        )
    )
    await queries.log_activity(
        turn.session, turn.person, "answer_given", turn.now, lesson.id, f"{question.id}:{'dung' if correct else 'sai'}"
    )


def _score(correct: int, total: int) -> int:
    return round(correct * 100 / total) if total else 0


async def _finish(turn: Turn, lesson: Lesson) -> Replies:
    order: list[str] = turn.data["order"]
    answers: dict[str, int] = turn.data["answers"]
    questions = [q for q in (lesson.question(qid) for qid in order) if q is not None]
    # A quiz started before "right" was kept is scored from the indices, as it was then.
    right = set(turn.data.get("right", [q.id for q in questions if answers.get(q.id) == q.correct_index]))
    missed = [q for q in questions if q.id not in right]
    correct = len(questions) - len(missed)
    total = len(questions)
    score = _score(correct, total)
    passed = correct * 100 >= turn.config.pass_percent * total
    courses_done = await _record_result(turn, lesson, correct, total, score, passed)
    turn.goto("quiz_result", lesson=lesson.id)
    keyboard = Keyboard()
    if passed:
        replies = [Reply(PASSED.format(correct=correct, total=total, score=score, title=lesson.title))]
        for course in courses_done:  # the core course's congratulation carries the certificate
            replies.append(await certificates.congratulate(turn, course, COURSE_DONE.format(course=course.title)))
        following = _next_lesson(turn, lesson)
        if following is not None:
            keyboard.add(BTN_NEXT_LESSON.format(title=following.title), f"lesson:{following.id}")
    else:
        replies = [
            Reply(FAILED.format(correct=correct, total=total, score=score, needed=turn.config.pass_percent)),
            Reply("\n\n".join(
                MISSED.format(question=q.question, answer=q.options[q.correct_index].text, explanation=q.explanation)
                for q in missed
            )),
        ]
        keyboard.add(BTN_RETRY, f"quiz:start:{lesson.id}").add(BTN_REREAD, f"lesson:{lesson.id}")
    keyboard.add(BTN_LIST, "hoc").add(texts.BTN_MENU, "menu")
    last = replies.pop()
    return [*replies, Reply(last.text, keyboard.build(), attachment=last.attachment)]


async def _record_result(
    turn: Turn, lesson: Lesson, correct: int, total: int, score: int, passed: bool
) -> list[Course]:
    """Close the attempt and update progress; returns the courses this result completes."""
    person = turn.person
    attempt_id = turn.data.get("attempt")
    if person is None or attempt_id is None:
        return []
    attempt = await turn.session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.finished_at is not None:
        return []
    attempt.correct, attempt.total, attempt.score, attempt.passed = correct, total, score, passed
    attempt.finished_at = turn.now
    turn.session.add(attempt)
    progress = await queries.start_lesson(turn.session, person.id, lesson.id, turn.now)  # type: ignore[arg-type]
    progress.best_score = max(progress.best_score or 0, score)
    if not passed:
        turn.session.add(progress)
        await queries.log_activity(turn.session, person, "quiz_failed", turn.now, lesson.id, str(score))
        return []
    already_completed = progress.status == "completed"
    progress.status = "completed"
    if not already_completed:  # the first completion says whether it was with a digital-team member's help
        progress.assisted, progress.assisted_by = turn.helper is not None, turn.helper_id
    progress.completed_at = progress.completed_at or turn.now
    turn.session.add(progress)
    await queries.log_activity(turn.session, person, "lesson_finished", turn.now, lesson.id, str(score))
    if already_completed:
        return []
    return await _completed_courses(turn, progress)


async def _completed_courses(turn: Turn, just_done: LessonProgress) -> list[Course]:
    """Courses that this lesson completes; each is logged once as `course_finished`.

    The core course's `course_finished` is what reports count as "has basic digital skills".
    """
    progress = await queries.progress_of(turn.session, turn.person.id)  # type: ignore[union-attr,arg-type]
    finished = []
    for course in turn.catalog.courses:
        required = course.required_on(turn.today)
        if just_done.lesson_id not in required:
            continue
        if all(progress.get(lid) is not None and progress[lid].status == "completed" for lid in required):
            await queries.log_activity(turn.session, turn.person, "course_finished", turn.now, None, course.id)
            finished.append(course)
    return finished


def _next_lesson(turn: Turn, lesson: Lesson) -> Lesson | None:
    lessons = turn.catalog.ordered_lessons()
    ids = [item.id for item in lessons]
    position = ids.index(lesson.id) if lesson.id in ids else -1
    return lessons[position + 1] if 0 <= position < len(lessons) - 1 else None


async def on_quiz(turn: Turn, arg: str) -> Replies:
    verb, _, lesson_id = arg.partition(":")
    lesson = turn.catalog.lesson(lesson_id)
    if verb != "start" or lesson is None:
        return await show_main_menu(turn, UNKNOWN_LESSON)
    return await start_quiz(turn, lesson)


async def view_result(turn: Turn) -> Replies:
    lesson = _lesson(turn)
    keyboard = Keyboard()
    if lesson is not None:
        keyboard.add(BTN_RETRY, f"quiz:start:{lesson.id}").add(BTN_REREAD, f"lesson:{lesson.id}")
    keyboard.add(BTN_LIST, "hoc").add(texts.BTN_MENU, "menu")
    return [Reply("Bạn muốn làm gì tiếp?", keyboard.build())]


def register(registry: Registry) -> None:
    registry.add_action("quiz", on_quiz)
    registry.add_action("qa", on_answer)
    registry.add_step("quiz", view_quiz)
    registry.add_step("quiz_result", view_result)
