"""Ôn tập: missed questions come back after a few days, until they are answered right."""

from __future__ import annotations

from tests.support import converse
from tests.test_dialog_learning import first_lesson, read_all_cards
from tests.test_dialog_registration import register


async def pass_missing_one(chat, lesson) -> None:
    """Answer the quiz with only the first question wrong: 4/5 passes and leaves one to review."""
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    for number, question in enumerate(lesson.quiz):
        index = question.correct_index if number else (question.correct_index + 1) % len(question.options)
        await chat.pick(index + 1)
    assert "Bạn đã hoàn thành bài" in chat.transcript


async def test_a_missed_question_comes_back_after_three_days_until_answered_right(chat, services, clock):
    await register(chat)
    lesson = first_lesson(services)
    missed = lesson.quiz[0]
    await pass_missing_one(chat, lesson)
    clock.advance(days=2)
    assert "Ôn tập" not in await chat.say("/hoc")
    clock.advance(days=1)
    await converse(chat, [
        ("/hoc", "🔁 Ôn tập: 1 câu cần xem lại"),
        ("#Ôn tập", f"Ôn tập – câu 1/1: {missed.question}"),
    ])
    wrong = (missed.correct_index + 1) % len(missed.options)
    assert "Ôn tập xong: bạn đúng 0/1 câu" in await chat.pick(wrong + 1)
    assert "Ôn tập" not in await chat.say("/hoc")  # just answered: not due again yet
    clock.advance(days=3)
    await converse(chat, [("/hoc", "Ôn tập: 1 câu"), ("#Ôn tập", "câu 1/1")])
    assert "Ôn tập xong: bạn đúng 1/1 câu" in await chat.pick(missed.correct_index + 1)
    clock.advance(days=10)
    assert "Ôn tập" not in await chat.say("/hoc")


async def test_leaving_a_review_resumes_it(chat, services, clock):
    await register(chat)
    lesson = first_lesson(services)
    await pass_missing_one(chat, lesson)
    clock.advance(days=3)
    await converse(chat, [("/hoc", "Ôn tập: 1 câu"), ("#Ôn tập", "câu 1/1"), ("menu", "Bạn muốn làm gì?")])
    await converse(chat, [("/hoc", "Ôn tập: 1 câu"), ("#Ôn tập", "câu 1/1")])


async def test_old_review_buttons_and_guests_are_handled(chat, services):
    assert "Nút này đã cũ" in await chat.press("rv:1:0")
    await converse(chat, [("/start", "đồng ý"), ("#Không đồng ý", "vẫn học được")])
    assert "Ôn tập" not in await chat.say("/hoc")
