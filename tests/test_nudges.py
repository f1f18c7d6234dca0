"""Learner nudges: only to people who started the core course and stopped, at most one a week, never
in the quiet hours, never without consent or an account, and off (and on again) with one tap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.settings import Settings
from handlers.core import from_payload
from handlers.nudges import enqueue_nudges
from storage.models import Activity, ChannelAccount, Delivery, LessonProgress, Person
from tests.support import Chat, converse
from tests.test_dialog_figures import register_viewer

MORNING = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Ninh Bình (UTC+7)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Every test here on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


def core(services) -> list[str]:
    return list(services.core_lessons(services.clock()))


async def add_person(services, name: str, *, completed: int = 0, started: bool = True, idle_days: float = 6,
                     account: bool = True, blocked: bool = False, nudges_off: bool = False) -> int:
    """Someone who completed the first `completed` core lessons and (if `started`) opened the next one,
    last active `idle_days` ago."""
    now = services.clock()
    lessons = core(services)
    async with services.database.session() as session:
        person = Person(full_name=name, consent_at=now - timedelta(days=30), created_at=now - timedelta(days=30),
                        nudges_off=nudges_off)
        session.add(person)
        await session.flush()
        for lesson in lessons[:completed]:
            session.add(LessonProgress(person_id=person.id, lesson_id=lesson, status="completed",
                                       started_at=now - timedelta(days=20), completed_at=now - timedelta(days=20)))
        if started and completed < len(lessons):
            session.add(LessonProgress(person_id=person.id, lesson_id=lessons[completed], started_at=now))
        session.add(Activity(person_id=person.id, kind="lesson_opened", at=now - timedelta(days=idle_days)))
        if account:
            session.add(ChannelAccount(channel="telegram", external_id=f"tg-{name}", person_id=person.id,
                                       blocked=blocked, created_at=now))
        return person.id  # type: ignore[return-value]


async def nudges(services) -> list[Delivery]:
    async with services.database.session() as session:
        return list((await session.exec(select(Delivery).where(Delivery.kind == "nudge")
                                        .order_by(Delivery.id))).all())


async def test_only_people_who_started_and_stopped_are_nudged(services, clock):
    clock.now = MORNING
    due = await add_person(services, "due", completed=1)
    await add_person(services, "finished", completed=len(core(services)), started=False)
    await add_person(services, "never_started", started=False)
    await add_person(services, "recently_active", completed=2, idle_days=4.9)  # nudge_after_days is 5
    await add_person(services, "no_account", completed=1, account=False)
    await add_person(services, "blocked", completed=1, blocked=True)
    await add_person(services, "turned_off", completed=1, nudges_off=True)

    assert await enqueue_nudges(services, clock()) == 1
    (row,) = await nudges(services)
    assert row.person_id == due and (row.channel, row.external_id) == ("telegram", "tg-due")
    assert row.key == f"nudge:{due}:2026-11-02" and row.status == "queued"
    assert row.expires_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 21:00 local: never lands at night
    (message,) = from_payload(row.payload)
    second = services.catalog.lesson(core(services)[1])
    assert f"«{second.title}»" in message.text and f"1/{len(core(services))} bài" in message.text
    assert message.actions == [f"lesson:{second.id}", "nhachoc:off"]
    assert message.labels == ["▶️ Học tiếp", "🔕 Tắt nhắc học"]


async def test_the_next_lesson_is_the_first_one_not_completed(services, clock):
    clock.now = MORNING
    lessons = core(services)
    person = await add_person(services, "gap", completed=0)
    async with services.database.session() as session:  # lessons 2 and 3 done, the first only opened
        for lesson in lessons[1:3]:
            session.add(LessonProgress(person_id=person, lesson_id=lesson, status="completed",
                                       started_at=clock(), completed_at=clock()))
    assert await enqueue_nudges(services, clock()) == 1
    assert from_payload((await nudges(services))[0].payload)[0].actions[0] == f"lesson:{lessons[0]}"


@pytest.mark.parametrize(("local_time", "sent"), [
    ("06:59", 0), ("07:00", 1), ("12:00", 1), ("20:59", 1), ("21:00", 0), ("23:30", 0), ("03:00", 0),
])
async def test_quiet_hours_in_the_communes_zone(services, clock, local_time, sent):
    hour, minute = map(int, local_time.split(":"))
    clock.now = datetime(2026, 11, 2, hour, minute, tzinfo=services.config.zone)
    await add_person(services, "due", completed=1)
    assert await enqueue_nudges(services, clock()) == sent
    if sent:
        assert (await nudges(services))[0].expires_at == datetime(2026, 11, 2, 21, tzinfo=services.config.zone)


async def test_at_most_one_nudge_a_week(services, clock):
    clock.now = MORNING
    person = await add_person(services, "due", completed=1)
    assert await enqueue_nudges(services, clock()) == 1
    for hours in (1, 5, 24, 6 * 24):  # the same day, the next days: the runtime calls it every hour
        assert await enqueue_nudges(services, MORNING + timedelta(hours=hours)) == 0, hours
    assert await enqueue_nudges(services, MORNING + timedelta(days=7, hours=1)) == 1
    assert [row.key for row in await nudges(services)] == [f"nudge:{person}:2026-11-02", f"nudge:{person}:2026-11-09"]


async def test_a_nudge_that_expired_unsent_does_not_count(services, clock):
    clock.now = MORNING
    await add_person(services, "due", completed=1)
    assert await enqueue_nudges(services, clock()) == 1
    async with services.database.session() as session:
        row = (await session.exec(select(Delivery))).one()
        row.status = "expired"
        session.add(row)
    assert await enqueue_nudges(services, MORNING + timedelta(days=1)) == 1


async def test_no_candidates_stores_nothing(services, clock):
    clock.now = MORNING
    assert await enqueue_nudges(services, clock()) == 0
    assert await nudges(services) == []


# --- in chat ----------------------------------------------------------------------------------------

async def person_of(services, user: str) -> Person:
    async with services.database.session() as session:
        person_id = (await session.exec(select(ChannelAccount.person_id)
                                        .where(ChannelAccount.external_id == user))).one()
        return await session.get(Person, person_id)


async def learner(dispatcher, services, clock) -> Chat:
    """Registered at 08:00, opened the first lesson, then stayed away six days."""
    clock.now = MORNING
    chat = Chat(dispatcher, user="learner")
    await register_viewer(chat, "Nguyễn Thị Học")
    await converse(chat, [("/hoc", "Chọn bài để học"), (f"#{services.catalog.lesson(core(services)[0]).title}", "")])
    clock.advance(days=6)
    return chat


async def test_the_nudge_opens_the_lesson_and_turns_itself_off(dispatcher, services, clock):
    chat = await learner(dispatcher, services, clock)
    assert await enqueue_nudges(services, clock()) == 1
    (message,) = from_payload((await nudges(services))[0].payload)
    first = services.catalog.lesson(core(services)[0])
    assert f"📖 {first.title}" in await chat.press(message.actions[0])  # the nudge's "Học tiếp", from any chat

    answer = await chat.press(message.actions[1])  # "Tắt nhắc học", pressed days later from the old message
    assert "Đã tắt nhắc học" in answer and "/caidat" in answer
    assert (await person_of(services, "learner")).nudges_off
    clock.advance(days=14)
    assert await enqueue_nudges(services, clock()) == 0
    assert "🔔 Nhắc học: đang tắt" in await chat.say("/caidat")


async def test_caidat_turns_nudges_off_and_on(dispatcher, services, clock):
    chat = await learner(dispatcher, services, clock)
    await converse(chat, [("/caidat", "🔔 Nhắc học: đang bật"), ("#Nhắc học", "Đã tắt nhắc học")])
    assert "🔔 Nhắc học: đang tắt" in chat.transcript and "Bạn muốn sửa mục nào?" in chat.transcript
    assert await enqueue_nudges(services, clock()) == 0
    assert "Nhắc học khi lâu không học: đang tắt" in await chat.say("/dulieucuatoi")
    await chat.say("/caidat")
    await converse(chat, [("#Nhắc học", "Đã bật nhắc học")])
    assert "🔔 Nhắc học: đang bật" in chat.transcript
    assert not (await person_of(services, "learner")).nudges_off
    assert await enqueue_nudges(services, clock()) == 1


async def test_the_switch_is_harmless_for_guests_and_odd_arguments(dispatcher, services, clock):
    guest = Chat(dispatcher, user="guest")
    assert "chưa đăng ký" in await guest.press("nhachoc:off")
    chat = await learner(dispatcher, services, clock)
    assert "Bạn muốn sửa mục nào?" in await chat.press("nhachoc:xyz")
    assert not (await person_of(services, "learner")).nudges_off
    # Pressing "off" twice leaves it off: the button names the state, it does not flip it.
    await chat.press("nhachoc:off")
    await chat.press("nhachoc:off")
    assert (await person_of(services, "learner")).nudges_off
