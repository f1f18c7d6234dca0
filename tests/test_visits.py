"""Households still to visit (/canthamhoi): the list equals the households minus those with a finisher,
counted here independently, on a hand-made village (three channels) and on a generated commune; who may
see which village; the XLSX has the rows of the chat list. Every test on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import select

from benchmarks import generate_commune as gen
from bot.app import build_services
from bot.settings import Settings
from content.loader import load_catalog
from handlers.context import Services
from handlers.dispatcher import Dispatcher
from reports.visits_book import HEADER_ROW
from storage import access
from storage.figures import name_order, village_figures
from storage.models import AuditLog, Household, LessonProgress, Person, RoleGrant, Village
from storage.visits import households_to_visit
from tests.support import Chat, FakeClock, converse


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Every test here on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


LINE = re.compile(r"^(\d+)\. (.+) – (.+)$")
NO_NAME = "Hộ chưa có tên để hiện"


# --- helpers -------------------------------------------------------------------------------------

async def register(chat: Chat, name: str) -> None:
    """Someone registered in no village, household or organisation: they change no household."""
    await converse(chat, [
        ("/start", "Bạn có đồng ý không?"), ("#Đồng ý", "họ và tên"), (name, "thôn/xóm nào"),
        ("#Bỏ qua", "nhóm nào"), ("#Bỏ qua", "Hộ gia đình"), ("#Bỏ qua", "tổ chức nào"), ("#Xong", "VNeID"),
        ("#Chưa kích hoạt", "Đăng ký xong"),
    ])


async def village_id(services: Services, name: str) -> int:
    async with services.database.session() as session:
        found = (await session.exec(select(Village.id).where(Village.name == name))).first()
    assert found is not None
    return found


async def grant(services: Services, chat: Chat, role: str, village: str | None = None) -> None:
    """The role by invitation, as people get it: a code made for them, typed with /ma."""
    where = await village_id(services, village) if village else None
    async with services.database.session() as session:
        code = await access.create_invite(session, role=role, now=services.clock(), expires_in=timedelta(days=1),
                                          rng=services.random, village_id=where)
    assert "Bạn đã nhận vai trò" in await chat.say(f"/ma {code}")


async def person_of(services: Services, chat: Chat) -> int:
    from storage import queries

    async with services.database.session() as session:
        person = await queries.person_of(session, chat.channel, chat.external_id)
    assert person is not None and person.id is not None
    return person.id


def page_lines(answer: str) -> list[str]:
    return [line for line in answer.splitlines() if LINE.match(line)]


async def walk_pages(chat: Chat, answer: str) -> list[str]:
    """Every household line of the list, page after page with "Sau"."""
    lines = page_lines(answer)
    while "Sau ▶️" in chat.labels:
        answer = await chat.choose("Sau")
        lines += page_lines(answer)
    return lines


def book_lines(data: bytes) -> list[str]:
    """The workbook's rows written as the chat writes a household."""
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    lines = []
    for number, who, _source, size, registered, progress, *_ in sheet.iter_rows(min_row=HEADER_ROW + 1,
                                                                                values_only=True):
        if number is None:
            continue
        details = [f"{size} nhân khẩu"] if size else []
        details.append(f"{registered} người đăng ký" if registered else "chưa ai đăng ký")
        if progress:
            details.append(f"giỏi nhất {progress} bài")
        lines.append(f"{number}. {who} – {', '.join(details)}")
    return lines


def book_text(data: bytes) -> str:
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    return "\n".join(str(cell) for row in sheet.iter_rows(values_only=True) for cell in row if cell is not None)


# --- a hand-made village --------------------------------------------------------------------------

@dataclass
class Village1:
    core: int
    thon1: int
    thon2: int
    codes: list[str]
    hidden: list[str]  # names that must never be shown (consent 1, or households already reached)


async def build_villages(services: Services) -> Village1:
    """Thôn 1: 16 households, 2 reached (one by a person who agreed to be named, one by someone who did
    not: a finisher counts either way), 14 to visit; Thôn 2: two households, none reached."""
    now = services.clock()
    core = list(services.core_lessons(now))
    thon1, thon2 = await village_id(services, "Thôn 1"), await village_id(services, "Thôn 2")
    codes: list[str] = []
    async with services.database.session() as session:
        async def household(village: int, head: str | None, size: int | None, *, listed: bool) -> int:
            code = f"70{len(codes) + 1:04d}"
            codes.append(code)
            row = Household(code=code, village_id=village, head_name=head, member_count=size, in_directory=listed,
                            created_at=now)
            session.add(row)
            await session.flush()
            assert row.id is not None
            return row.id

        async def person(name: str, home: int, village: int, *, consent: int, lessons: int, head: bool = False) -> None:
            row = Person(full_name=name, village_id=village, household_id=home, is_household_head=head,
                         consent_version=consent, consent_offered=2, consent_at=now, created_at=now)
            session.add(row)
            await session.flush()
            for lesson in core[:lessons]:
                session.add(LessonProgress(person_id=row.id, lesson_id=lesson, status="completed", best_score=90,
                                           started_at=now, completed_at=now))
            # A lesson started but not completed counts for nothing.
            if lessons < len(core):
                session.add(LessonProgress(person_id=row.id, lesson_id=core[lessons], status="started",
                                           started_at=now))

        await household(thon1, "Nguyễn Văn Hùng", 4, listed=True)  # nobody registered
        reached = await household(thon1, "Trần Văn Bình", 3, listed=True)
        await person("Trần Thị Xong", reached, thon1, consent=2, lessons=len(core), head=True)
        reached = await household(thon1, "Vũ Văn Danh", 5, listed=True)
        await person("Vũ Thị Riêng", reached, thon1, consent=1, lessons=len(core), head=True)
        mai = await household(thon1, None, None, listed=False)
        await person("Lê Thị Mai", mai, thon1, consent=2, lessons=3, head=True)
        await person("Lê Văn Tú", mai, thon1, consent=1, lessons=5)  # further, but not to be named or counted
        hidden = await household(thon1, None, None, listed=False)
        await person("Phạm Văn Ẩn", hidden, thon1, consent=1, lessons=2, head=True)
        mixed = await household(thon1, None, None, listed=False)
        await person("Hoàng Văn Giấu", mixed, thon1, consent=1, lessons=4, head=True)
        await person("Hoàng Thị Hiện", mixed, thon1, consent=2, lessons=0)
        for number in range(1, 11):
            await household(thon1, f"Bùi Văn Thứ {number:02d}", 2, listed=True)
        await household(thon2, "Đỗ Thị Hoa", 2, listed=True)
        stranger = await household(thon2, None, None, listed=False)
        await person("Ngô Văn Lạ", stranger, thon2, consent=2, lessons=1, head=True)
    return Village1(len(core), thon1, thon2, codes,
                    ["Lê Văn Tú", "Phạm Văn Ẩn", "Hoàng Văn Giấu", "Vũ Thị Riêng", "Trần Văn Bình", "Vũ Văn Danh",
                     "Trần Thị Xong"])


def thon1_lines(core: int) -> list[str]:
    return [
        *(f"{number}. Bùi Văn Thứ {number:02d} – 2 nhân khẩu, chưa ai đăng ký" for number in range(1, 11)),
        f"11. Hoàng Thị Hiện – 2 người đăng ký, giỏi nhất 0/{core} bài",
        "12. Nguyễn Văn Hùng – 4 nhân khẩu, chưa ai đăng ký",
        f"13. Lê Thị Mai – 2 người đăng ký, giỏi nhất 3/{core} bài",
        f"14. {NO_NAME} – 1 người đăng ký",
    ]


async def test_a_village_head_pages_through_the_households_and_gets_the_same_file(make_chat, services, caplog):
    caplog.set_level(logging.INFO)
    built = await build_villages(services)
    head = make_chat("head")
    await register(head, "Trưởng Thôn Một")
    await grant(services, head, "village_head", "Thôn 1")

    answer = await head.say("/canthamhoi")  # one village: straight to its list
    for expected in ("Hộ cần đến hướng dẫn – Thôn 1", "• Số hộ của thôn: 16",
                     "• Hộ đã có người hoàn thành khóa cơ bản: 2", "• Hộ cần đến: 14 (trong đó 11 hộ chưa ai đăng ký)",
                     "Trang 1/2"):
        assert expected in answer, f"{expected!r} not in\n{answer}"
    assert "Trước" not in " ".join(head.labels)
    lines = page_lines(answer)
    assert len(lines) == 10
    answer = await head.choose("Sau")
    assert "Trang 2/2" in answer and "Sau ▶️" not in head.labels
    lines += page_lines(answer)
    assert lines == thon1_lines(built.core)
    answer = await head.choose("Trước")
    assert "Trang 1/2" in answer and page_lines(answer) == lines[:10]

    await head.choose("Excel")
    attachment = head.replies[-1].attachment
    assert attachment is not None and attachment.file_name.endswith(".xlsx")
    assert "14 hộ cần đến" in head.replies[-1].text
    assert book_lines(attachment.data) == lines
    shown = "\n".join([*lines, book_text(attachment.data), head.replies[-1].text])
    for secret in [*built.hidden, *built.codes, "Đỗ Thị Hoa", "Ngô Văn Lạ"]:
        assert secret not in shown
        assert secret not in caplog.text
    assert "Trưởng Thôn Một" not in caplog.text

    # Each view is audited, with the village's id only.
    async with services.database.session() as session:
        audits = (await session.exec(select(AuditLog).where(AuditLog.action.in_(["visits_view", "visits_export"]))
                                     )).all()
    assert [(a.action, a.outcome, a.village_id) for a in audits] == (
        [("visits_view", "ok", built.thon1)] * 3 + [("visits_export", "ok", built.thon1)])


async def test_a_digital_team_member_sees_only_their_village(make_chat, services):
    built = await build_villages(services)
    member = make_chat("team")
    await register(member, "Thành Viên Tổ")
    await grant(services, member, "digital_team", "Thôn 2")

    answer = await member.say("/canthamhoi")
    assert "Thôn 2" in answer and "• Số hộ của thôn: 2" in answer and "• Hộ cần đến: 2" in answer
    # Residents agreed that their leaders and village head see their name and progress, not the team: the
    # team gets the directory's head names and the counts only.
    assert page_lines(answer) == ["1. Đỗ Thị Hoa – 2 nhân khẩu, chưa ai đăng ký",
                                  "2. Hộ chưa có tên để hiện – 1 người đăng ký"]
    assert "Ngô Văn Lạ" not in member.transcript

    # The main menu's button (action "ctham") leads to the same list.
    assert page_lines(await member.press("ctham"))[0] == "1. Đỗ Thị Hoa – 2 nhân khẩu, chưa ai đăng ký"

    # Buttons made up for Thôn 1 (a list, a page, the file): refused politely, nothing of it shown.
    for forged in (f"ctham:{built.thon1}", f"ctham:{built.thon1}:2", f"cthamx:{built.thon1}"):
        answer = await member.press(forged)
        assert "chỉ dành cho trưởng thôn" in answer
        assert "Thôn 1" not in answer and "Hùng" not in answer and "Lê Thị Mai" not in answer
        assert all(reply.attachment is None for reply in member.replies)
    forgeries = ("ctham:abc", "ctham:-1", f"ctham:{built.thon2}:x", f"cthamx:{built.thon2}:1", "cthamx", "ctham:99999")
    for forged in forgeries:
        answer = await member.press(forged)
        assert "chỉ dành cho trưởng thôn" in answer and "Đỗ Thị Hoa" not in answer
    async with services.database.session() as session:
        refused = (await session.exec(select(AuditLog).where(AuditLog.outcome == "refused",
                                                             AuditLog.action.in_(["visits_view", "visits_export"])))
                   ).all()
    assert [a.village_id for a in refused][:3] == [built.thon1] * 3
    assert len(refused) == 9


async def test_a_resident_is_refused_politely(make_chat, services):
    built = await build_villages(services)
    resident = make_chat("resident")
    answer = await resident.say("/canthamhoi")  # not even registered
    assert "chỉ dành cho trưởng thôn" in answer
    await register(resident, "Người Dân Thường")
    for attempt in ("/canthamhoi", f"ctham:{built.thon1}", f"cthamx:{built.thon1}", "ctham"):
        answer = await (resident.say(attempt) if attempt.startswith("/") else resident.press(attempt))
        assert "chỉ dành cho trưởng thôn" in answer and "/ma" in answer
        assert "Hùng" not in answer and "Thôn 1 (đến" not in answer
        assert all(reply.attachment is None for reply in resident.replies)


async def test_staff_and_a_commune_wide_team_member_choose_a_village(make_chat, services):
    built = await build_villages(services)
    staff = make_chat("staff")
    await register(staff, "Cán Bộ Xã")
    await grant(services, staff, "staff")
    answer = await staff.say("/canthamhoi")
    assert "thôn/xóm nào" in answer and "Thôn 10" in " ".join(staff.labels)
    answer = await staff.choose("Thôn 2")
    assert "Đỗ Thị Hoa" in answer and "Thôn khác" in " ".join(staff.labels)
    answer = await staff.choose("Thôn khác")
    answer = await staff.choose("Thôn 1")
    assert "Trang 1/2" in answer
    # A page past the end shows the last one.
    answer = await staff.press(f"ctham:{built.thon1}:9")
    assert "Trang 2/2" in answer and "Lê Thị Mai" in answer

    team = make_chat("teamc")
    await register(team, "Tổ Cả Xã")
    team_id = await person_of(services, team)  # before the session: SQLite has one writer at a time
    async with services.database.session() as session:
        session.add(RoleGrant(person_id=team_id, role="digital_team", village_id=None, granted_at=services.clock()))
    answer = await team.say("/canthamhoi")
    assert "thôn/xóm nào" in answer
    answer = await team.choose("Thôn 1")
    assert "• Hộ cần đến: 14" in answer
    await team.choose("Excel")
    assert team.replies[-1].attachment is not None


async def test_an_empty_village_and_a_village_where_every_household_is_reached(make_chat, services):
    await build_villages(services)
    head = make_chat("head3")
    await register(head, "Trưởng Thôn Ba")
    await grant(services, head, "village_head", "Thôn 3")
    answer = await head.say("/canthamhoi")
    assert "• Số hộ của thôn: 0" in answer and "chưa có hộ nào" in answer
    assert "Excel" not in " ".join(head.labels)

    now = services.clock()
    core = services.core_lessons(now)
    thon3 = await village_id(services, "Thôn 3")
    async with services.database.session() as session:
        home = Household(code="800001", village_id=thon3, head_name="Mai Văn Đủ", in_directory=True, created_at=now)
        session.add(home)
        await session.flush()
        person = Person(full_name="Mai Văn Đủ", village_id=thon3, household_id=home.id, consent_version=2,
                        consent_offered=2, consent_at=now, created_at=now)
        session.add(person)
        await session.flush()
        for lesson in core:
            session.add(LessonProgress(person_id=person.id, lesson_id=lesson, status="completed", started_at=now,
                                       completed_at=now))
    answer = await head.say("/canthamhoi")
    assert "• Hộ cần đến: 0" in answer and "🎉" in answer and "Mai Văn Đủ" not in answer


# --- a generated commune ----------------------------------------------------------------------------

GENERATED_NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
async def generated(database_url: str) -> AsyncIterator[Services]:
    """A small generated commune (benchmarks/generate_commune.py: 600 people, 200 households, 3 villages),
    and the bot's services on it, an hour after the data ends."""
    catalog = load_catalog()
    if database_url.startswith("sqlite"):
        path = Path(make_url(database_url).database or "")
        await asyncio.to_thread(gen.generate, path, gen.SMALL_COMMUNE, catalog, GENERATED_NOW)
    else:
        await gen.load_postgres(database_url, gen.SMALL_COMMUNE, catalog, GENERATED_NOW)
    clock = FakeClock(GENERATED_NOW + timedelta(hours=1))
    built = await build_services(Settings(_env_file=None, database_url=database_url),  # type: ignore[call-arg]
                                 clock=clock, rng=random.Random(7))
    try:
        yield built
    finally:
        await built.database.dispose()


@dataclass(frozen=True)
class Expected:
    household_id: int
    line: str  # without its number
    sort: tuple[object, ...]


def _completed(rows: dict[str, list[tuple]]) -> dict[int, set[str]]:
    """Each person's completed lessons."""
    completed: dict[int, set[str]] = {}
    for person_id, lesson_id in rows["completed"]:
        completed.setdefault(person_id, set()).add(lesson_id)
    return completed


def expected_for(village: int, rows: dict[str, list[tuple]], core: set[str]) -> tuple[list[Expected], int, set[str]]:
    """The village's households nobody in which completed every core lesson, as the chat should list them,
    counted from the raw tables; also how many households the village has, and their codes."""
    completed = _completed(rows)
    members: dict[int, list[tuple]] = {}
    for person in rows["people"]:
        if person[1] is not None:
            members.setdefault(person[1], []).append(person)
    houses = [house for house in rows["households"] if house[1] == village]
    expected = []
    for house_id, _, head_name, listed_size, _code, _listed in houses:
        people = members.get(house_id, [])
        if any(core <= completed.get(person[0], set()) for person in people):
            continue
        named = [person for person in people if person[3] >= 2]
        names = [head_name] if head_name else [
            person[2] for person in sorted(named, key=lambda person: (not person[4], name_order(person[2])))
            if person[2] and person[2].strip()]
        who = (", ".join(names[:3]) + (f" và {len(names) - 3} người" if len(names) > 3 else "")) if names else NO_NAME
        details = [f"{listed_size} nhân khẩu"] if listed_size else []
        details.append(f"{len(people)} người đăng ký" if people else "chưa ai đăng ký")
        if named:
            best = max(len(core & completed.get(person[0], set())) for person in named)
            details.append(f"giỏi nhất {best}/{len(core)} bài")
        expected.append(Expected(house_id, f"{who} – {', '.join(details)}",
                                 (name_order(names[0] if names else None), house_id)))
    expected.sort(key=lambda item: item.sort)
    return expected, len(houses), {house[4] for house in houses if house[4]}


async def test_on_a_generated_commune_the_list_is_the_households_minus_those_with_a_finisher(generated):
    services = generated
    now = services.clock()
    core = services.core_lessons(now)

    def raw(connection):  # type: ignore[no-untyped-def]
        return {
            "households": connection.execute(text(
                "SELECT id, village_id, head_name, member_count, code, in_directory FROM household")).all(),
            "people": connection.execute(text(
                "SELECT id, household_id, full_name, consent_version, is_household_head FROM person")).all(),
            "completed": connection.execute(text(
                "SELECT person_id, lesson_id FROM lessonprogress WHERE status = 'completed'")).all(),
            "villages": connection.execute(text("SELECT id, name FROM village ORDER BY id")).all(),
        }

    rows = await services.database.read(raw)
    assert rows["villages"] and len(rows["households"]) == gen.SMALL_COMMUNE.households
    for village, _ in rows["villages"]:
        expected, known, _codes = expected_for(village, rows, set(core))
        counted = await services.database.read(lambda connection, v=village: households_to_visit(connection, v, core))
        assert [row.household_id for row in counted.rows] == [item.household_id for item in expected]
        assert counted.households == known and counted.to_visit == len(expected)
        figures = await services.database.read(
            lambda connection, v=village: village_figures(connection, v, core, now))
        assert (figures.households_known, figures.households_reached) == (known, known - len(expected))

    # The biggest village's head, in chat: every page, then the file.
    village, name = max(rows["villages"], key=lambda v: sum(h[1] == v[0] for h in rows["households"]))
    expected, known, codes = expected_for(village, rows, set(core))
    assert len(expected) > 20  # several pages
    # Its list is the directory's households (and those made in chat) minus those with a finisher, and the
    # generated village has each kind: directory households nobody registered in, households made in chat,
    # households reached.
    finished = {person_id for person_id, lessons in _completed(rows).items() if set(core) <= lessons}
    with_finisher = {person[1] for person in rows["people"] if person[0] in finished and person[1] is not None}
    houses = [house for house in rows["households"] if house[1] == village]
    registered = {person[1] for person in rows["people"]}
    listed = {item.household_id for item in expected}
    assert listed == {house[0] for house in houses} - with_finisher
    assert {house[0] for house in houses if house[5] and house[0] not in registered} <= listed
    assert {house[0] for house in houses if house[5] and house[0] not in registered}
    assert {house[0] for house in houses if not house[5]} & listed
    assert {house[0] for house in houses} & with_finisher
    head = Chat(Dispatcher(services), user="generated-head")
    await register(head, "Trưởng Thôn Sinh")
    await grant(services, head, "village_head", name)
    answer = await head.say("/canthamhoi")
    assert f"• Số hộ của thôn: {known}" in answer and f"• Hộ cần đến: {len(expected)}" in answer
    lines = await walk_pages(head, answer)
    assert lines == [f"{number}. {item.line}" for number, item in enumerate(expected, start=1)]
    await head.choose("Excel")
    data = head.replies[-1].attachment.data
    assert book_lines(data) == lines
    shown = "\n".join([*lines, book_text(data)])
    assert not [code for code in codes if code in shown]
