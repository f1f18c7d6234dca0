"""Conversations: /hoc, reading cards, the quiz, resuming, and a restart mid-lesson."""

from __future__ import annotations

import random

import pytest
from sqlmodel import col, select

from bot.app import build_services
from handlers import texts
from handlers.dispatcher import Dispatcher
from storage.models import Activity, Answer, LessonProgress, QuizAttempt
from tests.support import Chat, converse
from tests.test_dialog_registration import register


def first_lesson(services):
    return services.catalog.ordered_lessons()[0]


async def read_all_cards(chat: Chat, lesson) -> None:
    await chat.say("/hoc")
    await chat.choose(lesson.title)
    for _ in range(len(lesson.cards) - 1):
        await chat.choose("Tiếp")
    assert "Làm bài kiểm tra" in chat.transcript


async def answer(chat: Chat, lesson, correct: bool, count: int | None = None) -> None:
    """Answer the next `count` questions of `lesson`, right or wrong (type the option's number, or
    press its button)."""
    for _ in range(count if count is not None else len(lesson.quiz)):
        number = int(chat.transcript.rsplit("❓ Câu ", 1)[1].split("/", 1)[0])
        question = lesson.quiz[number - 1]
        index = question.correct_index if correct else (question.correct_index + 1) % len(question.options)
        await chat.pick(index + 1)


async def test_cards_go_forward_and_back(chat, services):
    lesson = first_lesson(services)
    await converse(chat, [
        ("/hoc", "Chọn bài để học"),
        (f"#{lesson.title}", f"(1/{len(lesson.cards)})"),
        ("#Tiếp", f"(2/{len(lesson.cards)})"),
        ("#Quay lại", f"(1/{len(lesson.cards)})"),
    ])
    assert lesson.cards[0].strip()[:40] in chat.transcript


async def test_passing_the_quiz_completes_the_lesson(chat, services):
    await register(chat)
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await converse(chat, [("#Làm bài kiểm tra", f"Câu 1/{len(lesson.quiz)}")])
    await answer(chat, lesson, correct=True)
    assert f"đúng {len(lesson.quiz)}/{len(lesson.quiz)} câu (100%)" in chat.transcript
    assert "Bạn đã hoàn thành bài" in chat.transcript
    assert "Bài tiếp:" in chat.transcript
    async with services.database.session() as session:
        progress = (await session.exec(select(LessonProgress))).one()
        kinds = [a.kind for a in (await session.exec(select(Activity).order_by(col(Activity.id)))).all()]
    assert progress.status == "completed" and progress.best_score == 100
    for kind in ("lesson_opened", "card_read", "quiz_started", "answer_given", "lesson_finished"):
        assert kind in kinds
    await converse(chat, [("/hoc", f"(1/{len(services.catalog.core_course.lessons)} bài đã xong)")])


async def test_failing_shows_missed_questions_and_offers_a_retry(chat, services):
    await register(chat)
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    await answer(chat, lesson, correct=False)
    transcript = chat.transcript
    assert f"đúng 0/{len(lesson.quiz)} câu (0%)" in transcript
    assert "Cần đúng từ 80%" in transcript
    for question in lesson.quiz:
        assert question.explanation in transcript
    await converse(chat, [("#Làm lại bài kiểm tra", f"Câu 1/{len(lesson.quiz)}")])
    await answer(chat, lesson, correct=True)
    assert "Bạn đã hoàn thành bài" in chat.transcript
    async with services.database.session() as session:
        attempts = (await session.exec(select(QuizAttempt).order_by(col(QuizAttempt.id)))).all()
    assert [a.passed for a in attempts] == [False, True]


async def test_leaving_mid_quiz_resumes_at_the_same_question(chat, services):
    await register(chat)
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    await answer(chat, lesson, correct=True, count=2)
    assert f"Câu 3/{len(lesson.quiz)}" in chat.transcript
    await converse(chat, [
        ("menu", "Bạn muốn làm gì?"),
        ("/hoc", "⏳"),
        (f"#{lesson.title}", f"tiếp tục ở câu 3/{len(lesson.quiz)}"),
    ])
    await answer(chat, lesson, correct=True, count=len(lesson.quiz) - 2)
    assert f"đúng {len(lesson.quiz)}/{len(lesson.quiz)}" in chat.transcript
    async with services.database.session() as session:
        answers = (await session.exec(select(Answer))).all()
    assert len(answers) == len(lesson.quiz)  # nothing answered twice, nothing lost


async def test_a_new_process_continues_where_the_person_was(settings, clock, services, make_chat):
    first = make_chat("an")
    await register(first)
    lesson = first_lesson(services)
    await first.say("/hoc")
    await first.choose(lesson.title)
    await first.choose("Tiếp")
    assert f"(2/{len(lesson.cards)})" in first.transcript
    await services.database.dispose()  # the first process stops

    restarted = await build_services(settings, clock=clock, rng=random.Random(1))
    try:
        second = make_chat("an", dispatcher=Dispatcher(restarted))
        await converse(second, [("2", f"(1/{len(lesson.cards)})")])  # "2" still means Quay lại
        await converse(second, [("#Tiếp", f"(2/{len(lesson.cards)})"), ("#Tiếp", f"(3/{len(lesson.cards)})")])
    finally:
        await restarted.database.dispose()


async def test_a_restart_mid_quiz_keeps_the_answers(settings, clock, services, make_chat):
    first = make_chat("an")
    await register(first)
    lesson = first_lesson(services)
    await read_all_cards(first, lesson)
    await first.choose("Làm bài kiểm tra")
    await answer(first, lesson, correct=True, count=1)
    await services.database.dispose()

    restarted = await build_services(settings, clock=clock, rng=random.Random(1))
    try:
        second = make_chat("an", dispatcher=Dispatcher(restarted))
        await converse(second, [("xin chào", f"Câu 2/{len(lesson.quiz)}")])
        await answer(second, lesson, correct=True, count=len(lesson.quiz) - 1)
        assert "Bạn đã hoàn thành bài" in second.transcript
    finally:
        await restarted.database.dispose()


async def test_a_guest_can_learn_without_anything_being_stored(chat, services):
    await converse(chat, [("/start", "đồng ý"), ("#Không đồng ý", "vẫn học được")])
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    await answer(chat, lesson, correct=True)
    assert "Bạn đã hoàn thành bài" in chat.transcript
    async with services.database.session() as session:
        assert (await session.exec(select(Activity))).all() == []
        assert (await session.exec(select(QuizAttempt))).all() == []
    await converse(chat, [("/tiendo", "chưa đăng ký")])


async def test_old_and_forged_buttons_are_answered_politely(chat, services):
    await register(chat)
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    question = lesson.quiz[0]
    await converse(chat, [("menu", "Bạn muốn làm gì?")])
    # An answer button from the quiz message, pressed after leaving it.
    assert "Nút này đã cũ" in await chat.press(f"qa:{question.id}:{question.correct_index}")
    # A forged action that was never shown.
    assert "Nút này đã cũ" in await chat.press("erase:yes")
    assert "Nút này đã cũ" in await chat.press("khong-co:gi")
    # A forged lesson id in a safe navigation action.
    assert "Không tìm thấy bài học" in await chat.press("lesson:khong-ton-tai")
    async with services.database.session() as session:
        assert (await session.exec(select(Answer))).all() == []


async def test_an_answer_for_another_question_is_refused(chat, services):
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    second = lesson.quiz[1]
    assert "Nút này đã cũ" in await chat.press(f"qa:{second.id}:0")
    assert "Câu 1/" in chat.transcript


async def test_unexpected_input_gets_a_short_answer_and_the_step_again(chat, services):
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    # The console cannot send a sticker: it stands for anything but text there; the others say what came.
    said = texts.UNSUPPORTED if chat.channel == "console" else texts.UNSUPPORTED_KINDS["sticker"]
    assert said in await chat.send_sticker()
    assert "Làm bài kiểm tra" in chat.transcript
    assert "Mình chưa biết lệnh /abc" in await chat.say("/abc")
    assert "Tin nhắn dài quá" in await chat.say("a" * 5000)
    assert "Làm bài kiểm tra" in chat.transcript
    assert "Mình chưa thấy nội dung" in await chat.say("   ")


async def test_the_same_update_delivered_twice_is_answered_once(chat):
    first = await chat.press("hoc", delivery_key="update-1")
    assert "Chọn bài để học" in first
    assert await chat.press("hoc", delivery_key="update-1") == ""


@pytest.mark.parametrize("chat_channel", ["telegram", "zalo"], indirect=True)  # the console has no delivery keys
async def test_a_message_or_press_delivered_again_is_answered_once(chat, services):
    await converse(chat, [("/hoc", "Chọn bài để học"), (f"#{first_lesson(services).title}", "(1/")])
    assert await chat.redeliver() == ""
    assert "(2/" in await chat.choose("Tiếp")
    assert await chat.redeliver() == ""  # not the third card
    assert "(3/" in await chat.choose("Tiếp")


async def test_the_whole_loop_on_every_database(database_url, clock, chat_channel):
    """Registration, a lesson and its quiz, /tiendo: on SQLite and on PostgreSQL."""
    from bot.settings import Settings

    settings = Settings(_env_file=None, database_url=database_url)
    services = await build_services(settings, clock=clock, rng=random.Random(3))
    try:
        chat = Chat.on(chat_channel, Dispatcher(services))
        await register(chat)
        lesson = first_lesson(services)
        await read_all_cards(chat, lesson)
        await chat.choose("Làm bài kiểm tra")
        await answer(chat, lesson, correct=True, count=2)
        await chat.say("menu")
        await converse(chat, [("/hoc", "⏳"), (f"#{lesson.title}", "tiếp tục ở câu 3/")])
        await answer(chat, lesson, correct=True, count=len(lesson.quiz) - 2)
        total = len(services.catalog.core_course.lessons)
        await converse(chat, [
            ("/tiendo", f"đã xong 1/{total} bài"), ("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa"),
        ])
    finally:
        await services.database.dispose()


async def test_many_chats_at_once_all_get_their_answer(database_url, clock, chat_channel):
    """Concurrent turns of different chats (as the Telegram runtime runs them) never collide."""
    import asyncio

    from bot.settings import Settings

    services = await build_services(Settings(_env_file=None, database_url=database_url), clock=clock,
                                    rng=random.Random(5))
    try:
        dispatcher = Dispatcher(services)
        chats = [Chat.on(chat_channel, dispatcher, user=f"c{n}") for n in range(20)]
        await asyncio.gather(*(chat.say("/start") for chat in chats))
        answers = await asyncio.gather(*(chat.choose("Đồng ý") for chat in chats))
        assert all("họ và tên" in answer for answer in answers), answers
    finally:
        await services.database.dispose()


async def test_the_longest_ids_the_content_check_allows_are_stored_on_every_database(database_url, clock, tmp_path,
                                                                                     chat_channel):
    """A lesson and question ids as long as `content check` allows: answers, activity and review all save."""
    import shutil

    import yaml

    from bot.settings import Settings
    from content.loader import CONTENT_DIR
    from content.schema import ANSWER_KEY_MAX, ID_MAX
    from tests.test_dialog_review import pass_missing_one

    content = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, content, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = sorted((content / "lessons").glob("*.yaml"))[0]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    old_id, data["id"] = data["id"], "bai-" + "d" * (ID_MAX - 4)
    for number, question in enumerate(data["quiz"], start=1):
        question["id"] = f"cau-{number}-" + "q" * (ANSWER_KEY_MAX - ID_MAX - 1 - 6)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    course = content / "courses" / "co-ban.yaml"
    course.write_text(course.read_text(encoding="utf-8").replace(f"- {old_id}\n", f"- {data['id']}\n"),
                      encoding="utf-8")
    settings = Settings(_env_file=None, database_url=database_url, content_dir=content)
    services = await build_services(settings, clock=clock, rng=random.Random(4))
    try:
        chat = Chat.on(chat_channel, Dispatcher(services))
        await register(chat)
        lesson = services.catalog.lesson(data["id"])
        assert lesson is not None and len(f"{lesson.id}/{lesson.quiz[0].id}") == ANSWER_KEY_MAX
        await pass_missing_one(chat, lesson)
        clock.advance(days=services.config.review_after_days)
        await converse(chat, [("/hoc", "Ôn tập: 1 câu"), ("#Ôn tập", "câu 1/1")])
        assert "Ôn tập xong: bạn đúng 1/1 câu" in await chat.pick(lesson.quiz[0].correct_index + 1)
        async with services.database.session() as session:
            keys = (await session.exec(select(Answer.question_id))).all()
        assert len(keys) == len(lesson.quiz) + 1 and max(map(len, keys)) == ANSWER_KEY_MAX
    finally:
        await services.database.dispose()
