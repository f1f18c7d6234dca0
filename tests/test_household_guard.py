"""Household codes: guessing is limited, misses reveal nothing, the head sees and removes members,
and a join racing the household's deletion on PostgreSQL ends where the person was told."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import build_services
from bot.settings import Settings
from handlers.dispatcher import Dispatcher
from storage import models, queries
from storage.db import Database
from storage.models import Household, Person
from tests.support import Chat, FakeClock, converse
from tests.test_dialog_registration import register


async def household_code(services, name: str = "Nguyễn Văn An") -> str:
    async with services.database.session() as session:
        return (
            await session.exec(
                select(Household.code).join(Person, Person.household_id == Household.id).where(Person.full_name == name)
            )
        ).one()


def wrong(code: str, shift: int = 1) -> str:
    """Another code of the same length."""
    return f"{(int(code) + shift) % 10 ** len(code):0{len(code)}d}"


async def reach_code_step(chat: Chat, name: str | None = "Lê Thị Hoa") -> None:
    await converse(chat, [("/start", "đồng ý"), ("#Đồng ý", "họ và tên")])
    await converse(chat, [(name, "thôn/xóm")] if name else [("#Bỏ qua", "thôn/xóm")])
    await converse(chat, [("#Bỏ qua", "nhóm nào"), ("#Bỏ qua", "Hộ gia đình"), ("#Nhập mã hộ", "6 chữ số")])


async def stranger_at_the_code_step(dispatcher, services) -> tuple[str, Chat]:
    """A registered family's household code, and a stranger now asked to type a code."""
    await register(Chat(dispatcher, user="bo"))
    code = await household_code(services)
    stranger = Chat(dispatcher, user="la")
    await reach_code_step(stranger)
    return code, stranger


async def household_of(services, name: str) -> int | None:
    async with services.database.session() as session:
        return (await session.exec(select(Person.household_id).where(Person.full_name == name))).one()


async def forge(services, chat: Chat, action: str) -> str:
    """Press a button the bot never showed, as if it had been shown (a forged callback)."""
    async with services.database.session() as session:
        state = await queries.load_state(session, chat.channel, chat.user, services.clock())
        state.menu = [*state.menu, action]
        session.add(state)
    return await chat.press(action)


# --- a few wrong tries, then a wait -------------------------------------------------------------

async def test_wrong_codes_are_limited_then_the_chat_waits(dispatcher, services, clock, monkeypatch):
    code, stranger = await stranger_at_the_code_step(dispatcher, services)
    for left in (4, 3, 2, 1):
        guess = wrong(code, left)
        answer = await stranger.say(guess)
        assert f"còn {left} lần thử" in answer
        assert guess not in answer.replace(" ", "")  # the code is neither echoed nor confirmed
        assert "Không tìm thấy" not in answer
    answer = await stranger.say(wrong(code, 5))
    assert "chờ đến 09:00" in answer  # 08:00 in Ninh Bình, one hour on
    assert "Nhập mã hộ" in answer  # back at the household question

    lookups: list[str] = []
    original = queries.household_by_code

    async def spy(session, looked_up, **options):
        lookups.append(looked_up)
        return await original(session, looked_up, **options)

    monkeypatch.setattr(queries, "household_by_code", spy)
    assert "chờ đến 09:00" in await stranger.choose("Nhập mã hộ")
    clock.advance(minutes=59)
    assert "chờ đến 09:00" in await stranger.choose("Nhập mã hộ")
    assert lookups == []  # while waiting, nothing is looked up
    assert await household_of(services, "Lê Thị Hoa") is None

    clock.advance(minutes=1)
    await converse(stranger, [("#Nhập mã hộ", "6 chữ số"), (code, "Bạn đã vào hộ")])


async def test_a_code_typed_at_the_code_step_while_waiting_is_not_looked_up(dispatcher, services, monkeypatch):
    code, stranger = await stranger_at_the_code_step(dispatcher, services)
    async with services.database.session() as session:  # five misses made from another screen of this chat
        for _ in range(5):
            await queries.record_household_code_try(session, "console", "la", services.clock(), 60)

    async def never(*_args, **_kwargs):
        raise AssertionError("looked up while waiting")

    monkeypatch.setattr(queries, "household_by_code", never)
    assert "chờ đến 09:00" in await stranger.say(code)
    assert await household_of(services, "Lê Thị Hoa") is None


async def test_the_tries_slide_with_the_hour(dispatcher, services, clock):
    code, stranger = await stranger_at_the_code_step(dispatcher, services)
    for shift in range(1, 5):
        await stranger.say(wrong(code, shift))
        clock.advance(minutes=10)
    assert "chờ đến 09:00" in await stranger.say(wrong(code, 5))  # 08:00 .. 08:40, the first one counts until 09:00
    clock.advance(minutes=20)  # 09:00: the 08:00 try no longer counts, the other four do
    await converse(stranger, [("#Nhập mã hộ", "6 chữ số"), (wrong(code, 6), "chờ đến 09:10")])


async def test_erasing_and_registering_again_does_not_reset_the_tries(dispatcher, services):
    code, stranger = await stranger_at_the_code_step(dispatcher, services)
    for shift in range(1, 6):
        await stranger.say(wrong(code, shift))
    await converse(stranger, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa")])
    await converse(stranger, [
        ("/start", "đồng ý"), ("#Đồng ý", "họ và tên"), ("Lê Thị Hoa", "thôn/xóm"),
        ("#Bỏ qua", "nhóm nào"), ("#Bỏ qua", "Hộ gia đình"), ("#Nhập mã hộ", "chờ đến 09:00"),
    ])


async def test_old_tries_are_pruned_when_the_chat_tries_again(dispatcher, services, clock):
    code, stranger = await stranger_at_the_code_step(dispatcher, services)
    for shift in range(1, 4):
        await stranger.say(wrong(code, shift))
    clock.advance(hours=2)
    assert "còn 4 lần thử" in await stranger.say(wrong(code, 4))
    async with services.database.session() as session:
        assert len((await session.exec(select(models.HouseholdCodeTry))).all()) == 1


async def test_only_ascii_digits_make_a_code(dispatcher, services):
    code, stranger = await stranger_at_the_code_step(dispatcher, services)
    for odd in ("²" * 6, "①②③④⑤⑥"):
        answer = await stranger.say(odd)
        assert "gồm 6 chữ số" in answer and "trục trặc" not in answer
    fullwidth = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert "Bạn đã vào hộ" in await stranger.say(fullwidth)


# --- the head sees who joined and removes them --------------------------------------------------

async def join(chat: Chat, code: str, name: str | None) -> None:
    await reach_code_step(chat, name)
    await converse(chat, [(code, "Bạn đã vào hộ")])


async def test_the_head_sees_who_joined_and_removes_a_stranger(dispatcher, services):
    father = Chat(dispatcher, user="bo")
    await register(father)
    code = await household_code(services)
    await join(Chat(dispatcher, user="la"), code, "Lê Thị Hoa")
    await join(Chat(dispatcher, user="an-danh"), code, None)
    shown = await converse_and_show(father, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 3 người")])
    assert "Nguyễn Văn An (bạn)" in shown and "Lê Thị Hoa" in shown and "chưa có tên" in shown
    assert len([label for label in father.labels if label.startswith("❌ Bỏ")]) == 2  # not the head himself
    await converse(father, [
        ("#Lê Thị Hoa", "Bạn chắc chắn muốn bỏ Lê Thị Hoa khỏi hộ"),
        ("#Không", "có 3 người"),
        ("#Lê Thị Hoa", "Bạn chắc chắn"),
        ("#Có, bỏ khỏi hộ", "Đã bỏ Lê Thị Hoa khỏi hộ"),
    ])
    members_now = father.transcript.split("🏡")[1]
    assert "có 2 người" in members_now and "Lê Thị Hoa" not in members_now
    assert await household_of(services, "Lê Thị Hoa") is None
    assert await household_of(services, "Nguyễn Văn An") is not None


async def converse_and_show(chat: Chat, script: list[tuple[str, str]]) -> str:
    await converse(chat, script)
    return chat.transcript


async def test_non_heads_see_how_many_are_in_the_household(dispatcher, services):
    father = Chat(dispatcher, user="bo")
    await register(father)
    code = await household_code(services)
    mother = Chat(dispatcher, user="me")
    await join(mother, code, "Lê Thị Hoa")
    await converse(mother, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người")])
    assert not [label for label in mother.labels if label.startswith("❌ Bỏ")]
    assert "Nguyễn Văn An" not in mother.transcript  # only the head sees the names


async def test_a_removed_stranger_cannot_come_back_with_the_old_code(dispatcher, services):
    father = Chat(dispatcher, user="bo")
    await register(father)
    old = await household_code(services)
    stranger = Chat(dispatcher, user="la")
    await join(stranger, old, "Lê Thị Hoa")
    await converse(father, [
        ("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người"),
        ("#Lê Thị Hoa", "Bạn chắc chắn"), ("#Có, bỏ khỏi hộ", "đổi mã hộ"),
        ("#Đổi mã hộ", "Mã hộ mới của nhà bạn là"),
    ])
    new = await household_code(services)
    assert new != old
    await converse(stranger, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "Nhập mã hộ"),
                              ("#Nhập mã hộ", "6 chữ số"), (old, "còn 4 lần thử")])
    assert await household_of(services, "Lê Thị Hoa") is None


async def test_forged_remove_buttons_change_nothing(dispatcher, services):
    father = Chat(dispatcher, user="bo")
    await register(father)
    code = await household_code(services)
    mother = Chat(dispatcher, user="me")
    await join(mother, code, "Lê Thị Hoa")
    neighbour = Chat(dispatcher, user="hang-xom")
    await register(neighbour, name="Đỗ Văn Cường")
    neighbour_code = await household_code(services, "Đỗ Văn Cường")
    await join(Chat(dispatcher, user="con-hang-xom"), neighbour_code, "Đỗ Thị Dung")
    async with services.database.session() as session:
        ids = {p.full_name: p.id for p in (await session.exec(select(Person))).all()}
    before = {name: await household_of(services, name) for name in ids}

    await converse(father, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người")])
    for target in ("Đỗ Thị Dung", "Đỗ Văn Cường", "Nguyễn Văn An", "khong-co"):
        person_id = ids.get(target, 10_000)
        await forge(services, father, f"hh:remove:{person_id}")
        await forge(services, father, "hh:removeyes")
    await forge(services, mother, f"hh:remove:{ids['Nguyễn Văn An']}")  # a member is not the head
    await forge(services, mother, "hh:removeyes")
    await forge(services, mother, "hh:newcode")
    assert {name: await household_of(services, name) for name in ids} == before
    assert await household_code(services) == code


async def test_a_member_who_moved_on_before_the_confirmation_is_not_removed(dispatcher, services):
    father = Chat(dispatcher, user="bo")
    await register(father)
    code = await household_code(services)
    mother = Chat(dispatcher, user="me")
    await join(mother, code, "Lê Thị Hoa")
    await converse(father, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người"),
                            ("#Lê Thị Hoa", "Bạn chắc chắn")])
    neighbour = Chat(dispatcher, user="hang-xom")
    await register(neighbour, name="Đỗ Văn Cường")
    neighbour_code = await household_code(services, "Đỗ Văn Cường")
    await converse(mother, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người"),
                            ("#Nhập mã hộ", "6 chữ số"), (neighbour_code, "Bạn đã vào hộ")])
    answer = await father.choose("Có, bỏ khỏi hộ")
    assert "Đã bỏ" not in answer
    assert await household_of(services, "Lê Thị Hoa") == await household_of(services, "Đỗ Văn Cường")


# --- PostgreSQL: a join racing the deletion of the household -------------------------------------

class HeldDatabase(Database):
    """A database whose next transaction stops just before its commit until the test lets it go."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.inside, self.release = asyncio.Event(), asyncio.Event()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with super().session() as session:
            yield session
            if not self.release.is_set():
                self.inside.set()
                await self.release.wait()


async def someone_waits_for_a_lock(database: Database, other: asyncio.Task) -> bool:
    """True once a transaction of this database waits for a row lock; False if `other` finished first."""
    async with asyncio.timeout(10):
        while not other.done():
            async with database.engine.connect() as connection:
                waiting = (await connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                ))).scalar()
            if waiting:
                return True
    return False


@pytest.fixture
async def postgres_services(database_url) -> AsyncIterator[tuple]:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: the race needs PostgreSQL")
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    services = await build_services(settings, clock=FakeClock(), rng=random.Random(7))
    held = HeldDatabase(database_url)
    yield services, dataclasses.replace(services, database=held)
    await held.dispose()
    await services.database.dispose()


async def ready_to_leave(chat: Chat) -> str:
    """Shows the screen with the leave button; returns the label to press."""
    await converse(chat, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "Rời hộ hiện tại")])
    return "Rời hộ"


async def ready_to_erase(chat: Chat) -> str:
    await converse(chat, [("/xoadulieu", "chắc chắn")])
    return "Xóa hết"


@pytest.mark.parametrize("ready", [ready_to_leave, ready_to_erase], ids=["leaves", "erases"])
@pytest.mark.parametrize("first", ["joiner", "last member"])
async def test_a_join_racing_the_last_member_ends_where_the_person_was_told(postgres_services, ready, first):
    plain, held = postgres_services
    father = Chat(Dispatcher(plain), user="bo")
    await register(father)
    code = await household_code(plain)
    mother = Chat(Dispatcher(plain), user="me")
    await reach_code_step(mother)
    label = await ready(father)

    async def join() -> str:
        return await mother.say(code)

    async def go() -> str:
        return await father.choose(label)

    # The first turn runs on the held database: it stops just before its commit, holding its locks,
    # until the second turn waits for one of them (or, without locks, has finished).
    (mother if first == "joiner" else father).dispatcher = Dispatcher(held)
    first_turn, second_turn = (join, go) if first == "joiner" else (go, join)
    first_task = asyncio.create_task(first_turn())
    await held.database.inside.wait()
    second_task = asyncio.create_task(second_turn())
    waited = await someone_waits_for_a_lock(plain.database, second_task)
    held.database.release.set()
    answers = await asyncio.gather(first_task, second_task)
    assert waited  # the second turn queued behind the first one's lock on the household
    assert not any("trục trặc" in answer for answer in answers)
    told = answers[0] if first == "joiner" else answers[1]
    async with plain.database.session() as session:
        person = (await session.exec(select(Person).where(Person.full_name == "Lê Thị Hoa"))).one()
        household = await session.get(Household, person.household_id) if person.household_id else None
    if "Bạn đã vào hộ" in told:
        assert household is not None and household.code == code
    else:
        assert "chưa đúng" in told and household is None


def test_the_guard_is_set_from_the_settings():
    from bot.app import handler_config
    from bot.settings import SettingsError, load_settings

    config = handler_config(load_settings(_env_file=None, household_code_tries=3,
                                          household_code_window_minutes=30))
    assert (config.household_code_tries, config.household_code_window_minutes) == (3, 30)
    for wrong in ({"household_code_tries": 0}, {"household_code_window_minutes": 0},
                  {"household_code_tries": 21}):
        with pytest.raises(SettingsError):
            load_settings(_env_file=None, **wrong)


# --- a household never loses its head -------------------------------------------------------------

async def is_head(services, name: str) -> bool:
    async with services.database.session() as session:
        return (await session.exec(select(Person.is_household_head).where(Person.full_name == name))).one()


async def test_the_head_typing_the_households_own_code_stays_head(dispatcher, services):
    """Found in review: joining the household one heads made nobody its head."""
    father = Chat(dispatcher, user="bo")
    await register(father)
    code = await household_code(services)
    await join(Chat(dispatcher, user="me"), code, "Lê Thị Hoa")
    await converse(father, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người"),
                            ("#Nhập mã hộ", "6 chữ số"), (code, "Bạn đã ở trong hộ này rồi")])
    assert await is_head(services, "Nguyễn Văn An")
    assert not await is_head(services, "Lê Thị Hoa")


@pytest.mark.parametrize("how", ["erase", "leave", "new household"])
async def test_when_the_head_goes_the_longest_registered_member_becomes_head(dispatcher, services, how):
    """Found in review: after the head left or erased, nobody could remove a stranger or renew the code."""
    father = Chat(dispatcher, user="bo")
    await register(father)
    code = await household_code(services)
    mother, stranger = Chat(dispatcher, user="me"), Chat(dispatcher, user="la")
    await join(mother, code, "Lê Thị Hoa")
    await join(stranger, code, "Kẻ Lạ Mặt")
    if how == "erase":
        await converse(father, [("/xoadulieu", "chắc chắn"), ("#Xóa hết", "Đã xóa")])
    else:
        button = "Rời hộ" if how == "leave" else "Tạo mã hộ mới"
        await converse(father, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 3 người"), (f"#{button}", "")])
    assert await is_head(services, "Lê Thị Hoa")
    assert not await is_head(services, "Kẻ Lạ Mặt")
    await converse(mother, [("/caidat", "Hộ gia đình"), ("#Hộ gia đình", "có 2 người"),
                            ("#Kẻ Lạ Mặt", "Bạn chắc chắn"), ("#Có, bỏ khỏi hộ", "Đã bỏ Kẻ Lạ Mặt khỏi hộ")])
    assert await household_of(services, "Kẻ Lạ Mặt") is None
