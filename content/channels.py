"""How long a lesson's messages are on each channel, measured the way the bot shows them.

`content` may not import `handlers` (tests/test_boundaries.py), so the shapes of the messages are
written again here; tests/test_content.py pins each one to the handler that really sends it.
"""

from __future__ import annotations

from content.schema import Lesson, Question

ZALO_LIMIT = 2000  # handlers.core.ZALO.text_limit
TELEGRAM_LIMIT = 4096  # handlers.core.TELEGRAM.text_limit
CARD_HEADER = "📖 {title} ({number}/{count})"  # handlers.learning.CARD_HEADER
QUESTION_HEADERS = (
    "❓ Câu {number}/{total}: {question}",  # handlers.quiz.QUESTION
    "🔁 Ôn tập – câu {number}/{total}: {question}",  # handlers.review.QUESTION
)
MENU_LINE = "Gõ {number} → {label}"  # handlers.render.MENU_LINE: a menu on a channel without buttons


def card_message(lesson: Lesson, index: int) -> str:
    """A card with its header, as `handlers.learning.view_card` sends it."""
    header = CARD_HEADER.format(title=lesson.title, number=index + 1, count=len(lesson.cards))
    return f"{header}\n\n{lesson.cards[index]}"


def question_message(question: Question, number: int, total: int, header: str = QUESTION_HEADERS[0]) -> str:
    """A question with its options as typed choices ("Gõ 1 → …"), as Zalo and the console show it."""
    menu = "\n".join(MENU_LINE.format(number=n, label=o.text) for n, o in enumerate(question.options, start=1))
    return f"{header.format(number=number, total=total, question=question.question)}\n\n{menu}"


def _too_long(length: int, limits: list[tuple[str, int]]) -> str | None:
    over = [f"{name} ({limit})" for name, limit in limits if length > limit]
    return f"dài {length} ký tự, quá giới hạn của {' và '.join(over)}" if over else None


def channel_problems(lesson: Lesson) -> list[tuple[str, str]]:
    """(field, message) for every card or question of `lesson` too long for a channel's message."""
    problems: list[tuple[str, str]] = []
    limits = [("Zalo", ZALO_LIMIT), ("Telegram", TELEGRAM_LIMIT)]
    for index in range(len(lesson.cards)):
        message = _too_long(len(card_message(lesson, index)), limits)
        if message:
            problems.append((f"cards[{index + 1}]", f"thẻ cùng dòng tiêu đề {message}; hãy chia thành hai thẻ"))
    total = len(lesson.quiz)
    for number, question in enumerate(lesson.quiz, start=1):
        longest = max(len(question_message(question, total, total, header)) for header in QUESTION_HEADERS)
        # Telegram shows the options as buttons; Zalo and the console list them under the question.
        message = _too_long(longest, [("Zalo", ZALO_LIMIT)])
        if message:
            problems.append((f"quiz[{number}]", f"câu hỏi cùng các lựa chọn (dạng \"Gõ 1 → …\") {message}"))
    return problems
