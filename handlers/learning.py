"""/hoc: the lesson list and reading a lesson card by card."""

from __future__ import annotations

from content.schema import Course, Lesson
from handlers import review, texts
from handlers.context import Turn
from handlers.core import Keyboard, Reply, redrawn
from handlers.quiz import resume_quiz
from handlers.registry import Registry, Replies
from storage import queries

LESSON_LIST = "📚 {course} ({done}/{total} bài đã xong). Chọn bài để học:"
LESSON_LIST_GUEST = "📚 {course}. Chọn bài để học (bạn chưa đăng ký nên tiến độ không được lưu):"
UNKNOWN_LESSON = "Không tìm thấy bài học này. Bạn chọn bài trong danh sách nhé."
CARD_HEADER = "📖 {title} ({number}/{count})"
PROMISE = "{promise}\n\nBài có {cards} thẻ ngắn và {questions} câu hỏi cuối bài."
BTN_NEXT = "Tiếp ▶️"
BTN_PREV = "◀️ Quay lại"
BTN_LIST = "📚 Danh sách bài"
BTN_QUIZ = "📝 Làm bài kiểm tra"

DONE_MARK = "✅"
STARTED_MARK = "⏳"
NEW_MARK = "▫️"


COURSE_LINE = "{mark} {title} ({done}/{total})"


async def show_lesson_list(turn: Turn, course_id: str = "") -> Replies:
    """/hoc: the lessons of a course, the core course unless another is named; the other courses are
    buttons below them, so the course most people take is one tap from the menu, as it always was."""
    course = (turn.catalog.course(course_id) if course_id else None) or turn.catalog.core_course
    progress = await _progress(turn)
    keyboard = Keyboard()
    due = await review.due_keys(turn)
    if due:
        keyboard.add(*review.review_button(len(due)))
    for lesson_id in course.lessons:
        lesson = turn.catalog.lesson(lesson_id)
        if lesson is not None:
            keyboard.add(f"{_mark(progress.get(lesson.id))} {lesson.title}", f"lesson:{lesson.id}")
    for other in turn.catalog.courses:
        if other.id != course.id:
            keyboard.add(_course_line(other, progress), f"hoc:{other.id}")
    keyboard.add(texts.BTN_MENU, "menu")
    turn.goto("lessons", course=course.id)
    if turn.person is None:
        header = LESSON_LIST_GUEST.format(course=course.title)
    else:
        done = sum(1 for lesson_id in course.lessons if _is_done(progress.get(lesson_id)))
        header = LESSON_LIST.format(course=course.title, done=done, total=len(course.lessons))
    return [Reply(header, keyboard.build())]


async def _progress(turn: Turn) -> dict:
    if turn.person is None:
        return {}
    return await queries.progress_of(turn.session, turn.person.id)  # type: ignore[arg-type]


def _course_line(course: Course, progress: dict) -> str:
    done = sum(1 for lesson_id in course.lessons if _is_done(progress.get(lesson_id)))
    mark = DONE_MARK if done == len(course.lessons) else ("⭐" if course.core else "📘")
    return COURSE_LINE.format(mark=mark, title=course.title, done=done, total=len(course.lessons))


def _is_done(progress: object) -> bool:
    return getattr(progress, "status", None) == "completed"


def _mark(progress: object) -> str:
    if _is_done(progress):
        return DONE_MARK
    return STARTED_MARK if progress is not None else NEW_MARK


async def open_lesson(turn: Turn, lesson_id: str) -> Replies:
    """Start a lesson at its first card, or resume its unfinished quiz at the same question."""
    lesson = turn.catalog.lesson(lesson_id)
    if lesson is None:
        return [Reply(UNKNOWN_LESSON), *await show_lesson_list(turn)]
    if turn.person is not None:
        resumed = await resume_quiz(turn, lesson)
        if resumed is not None:
            return resumed
        await queries.start_lesson(turn.session, turn.person.id, lesson.id, turn.now)  # type: ignore[arg-type]
    await queries.log_activity(turn.session, turn.person, "lesson_opened", turn.now, lesson.id)
    turn.goto("card", lesson=lesson.id, index=0)
    intro = PROMISE.format(promise=lesson.promise, cards=len(lesson.cards), questions=len(lesson.quiz))
    return [Reply(intro), *await view_card(turn)]


def current_lesson(turn: Turn) -> Lesson | None:
    return turn.catalog.lesson(str(turn.data.get("lesson", "")))


async def view_card(turn: Turn) -> Replies:
    lesson = current_lesson(turn)
    if lesson is None:  # the lesson was removed from the content since the person opened it
        return [Reply(UNKNOWN_LESSON), *await show_lesson_list(turn)]
    index = min(max(int(turn.data.get("index", 0)), 0), len(lesson.cards) - 1)
    header = CARD_HEADER.format(title=lesson.title, number=index + 1, count=len(lesson.cards))
    keyboard = Keyboard()
    if index + 1 < len(lesson.cards):
        keyboard.add(BTN_NEXT, "card:next")
    else:
        keyboard.add(BTN_QUIZ, f"quiz:start:{lesson.id}")
    if index > 0:
        keyboard.add(BTN_PREV, "card:prev")
    keyboard.add(BTN_LIST, "hoc").add(texts.BTN_MENU, "menu")
    return [Reply(f"{header}\n\n{lesson.cards[index]}", keyboard.build())]


async def on_card(turn: Turn, arg: str) -> Replies:
    lesson = current_lesson(turn)
    if lesson is None:
        return [Reply(UNKNOWN_LESSON), *await show_lesson_list(turn)]
    index = int(turn.data.get("index", 0))
    if arg == "next" and index + 1 < len(lesson.cards):
        await queries.log_activity(turn.session, turn.person, "card_read", turn.now, lesson.id, str(index + 1))
        index += 1
    elif arg == "prev" and index > 0:
        index -= 1
    turn.update(index=index)
    return redrawn(await view_card(turn))


async def view_lessons(turn: Turn) -> Replies:
    return await show_lesson_list(turn, str(turn.data.get("course", "")))


def register(registry: Registry) -> None:
    registry.add_command("hoc", "Danh sách bài học", show_lesson_list)
    registry.add_action("hoc", show_lesson_list, anywhere=True)
    registry.add_action("lesson", open_lesson, anywhere=True)
    registry.add_action("card", on_card)
    registry.add_step("lessons", view_lessons)
    registry.add_step("card", view_card)
