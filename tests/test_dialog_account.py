"""Conversations: /tiendo, /dulieucuatoi, /xoadulieu and /trogiup."""

from __future__ import annotations

from sqlmodel import select

from handlers.core import Reply, to_payload
from storage import outbox
from storage.models import (
    Activity,
    Answer,
    ChannelAccount,
    ConversationState,
    Delivery,
    Household,
    LessonProgress,
    Membership,
    Person,
    QuizAttempt,
)
from tests.support import converse
from tests.test_dialog_learning import answer, first_lesson, read_all_cards
from tests.test_dialog_registration import register


async def finish_first_lesson(chat, services) -> None:
    lesson = first_lesson(services)
    await read_all_cards(chat, lesson)
    await chat.choose("Làm bài kiểm tra")
    await answer(chat, lesson, correct=True)


async def test_progress_shows_lessons_scores_and_streak(chat, services, clock):
    await register(chat)
    await converse(chat, [("/tiendo", "Số ngày học liên tiếp: 1")])
    assert "chưa làm bài kiểm tra nào" in chat.transcript
    await finish_first_lesson(chat, services)
    clock.advance(days=1)
    await chat.say("/hoc")
    await chat.choose(services.catalog.ordered_lessons()[1].title)
    clock.advance(days=1)
    await chat.choose("Tiếp")
    await converse(chat, [("/tiendo", f"đã xong 1/{len(services.catalog.core_course.lessons)} bài")])
    assert "Số ngày học liên tiếp: 3" in chat.transcript
    assert f"{first_lesson(services).title}: 100% ✅" in chat.transcript
    assert "Học tiếp: " + services.catalog.ordered_lessons()[1].title in chat.transcript
    clock.advance(days=3)
    await converse(chat, [("/tiendo", "Số ngày học liên tiếp: 0")])


async def test_my_data_lists_everything_stored(chat, services):
    await register(chat)
    await finish_first_lesson(chat, services)
    shown = await chat.say("/dulieucuatoi")
    messenger = {"console": "console", "telegram": "Telegram", "zalo": "Zalo"}[chat.channel]
    for expected in ("Nguyễn Văn An", "Thôn 2", "Người dân", "Hội Nông dân xã", "Đã kích hoạt mức 2",
                     "Nhắc học khi lâu không học: đang bật", messenger, "lượt làm bài kiểm tra: 1",
                     f"câu trả lời: {len(first_lesson(services).quiz)}"):
        assert expected in shown


async def test_erase_needs_confirmation_and_then_removes_everything_personal(chat, services):
    await register(chat)
    await finish_first_lesson(chat, services)
    await converse(chat, [("/xoadulieu", "chắc chắn"), ("#Không, giữ lại", "vẫn được giữ nguyên")])
    async with services.database.session() as session:
        assert len((await session.exec(select(Person))).all()) == 1
    async with services.database.session() as session:  # a reminder waiting for them in the outbox
        person = (await session.exec(select(Person))).one()
        assert await outbox.enqueue_for_person(session, person.id, key="nudge:test", kind="nudge",
                                               payload=to_payload([Reply("Học tiếp nhé")]), now=services.clock())
    await converse(chat, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa toàn bộ dữ liệu")])
    async with services.database.session() as session:
        for model in (Person, ChannelAccount, Membership, Household, LessonProgress, QuizAttempt, Answer, Delivery):
            assert (await session.exec(select(model))).all() == [], model.__name__
        activities = (await session.exec(select(Activity))).all()
        states = (await session.exec(select(ConversationState))).all()
    assert activities and all(a.person_id is None for a in activities)  # anonymous counts stay
    assert len(states) == 1 and states[0].data == {}
    await converse(chat, [("/dulieucuatoi", "chưa đồng ý lưu dữ liệu")])
    await converse(chat, [("/start", "Bạn có đồng ý không?"), ("#Đồng ý", "họ và tên")])


async def test_erasing_one_person_keeps_the_household_of_the_others(make_chat, services):
    father = make_chat("bo")
    await register(father)
    async with services.database.session() as session:
        code = (await session.exec(select(Household.code))).one()
    mother = make_chat("me")
    await converse(mother, [
        ("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), ("Lê Thị Hoa", "thôn/xóm"), ("#Thôn 2", "nhóm"),
        ("#Người dân", "Hộ gia đình"), ("#Nhập mã hộ", "chữ số"), (code, "Bạn đã vào hộ"),
    ])
    await converse(father, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa")])
    async with services.database.session() as session:
        households = (await session.exec(select(Household))).all()
        people = (await session.exec(select(Person))).all()
    assert [h.code for h in households] == [code]
    assert [p.full_name for p in people] == ["Lê Thị Hoa"]


async def test_help_lists_the_commands(chat):
    shown = await chat.say("/trogiup")
    for command in ("/hoc", "/tiendo", "/caidat", "/dulieucuatoi", "/xoadulieu", "/trogiup"):
        assert command in shown


async def test_progress_names_a_review_ontap_not_its_id(chat, services, clock):
    from tests.test_dialog_review import pass_missing_one

    await register(chat)
    await pass_missing_one(chat, first_lesson(services))
    clock.advance(days=3)
    await converse(chat, [("/hoc", "Ôn tập: 1 câu"), ("#Ôn tập", "câu 1/1")])
    missed = first_lesson(services).quiz[0]
    assert "Ôn tập xong" in await chat.pick(missed.correct_index + 1)
    shown = await chat.say("/tiendo")
    assert "   – Ôn tập: 100% ✅" in shown and "on-tap" not in shown
