"""Thi đua (/xephang) and the list of people who finished everything, on SQLite and PostgreSQL.

Every expected figure is counted again here in plain Python from the people the test made, never with
the SQL under test: shares, the order of the units, who is left out below the minimum size, the change
of share across the 30-day boundary, and the rows of the workbook.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.app import build_services
from bot.settings import Settings
from content.loader import load_catalog
from reports.honours_book import AVERAGE, CLAIMED, DATE_FORMAT, FIXED, HEADER_ROW, honours_workbook
from storage import access, figures, migrate, rankings
from storage.db import Database
from storage.models import AuditLog, LessonProgress, Membership, Organisation, Person, Village
from storage.rankings import Standing
from tests.support import Chat, FakeClock
from tests.test_dialog_figures import grant, register_viewer

NOW = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CORE = ("dien-thoai-thong-minh", "vneid", "dich-vu-cong", "thanh-toan-so")
EXTRA = ("tri-tue-nhan-tao", "an-ninh-mang")  # lessons of another course: "everything" is CORE + EXTRA
EVERYTHING = CORE + EXTRA
LONG_AGO = NOW - timedelta(days=300)


# --- a commune, made here ----------------------------------------------------------------------------

@dataclass
class Someone:
    id: int
    name: str | None
    village: int | None
    created: datetime
    consent: int
    memberships: dict[int, bool] = field(default_factory=dict)  # organisation -> confirmed
    # lesson -> (status, completed_at, best score)
    progress: dict[str, tuple[str, datetime | None, int | None]] = field(default_factory=dict)


def finished_by(person: Someone, lessons: tuple[str, ...], moment: datetime | None = None) -> bool:
    """Every lesson completed (at or before `moment`, and registered by then, when one is given)."""
    entries = [person.progress.get(lesson) for lesson in lessons]
    if not lessons or any(entry is None or entry[0] != "completed" for entry in entries):
        return False
    if moment is None:
        return True
    times = [entry[1] for entry in entries]  # type: ignore[index]
    return person.created <= moment and all(time is not None and time <= moment for time in times)


def build_commune(villages: dict[int, str], organisations: dict[int, str], size: int = 150,
                  seed: int = 20261201) -> list[Someone]:
    """People spread unevenly over the units, some registered within the last 30 days, finishing at
    times on both sides of the 30-day boundary (and some exactly on it)."""
    rng = random.Random(seed)
    village_ids = list(villages)
    weights = [len(village_ids) - index for index in range(len(village_ids))]  # the last ones are small
    first_names = ["An", "Bình", "Cường", "Dung", "Đức", "Hà", "Hùng", "Lan", "Ánh", "Yến", "Ân", "Ấm"]
    people = []
    for person_id in range(1, size + 1):
        recent = rng.random() < 0.25
        created = SINCE + timedelta(days=rng.uniform(0.1, 29)) if recent else LONG_AGO
        someone = Someone(
            id=person_id, name=rng.choice([f"Nguyễn Văn {rng.choice(first_names)} {person_id}", None]),
            village=rng.choice([*rng.choices(village_ids, weights), None]) if rng.random() < 0.95 else None,
            created=created, consent=rng.choice([1, 2, 2]),
        )
        for organisation in list(organisations)[:-1]:  # the last organisation has nobody
            if rng.random() < 0.45 - 0.08 * organisation:
                someone.memberships[organisation] = rng.random() < 0.6
        keen = rng.random()
        for lesson in EVERYTHING:
            if rng.random() > keen + (0.3 if lesson in CORE else 0):
                continue
            if rng.random() < 0.15:
                someone.progress[lesson] = ("started", None, None)
                continue
            when = rng.choice([
                created + timedelta(hours=rng.uniform(1, 24)),  # soon after registering
                SINCE,  # exactly 30 days ago: counts as done then
                SINCE + timedelta(seconds=1),  # a second later: done only now
                NOW - timedelta(days=rng.uniform(0, 5)),
            ])
            when = max(when, created)
            someone.progress[lesson] = ("completed", when, rng.choice([60, 70, 80, 90, 100]))
        people.append(someone)
    # A lesson completed with no time on record: finished now, since when unknown (not counted then).
    people[0].progress = {lesson: ("completed", LONG_AGO, 80) for lesson in EVERYTHING}
    people[0].progress[CORE[1]] = ("completed", None, 90)
    return people


async def store(db: Database, villages: dict[int, str], organisations: dict[int, str],
                people: list[Someone]) -> None:
    async with db.session() as session:
        session.add_all(Village(id=id_, name=name) for id_, name in villages.items())
        session.add_all(Organisation(id=id_, name=name) for id_, name in organisations.items())
        await session.flush()
        await store_people(session, people)


async def store_people(session, people: list[Someone], *, ids: bool = True) -> None:
    for person in people:
        row = Person(full_name=person.name, village_id=person.village, consent_version=person.consent,
                     consent_offered=2, consent_at=person.created, created_at=person.created)
        if ids:
            row.id = person.id
        session.add(row)
        await session.flush()
        person.id = row.id  # type: ignore[assignment]
        session.add_all(Membership(person_id=person.id, organisation_id=organisation, confirmed=confirmed)
                        for organisation, confirmed in person.memberships.items())
        session.add_all(LessonProgress(person_id=person.id, lesson_id=lesson, status=status, best_score=score,
                                       started_at=person.created, completed_at=when)
                        for lesson, (status, when, score) in person.progress.items())
    await session.flush()


# --- the rankings, counted here ----------------------------------------------------------------------

def vietnamese(name: str) -> tuple[object, ...]:
    return figures.text_order(name)


def expected_standings(people: list[Someone], units: dict[int, str], kind: str) -> list[Standing]:
    standings = []
    for unit_id, name in units.items():
        if kind == rankings.VILLAGE:
            members = [person for person in people if person.village == unit_id]
        else:
            members = [person for person in people if unit_id in person.memberships]
        before = [person for person in members if person.created <= SINCE]
        standings.append(Standing(
            kind=kind, unit_id=unit_id, name=name, people=len(members),
            finished=sum(finished_by(person, CORE) for person in members),
            people_before=len(before), finished_before=sum(finished_by(person, CORE, SINCE) for person in before),
        ))
    return standings


def share_of(finished: int, people: int) -> Fraction:
    return Fraction(finished, people) if people else Fraction(0)


def ranked(standings: list[Standing], minimum: int) -> list[Standing]:
    eligible = [s for s in standings if s.people >= minimum]
    return sorted(eligible, key=lambda s: (-share_of(s.finished, s.people), -s.finished, vietnamese(s.name),
                                           s.unit_id))


def most_improved(*rankeds: list[Standing]) -> list[Standing]:
    def change(s: Standing) -> Fraction:
        return share_of(s.finished, s.people) - share_of(s.finished_before, s.people_before)

    rising = [s for units in rankeds for s in units if change(s) > 0]
    return sorted(rising, key=lambda s: (-change(s), -share_of(s.finished, s.people), -s.finished,
                                         vietnamese(s.name), s.unit_id))


VILLAGES = {1: "Thôn Đông", 2: "Thôn Dương", 3: "Thôn Ấp", 4: "Thôn Bãi", 5: "Xóm Trại", 6: "Xóm Núi", 7: "Xóm Ven"}
ORGANISATIONS = {1: "Hội Nông dân", 2: "Đoàn Thanh niên", 3: "Hội Liên hiệp Phụ nữ", 4: "Hội Cựu chiến binh",
                 5: "Hội Người cao tuổi"}


@pytest.fixture
async def database(database_url: str):
    db = Database(database_url)
    await migrate.upgrade(db.engine)
    yield db
    await db.dispose()


@pytest.fixture
def commune() -> list[Someone]:
    people = build_commune(VILLAGES, ORGANISATIONS)
    # The cases this file is about must be in the data, whatever the generator drew.
    assert any(p.created > SINCE for p in people) and any(p.created <= SINCE for p in people)
    assert any(finished_by(p, CORE) and not finished_by(p, CORE, SINCE) for p in people if p.created <= SINCE)
    assert any(finished_by(p, CORE, SINCE) for p in people)
    assert any(finished_by(p, CORE) and not finished_by(p, EVERYTHING) for p in people)
    assert any(entry[1] == SINCE for p in people for entry in p.progress.values())
    return people


@pytest.mark.parametrize("minimum", [1, 10, 25])
async def test_rankings_equal_an_independent_count(database, commune, minimum):
    await store(database, VILLAGES, ORGANISATIONS, commune)
    got = await database.read(lambda c: rankings.rankings(c, CORE, NOW, minimum))
    villages = expected_standings(commune, VILLAGES, rankings.VILLAGE)
    organisations = expected_standings(commune, ORGANISATIONS, rankings.ORGANISATION)
    assert list(got.villages) == ranked(villages, minimum)
    assert list(got.organisations) == ranked(organisations, minimum)
    assert list(got.improved) == most_improved(ranked(villages, minimum), ranked(organisations, minimum))
    left_out = [s for s in villages + organisations if s.people < minimum]
    assert got.left_out == len(left_out)
    assert (got.moment, got.since, got.min_people) == (NOW, SINCE, minimum)
    if minimum == 10:  # the data reaches the cases: some units left out, some ranked, some rising
        assert left_out and got.villages and got.organisations and got.improved
        assert ORGANISATIONS[5] not in {s.name for s in got.organisations}  # nobody in it


async def test_todays_counts_are_the_ones_thongke_shows(database, commune):
    await store(database, VILLAGES, ORGANISATIONS, commune)
    got = await database.read(lambda c: rankings.rankings(c, CORE, NOW, 1))
    shown = await database.read(lambda c: figures.commune_figures(c, CORE, NOW))
    assert {(s.unit_id, s.people, s.finished) for s in got.villages} == {
        (row.village_id, row.people, row.finished_core) for row in shown.villages if row.people}
    assert {(s.unit_id, s.people, s.finished) for s in got.organisations} == {
        (row.organisation_id, row.people, row.finished_core) for row in shown.organisations if row.people}


def person(id_: int, village: int | None, *, created: datetime = LONG_AGO, done: list[datetime | None] | None = None,
           orgs: dict[int, bool] | None = None, name: str | None = None, consent: int = 2) -> Someone:
    """Someone whose core lessons were completed at `done` (one time per lesson; fewer: not finished)."""
    progress = {lesson: ("completed", when, 80) for lesson, when in zip(CORE, done or [], strict=False)}
    return Someone(id_, name or f"Người {id_}", village, created, consent, dict(orgs or {}), progress)


async def test_the_most_improved_across_the_30_day_boundary(database):
    villages = {1: "Thôn Ranh Giới", 2: "Thôn Cũ", 3: "Thôn Mới", 4: "Thôn Nhỏ"}
    organisations = {1: "Hội Hai Người"}
    early = NOW - timedelta(days=60)
    done_on_the_line = [early, early, early, SINCE]  # the last lesson exactly 30 days ago
    a_second_late = [early, early, early, SINCE + timedelta(seconds=1)]
    people = [
        person(1, 1, done=done_on_the_line, orgs={1: True}),  # finished then and now
        person(2, 1, done=a_second_late, orgs={1: False}),  # finished now only
        person(3, 1, done=[early, early]),  # half-way: never finished
        person(4, 1, created=SINCE + timedelta(days=1), done=[SINCE + timedelta(days=2)] * 4),  # new: now only
        person(5, 1, created=SINCE),  # registered exactly 30 days ago: in the earlier denominator
        person(6, 2, done=[early] * 4), person(7, 2, done=[early] * 4), person(8, 2, done=[early] * 4),
        person(9, 3, created=NOW - timedelta(days=3), done=[NOW - timedelta(days=1)] * 4),
        person(10, 3, created=NOW - timedelta(days=3), done=[NOW - timedelta(days=1)] * 4),
        person(11, 3, created=NOW - timedelta(days=3)),
        person(12, 4, created=NOW - timedelta(days=3), done=[NOW - timedelta(days=1)] * 4),  # too small
        person(13, 4, created=NOW - timedelta(days=3), done=[NOW - timedelta(days=1)] * 4),
    ]
    await store(database, villages, organisations, people)
    got = await database.read(lambda c: rankings.rankings(c, CORE, NOW, 3))
    boundary = Standing(rankings.VILLAGE, 1, "Thôn Ranh Giới", people=5, finished=3, people_before=4, finished_before=1)
    old = Standing(rankings.VILLAGE, 2, "Thôn Cũ", people=3, finished=3, people_before=3, finished_before=3)
    new = Standing(rankings.VILLAGE, 3, "Thôn Mới", people=3, finished=2, people_before=0, finished_before=0)
    assert got.villages == (old, new, boundary)  # 100%, 67%, 60%
    assert got.organisations == ()  # two members: below the minimum of 3
    assert got.improved == (new, boundary)  # +67 points (from nobody), +35; Thôn Cũ did not change
    assert got.left_out == 2  # Thôn Nhỏ and Hội Hai Người
    assert boundary.share_before == Fraction(1, 4) and new.share_before == 0

    # A day later the line has moved: the lesson done a second after the old line is now before the new
    # one, and the person registered a day after the old line is now in the earlier denominator (but
    # finished only after the new line).
    later = await database.read(lambda c: rankings.rankings(c, CORE, NOW + timedelta(days=1), 3))
    assert [(s.name, s.finished_before, s.people_before) for s in later.villages] == [
        ("Thôn Cũ", 3, 3), ("Thôn Mới", 0, 0), ("Thôn Ranh Giới", 2, 5)]


async def test_ties_go_to_the_larger_count_then_the_vietnamese_name(database):
    villages = {1: "Thôn Bãi", 2: "Thôn Ấp", 3: "Thôn Cả", 4: "Thôn Đá", 5: "Thôn Dốc"}
    done = [LONG_AGO] * 4
    people = []
    for village, (finished, total) in {1: (1, 2), 2: (1, 2), 3: (2, 4), 4: (1, 1), 5: (1, 1)}.items():
        for number in range(total):
            people.append(person(village * 10 + number, village, done=done if number < finished else None))
    await store(database, villages, {}, people)
    got = await database.read(lambda c: rankings.rankings(c, CORE, NOW, 1))
    # 100%: Dốc before Đá (d before đ); 50%: Cả (2 of 4) first, then Ấp before Bãi (a ă â b, not by code point)
    assert [s.name for s in got.villages] == ["Thôn Dốc", "Thôn Đá", "Thôn Cả", "Thôn Ấp", "Thôn Bãi"]


async def test_without_a_core_course_nobody_has_finished(database, commune):
    await store(database, VILLAGES, ORGANISATIONS, commune)
    got = await database.read(lambda c: rankings.rankings(c, (), NOW, 1))
    assert got.villages and all(s.finished == 0 and s.finished_before == 0 for s in got.villages)
    assert got.improved == ()
    honours = await database.read(lambda c: rankings.finished_everything(c, ()))
    assert honours.rows == () and honours.hidden == 0


# --- the people who finished everything --------------------------------------------------------------

def expected_honours(people: list[Someone], lessons: tuple[str, ...], organisations: dict[int, str],
                     villages: dict[int, str]) -> tuple[dict[int, tuple[object, ...]], int]:
    """person id -> (name, village, organisations, day finished, scores, average); and how many hidden."""
    named, hidden = {}, 0
    for someone in people:
        if not finished_by(someone, lessons):
            continue
        if someone.consent < 2:
            hidden += 1
            continue
        times = [someone.progress[lesson][1] for lesson in lessons]
        scores = tuple(someone.progress[lesson][2] for lesson in lessons)
        known = [score for score in scores if score is not None]
        orgs = sorted(((organisations[o], c) for o, c in someone.memberships.items()),
                      key=lambda item: figures.text_order(item[0]))
        named[someone.id] = (
            someone.name, villages.get(someone.village) if someone.village else None, tuple(orgs),
            max(time for time in times if time is not None).astimezone(ZONE).date() if all(times) else None,
            scores, sum(known) / len(known) if known else None,
        )
    return named, hidden


async def test_finished_everything_names_only_people_who_agreed(database, commune):
    await store(database, VILLAGES, ORGANISATIONS, commune)
    got = await database.read(lambda c: rankings.finished_everything(c, EVERYTHING, ZONE))
    expected, hidden = expected_honours(commune, EVERYTHING, ORGANISATIONS, VILLAGES)
    assert expected and hidden  # both cases are in the data
    assert got.lessons == EVERYTHING and got.hidden == hidden
    assert {row.person_id: (row.name, row.village, row.organisations,
                            row.finished_at.date() if row.finished_at else None, row.scores, row.average)
            for row in got.rows} == expected
    assert [(figures.name_order(row.name), row.person_id) for row in got.rows] == sorted(
        (figures.name_order(row.name), row.person_id) for row in got.rows)
    assert all(row.finished_at is None or row.finished_at.utcoffset() == timedelta(hours=7) for row in got.rows)
    # Finishing the core course is not finishing everything.
    core_only = await database.read(lambda c: rankings.finished_everything(c, CORE, ZONE))
    assert len(core_only.rows) + core_only.hidden > len(got.rows) + got.hidden


def read_book(data: bytes) -> tuple[list[list[object]], object]:
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    return [list(row) for row in sheet.iter_rows(values_only=True)], sheet


def check_book(data: bytes, expected: dict[int, tuple[object, ...]], hidden: int, titles: list[str],
               day: str) -> None:
    rows, sheet = read_book(data)
    assert day in rows[0][0] and "học xong tất cả các bài" in rows[0][0]
    assert "khen thưởng" in rows[1][0]
    assert (f"{hidden} người khác cũng đã học xong" in rows[2][0]) if hidden else "mọi người" in rows[2][0]
    assert rows[HEADER_ROW - 1] == [*FIXED, *titles, AVERAGE]
    assert sheet.freeze_panes == f"C{HEADER_ROW + 1}"
    body = rows[HEADER_ROW:]
    assert [row[0] for row in body] == list(range(1, len(expected) + 1))
    got = {}
    for row in body:
        assert all(isinstance(score, int) or score is None for score in row[5:-1])  # numbers stay numbers
        orgs = tuple(sorted(row[3].split("; "))) if row[3] else ()
        day_done = row[4].date() if row[4] is not None else None
        got[(row[1], row[2], orgs, day_done, tuple(row[5:-1]))] = row[-1]
    want = {}
    for name, village, orgs, day_done, scores, average in expected.values():
        labels = tuple(sorted(org + ("" if confirmed else CLAIMED) for org, confirmed in orgs))
        want[(name or "(chưa ghi tên)", village, labels, day_done, scores)] = average
    assert got.keys() == want.keys()
    for key, average in want.items():
        assert got[key] == pytest.approx(average)
    assert sheet.cell(row=HEADER_ROW + 1, column=5).number_format == DATE_FORMAT or not body


async def test_the_workbook_holds_the_list(database, commune):
    await store(database, VILLAGES, ORGANISATIONS, commune)
    honours = await database.read(lambda c: rankings.finished_everything(c, EVERYTHING, ZONE))
    titles = [f"Bài {number}" for number in range(1, len(EVERYTHING) + 1)]
    data = honours_workbook(honours, titles, commune="xã Cát Thành", day=NOW.astimezone(ZONE).date())
    expected, hidden = expected_honours(commune, EVERYTHING, ORGANISATIONS, VILLAGES)
    check_book(data, expected, hidden, titles, "01/12/2026")
    with pytest.raises(ValueError):
        honours_workbook(honours, titles[:-1], commune="xã Cát Thành", day=NOW.date())


def test_a_typed_name_stays_text_in_the_workbook():
    honours = rankings.HonoursList(lessons=("a",), rows=(
        rankings.Honoured(1, "=HYPERLINK(\"x\")", None, (), None, (None,)),), hidden=0)
    rows, sheet = read_book(honours_workbook(honours, ["Bài a"], commune="xã", day=NOW.date()))
    assert rows[HEADER_ROW][1] == "=HYPERLINK(\"x\")" and sheet.cell(row=HEADER_ROW + 1, column=2).data_type == "s"
    assert rows[HEADER_ROW][-1] is None  # no score, no average


# --- /xephang in chat -----------------------------------------------------------------------------------

@pytest.fixture
def content_two_courses(content_copy: Path) -> Path:
    """The shipped lessons as two courses: the core course of four lessons, and the rest."""
    lessons = list(load_catalog(content_copy).lessons)
    assert set(CORE) | set(EXTRA) <= set(lessons)
    core = "\n".join(f"  - {lesson}" for lesson in CORE)
    rest = "\n".join(f"  - {lesson}" for lesson in lessons if lesson not in CORE)
    for shipped in (content_copy / "courses").glob("*.yaml"):
        shipped.unlink()
    (content_copy / "courses" / "co-ban.yaml").write_text(
        f"id: co-ban\ntitle: Khóa kỹ năng số cơ bản\ncore: true\nlessons:\n{core}\n", encoding="utf-8")
    (content_copy / "courses" / "nang-cao.yaml").write_text(
        f"id: nang-cao\ntitle: Kỹ năng số nâng cao\nlessons:\n{rest}\n", encoding="utf-8")
    return content_copy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def services(database_url: str, content_two_courses: Path, clock: FakeClock):
    settings = Settings(_env_file=None, database_url=database_url, content_dir=content_two_courses)  # type: ignore[call-arg]
    built = await build_services(settings, clock=clock, rng=random.Random(7))
    yield built
    await built.database.dispose()


async def seed_chat_commune(services) -> tuple[list[Someone], dict[int, str], dict[int, str]]:
    """The commune of the seeded directory (Thôn 1-10, the plan's organisations), with people in it."""
    async with services.database.session() as session:
        villages = {v.id: v.name for v in (await session.exec(select(Village))).all()}
        organisations = {o.id: o.name for o in (await session.exec(select(Organisation))).all()}
    everything = tuple(lesson.id for lesson in services.catalog.ordered_lessons())
    assert tuple(services.catalog.core_course.lessons) == CORE and len(everything) > len(CORE)
    people = build_commune(dict(list(villages.items())[:6]), dict(list(organisations.items())[:6]), size=140)
    rng = random.Random(5)
    for someone in people:  # the rest of the catalog, for those who finished the core course
        if finished_by(someone, CORE) and rng.random() < 0.6:
            for lesson in everything[len(CORE):]:
                someone.progress[lesson] = ("completed", NOW - timedelta(days=rng.uniform(0, 40)), rng.randint(50, 100))
    async with services.database.session() as session:
        await store_people(session, people, ids=False)
    return people, villages, organisations


def chat_share(finished: int, people: int) -> str:
    value = 100 * finished / people
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%".replace(".", ",")


def section(answer: str, start: str, end: str | None) -> list[str]:
    text = answer.split(start, 1)[1]
    text = text.split(end, 1)[0] if end else text
    return [line for line in text.strip().splitlines() if line]


def expected_rank_lines(units: list[Standing]) -> list[str]:
    lines = [f"{rank}. {s.name}: {s.finished}/{s.people} ({chat_share(s.finished, s.people)})"
             for rank, s in enumerate(units[:5], start=1)]
    return lines + ([f"… và {len(units) - 5} đơn vị khác"] if len(units) > 5 else [])


async def test_a_resident_sees_the_rankings_and_no_names(dispatcher, services):
    people, villages, organisations = await seed_chat_commune(services)
    resident = Chat(dispatcher, user="resident")
    await register_viewer(resident, "Người Dân Thường")
    answer = await resident.say("/xephang")

    village_units = ranked(expected_standings(people, villages, rankings.VILLAGE), 10)
    org_units = ranked(expected_standings(people, organisations, rankings.ORGANISATION), 10)
    assert village_units and org_units
    assert "01/12/2026" in answer and "từ 10 người trở lên" in answer
    assert section(answer, "Tổ chức:", "Thôn/xóm:") == expected_rank_lines(org_units)
    assert section(answer, "Thôn/xóm:", "📈") == expected_rank_lines(village_units)
    improved = most_improved(village_units, org_units)
    assert improved
    lines = [
        f"• {s.name}: từ {s.finished_before}/{s.people_before} "
        f"({chat_share(s.finished_before, s.people_before) if s.people_before else '0%'}) "
        f"lên {s.finished}/{s.people} ({chat_share(s.finished, s.people)})"
        for s in improved[:3]
    ]
    left_out = len(villages) + len(organisations) - len(village_units) - len(org_units)
    assert section(answer, "Tiến bộ nhất 30 ngày qua:", "\n\n") == lines
    assert f"{left_out} đơn vị chưa đủ 10 người nên chưa xếp hạng" in answer
    # Unit names only: nobody's name, and no list to download.
    assert not any(someone.name and someone.name in answer for someone in people)
    assert "Người Dân Thường" not in answer
    assert not any("Danh sách" in label for label in resident.labels)
    assert resident.replies[-1].attachment is None
    assert "/xephang" in await resident.say("/trogiup")


async def test_a_guest_is_asked_to_register(dispatcher, services):
    guest = Chat(dispatcher, user="guest")
    await guest.say("/start")
    answer = await guest.say("/xephang")
    assert "dành cho người đã đăng ký" in answer and "Tổ chức:" not in answer


async def test_only_staff_get_the_list_and_a_forged_press_is_refused_and_audited(dispatcher, services):
    people, villages, organisations = await seed_chat_commune(services)
    leader = Chat(dispatcher, user="leader")
    await register_viewer(leader, "Trần Văn Lãnh")
    await grant(services, leader, "leader", org=organisations[min(organisations)])
    resident = Chat(dispatcher, user="resident")
    await register_viewer(resident, "Người Dân Thường")
    staff = Chat(dispatcher, user="staff")
    await register_viewer(staff, "Đỗ Văn Xã")
    await grant(services, staff, "staff")

    answer = await leader.say("/xephang")
    assert "Tổ chức:" in answer and not any("Danh sách" in label for label in leader.labels)
    for chat in (leader, resident):
        answer = await chat.press("xhds")  # a button never shown to them
        assert "chỉ dành cho cán bộ xã" in answer and chat.replies[-1].attachment is None
    async with services.database.session() as session:
        refused = (await session.exec(select(AuditLog).where(AuditLog.action == "honours_export"))).all()
        ids = {p.full_name: p.id for p in (await session.exec(select(Person))).all()}
    assert [(row.actor, row.outcome) for row in refused] == [
        (ids["Trần Văn Lãnh"], "refused"), (ids["Người Dân Thường"], "refused")]

    answer = await staff.say("/xephang")
    assert "Tổ chức:" in answer and not any(someone.name and someone.name in answer for someone in people)
    await staff.choose("Danh sách hoàn thành (Excel)")
    attachment = staff.replies[-1].attachment
    assert attachment is not None and attachment.file_name.endswith(".xlsx")
    everything = tuple(lesson.id for lesson in services.catalog.ordered_lessons())
    titles = [lesson.title for lesson in services.catalog.ordered_lessons()]
    village_names = {id_: name for id_, name in villages.items()}
    expected, hidden = expected_honours(people, everything, organisations, village_names)
    assert expected and hidden
    check_book(attachment.data, expected, hidden, titles, "01/12/2026")
    assert f"{hidden} người khác cũng đã học xong" in staff.transcript
    async with services.database.session() as session:
        done = (await session.exec(select(AuditLog).where(AuditLog.action == "honours_export",
                                                          AuditLog.outcome == "ok"))).all()
    assert [row.actor for row in done] == [ids["Đỗ Văn Xã"]]


async def test_a_role_revoked_between_the_read_and_the_turn_gets_no_list(dispatcher, services, monkeypatch):
    """The turn checks access again after the prefetch: a list read for staff is not shown to a non-staff."""
    from handlers import rankings as handler

    staff = Chat(dispatcher, user="staff")
    await register_viewer(staff, "Đỗ Văn Xã")
    await grant(services, staff, "staff")
    original = handler.prefetch_honours

    async def revoke_after_reading(*args):
        prepared = await original(*args)
        async with services.database.session() as session:
            person = (await session.exec(select(Person).where(Person.full_name == "Đỗ Văn Xã"))).one()
            for role in await access.active_grants(session, person.id):  # type: ignore[arg-type]
                role.revoked_at = NOW
                session.add(role)
        return prepared

    monkeypatch.setitem(dispatcher.registry.prefetchers, "honours", revoke_after_reading)
    answer = await staff.press("xhds")
    assert "chỉ dành cho cán bộ xã" in answer and staff.replies[-1].attachment is None


async def test_the_list_is_built_in_another_process_as_hocvuso_run_does(sqlite_url, content_two_courses, clock):
    """With the process renderer, what the prefetch hands it must cross a process boundary."""
    from bot.app import process_renderer
    from handlers.dispatcher import Dispatcher

    renderer = process_renderer()
    settings = Settings(_env_file=None, database_url=sqlite_url, content_dir=content_two_courses)  # type: ignore[call-arg]
    services = await build_services(settings, clock=clock, rng=random.Random(3), renderer=renderer)
    try:
        await seed_chat_commune(services)
        staff = Chat(Dispatcher(services), user="staff")
        await register_viewer(staff, "Đỗ Văn Xã")
        await grant(services, staff, "staff")
        await staff.press("xhds")
        assert staff.replies[-1].attachment.file_name.endswith(".xlsx")
        rows, _sheet = read_book(staff.replies[-1].attachment.data)
        assert len(rows) > HEADER_ROW
    finally:
        renderer.shutdown()
        await services.database.dispose()


def test_the_minimum_size_is_a_validated_setting(monkeypatch):
    from bot.settings import SettingsError, load_settings

    assert Settings(_env_file=None).ranking_min_people == 10  # type: ignore[call-arg]
    monkeypatch.setenv("HOCVUSO_RANKING_MIN_PEOPLE", "0")
    with pytest.raises(SettingsError, match=r"HOCVUSO_RANKING_MIN_PEOPLE.*từ 1 đến 10000"):
        load_settings(_env_file=None)
    monkeypatch.setenv("HOCVUSO_RANKING_MIN_PEOPLE", "25")
    assert load_settings(_env_file=None).ranking_min_people == 25
    from bot.app import handler_config

    assert handler_config(load_settings(_env_file=None)).ranking_min_people == 25


def test_the_rankings_text_shows_five_of_each_and_says_what_is_left():
    from handlers.rankings import rankings_text

    def unit(number: int, finished: int, people: int, before: int = 0, people_before: int = 0) -> Standing:
        return Standing(rankings.VILLAGE, number, f"Thôn {number}", people, finished, people_before, before)

    villages = tuple(unit(number, 20 - number, 20) for number in range(1, 8))
    counted = rankings.Rankings(moment=NOW, since=SINCE, min_people=12, organisations=(), villages=villages,
                                improved=(), left_out=0)
    text = rankings_text(counted, NOW.date())
    assert section(text, "Tổ chức:", "Thôn/xóm:") == ["Chưa có đơn vị nào đủ 12 người."]
    assert section(text, "Thôn/xóm:", "📈") == [
        "1. Thôn 1: 19/20 (95%)", "2. Thôn 2: 18/20 (90%)", "3. Thôn 3: 17/20 (85%)", "4. Thôn 4: 16/20 (80%)",
        "5. Thôn 5: 15/20 (75%)", "… và 2 đơn vị khác"]
    assert section(text, "📈 Tiến bộ nhất 30 ngày qua:", None) == ["Chưa có đơn vị nào tăng tỉ lệ."]
    assert "chưa xếp hạng" not in text and "12 người trở lên" in text

    improved = (unit(8, 3, 12), unit(9, 1, 40, 0, 30))  # from nobody yet; a share under 10%
    counted = rankings.Rankings(NOW, SINCE, 12, (), villages, improved, left_out=4)
    text = rankings_text(counted, NOW.date())
    assert section(text, "📈 Tiến bộ nhất 30 ngày qua:", "\n\n") == [
        "• Thôn 8: từ 0/0 (0%) lên 3/12 (25%)", "• Thôn 9: từ 0/30 (0%) lên 1/40 (2,5%)"]
    assert text.endswith("4 đơn vị chưa đủ 12 người nên chưa xếp hạng.")


async def test_the_rankings_are_counted_once_a_minute_whoever_asks(dispatcher, services, monkeypatch):
    import handlers.rankings

    counted = []
    real = rankings.rankings

    def counting(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(handlers.rankings.rankings, "rankings", counting)
    first, second = Chat(dispatcher, user="mot"), Chat(dispatcher, user="hai")
    await register_viewer(first, "Người Một")
    await register_viewer(second, "Người Hai")
    for chat in (first, second, first, first):
        assert "🏆 Thi đua" in await chat.say("/xephang")
    assert len(counted) == 1  # a crowd, or one chat pressing again and again, costs one count
    services.clock.advance(minutes=2)
    assert "🏆 Thi đua" in await second.say("/xephang")
    assert len(counted) == 2
