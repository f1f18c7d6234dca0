"""The figures leaders see, their charts and the member workbook, on SQLite and PostgreSQL.

A small commune is generated from a fixed seed; every expected figure is counted again here in plain
Python from the generated people, never with the SQL under test.
"""

from __future__ import annotations

import random
import struct
import unicodedata
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from openpyxl import load_workbook

from reports import charts
from reports.members_book import ASSISTED, CLAIMED, COLUMNS, CONFIRMED, NO_NAME, SHEET, STATUS, members_workbook
from storage import figures, migrate
from storage.db import Database
from storage.figures import (
    CommuneFigures,
    LessonRate,
    MemberList,
    MemberProgress,
    OrganisationRow,
    UnitFigures,
    VillageRow,
)
from storage.models import Activity, Household, LessonProgress, Membership, Organisation, Person, QuizAttempt, Village

NOW = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CORE = ("dien-thoai-thong-minh", "vneid", "dich-vu-cong", "thanh-toan-so")
EXTRA = "tri-tue-nhan-tao"  # a lesson outside the core course
VILLAGES = {1: "Thôn Đông Đoài", 2: "Thôn Bắc Sơn", 3: "Xóm Trại", 4: "Thôn Ải"}  # nobody lives in Thôn Ải
ORGANISATIONS = {1: "Hội Liên hiệp Phụ nữ", 2: "Đoàn Thanh niên", 3: "Hội Nông dân", 4: "Hội Cựu chiến binh"}
ORGANISATION_ORDER = [2, 4, 1, 3]  # Vietnamese order: Đ after D, before H; C before L before N
HOUSEHOLDS = {**{number: [1, 2, 3, None][number % 4] for number in range(1, 14)}, 14: 4}  # 14: the only one in Thôn Ải
NAMES = [
    "Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Minh Đức", "Vũ Thị Hà",
    "Đặng Văn Hùng", "Bùi Thị Lan", "Đỗ Minh Ánh", "Ngô Thị Yến", "Dương Văn Ân", "Lý Thị Ấm",
]


# --- the commune -----------------------------------------------------------------------------------

@dataclass
class Try:
    lesson: str
    kind: str
    started: datetime
    finished: datetime | None
    score: int | None
    passed: bool | None


@dataclass
class Someone:
    id: int
    name: str | None
    village: int | None
    household: int | None
    consent: int
    vneid: str | None
    memberships: dict[int, bool] = field(default_factory=dict)  # organisation -> confirmed
    progress: dict[str, str] = field(default_factory=dict)  # lesson -> status
    tries: list[Try] = field(default_factory=list)  # in the order they are inserted, not their times
    activity: list[datetime] = field(default_factory=list)


def build_commune(seed: int = 20261201, size: int = 60) -> list[Someone]:
    rng = random.Random(seed)
    moments = iter(range(1, 10_000))  # distinct minutes, so no two tries finish at the same moment
    people = []
    for person_id in range(1, size + 1):
        consent = rng.choice([1, 2, 2])
        someone = Someone(
            id=person_id, name=rng.choice([*NAMES, None]), village=rng.choice([1, 2, 3, None]),
            household=rng.choice([*HOUSEHOLDS, None]), consent=consent, vneid=rng.choice(["yes", "no", None]),
        )
        for organisation in (1, 2, 3):  # Hội Cựu chiến binh (4) has no members
            if rng.random() < 0.4:
                someone.memberships[organisation] = rng.random() < 0.5
        diligent = rng.random() < 0.35
        for lesson in (*CORE, EXTRA):
            status = "completed" if diligent and lesson in CORE else rng.choice([None, "started", "completed"])
            if status:
                someone.progress[lesson] = status
            for _ in range(rng.choice([0, 0, 1, 2, 3])):
                finished = NOW - timedelta(days=rng.randint(1, 90), minutes=next(moments))
                if rng.random() < 0.8:
                    score = rng.randint(0, 100)
                    someone.tries.append(Try(lesson, "lesson", finished - timedelta(minutes=5), finished, score,
                                             score >= 70))
                else:  # abandoned: never finished
                    someone.tries.append(Try(lesson, "lesson", finished, None, None, None))
            if rng.random() < 0.2:
                finished = NOW - timedelta(days=120, minutes=next(moments))  # before any lesson try
                someone.tries.append(Try(lesson, "review", finished, finished, 20, False))
        rng.shuffle(someone.tries)
        someone.activity = [NOW - timedelta(days=rng.uniform(0, 60)) for _ in range(rng.choice([0, 1, 2, 3]))]
        people.append(someone)
    people.extend(_scripted(size))
    return people


def _scripted(size: int) -> list[Someone]:
    """People whose cases the random ones might miss."""
    early = NOW - timedelta(days=200)
    mai = Someone(size + 1, "Nguyễn Thị Mai", 1, 14, 2, "yes", {1: True, 2: False},
                  dict.fromkeys(CORE, "completed"),
                  [Try("vneid", "lesson", early + timedelta(days=9), early + timedelta(days=9, minutes=3), 90, True),
                   Try("vneid", "review", early, early + timedelta(minutes=1), 100, True),
                   Try("vneid", "lesson", early + timedelta(days=1), None, None, None),
                   Try("vneid", "lesson", early + timedelta(days=2), early + timedelta(days=2, minutes=4), 40, False)],
                  [NOW - timedelta(days=30)])  # exactly 30 days ago still counts
    hidden = Someone(size + 2, "Người Ẩn Danh", None, None, 1, None, {3: True}, {"vneid": "started"}, [],
                     [NOW - timedelta(days=30, seconds=1)])
    named_without_name = Someone(size + 3, None, 2, 1, 2, "no", {}, dict.fromkeys(CORE, "completed"), [], [])
    return [mai, hidden, named_without_name]


@pytest.fixture(scope="module")
def commune() -> list[Someone]:
    people = build_commune()
    orgs_per_person = Counter(len(person.memberships) for person in people)
    tries = [attempt for person in people for attempt in person.tries]
    # The cases this file is about must be in the data, whatever the generator drew.
    assert orgs_per_person[0] and max(orgs_per_person) >= 2  # someone in no organisation, someone in two
    assert {1, 2} <= {person.consent for person in people}
    assert any(_finished(person) for person in people) and not all(_finished(person) for person in people)
    assert any(attempt.kind == "review" for attempt in tries) and any(attempt.finished is None for attempt in tries)
    assert any(len([t for t in person.tries if t.kind == "lesson" and t.finished]) > 1 for person in people)
    return people


async def _store(db: Database, people: list[Someone]) -> None:
    async with db.session() as session:
        session.add_all(Village(id=id_, name=name) for id_, name in VILLAGES.items())
        session.add_all(Organisation(id=id_, name=name) for id_, name in ORGANISATIONS.items())
        await session.flush()  # the unit of work orders tables by relationships, and these have none
        session.add_all(Household(id=id_, code=f"HO{id_}", village_id=village, created_at=NOW)
                        for id_, village in HOUSEHOLDS.items())
        await session.flush()
        session.add_all(
            Person(id=person.id, full_name=person.name, village_id=person.village, household_id=person.household,
                   consent_version=person.consent, consent_offered=2, vneid_level2=person.vneid,
                   consent_at=NOW - timedelta(days=300), created_at=NOW - timedelta(days=300))
            for person in people
        )
        await session.flush()
        for person in people:
            session.add_all(Membership(person_id=person.id, organisation_id=organisation, confirmed=confirmed)
                            for organisation, confirmed in person.memberships.items())
            session.add_all(LessonProgress(person_id=person.id, lesson_id=lesson, status=status,
                                           started_at=NOW - timedelta(days=100),
                                           completed_at=NOW - timedelta(days=1) if status == "completed" else None)
                            for lesson, status in person.progress.items())
            session.add_all(QuizAttempt(person_id=person.id, lesson_id=t.lesson, kind=t.kind, started_at=t.started,
                                        finished_at=t.finished, score=t.score, passed=t.passed, total=5)
                            for t in person.tries)
            session.add_all(Activity(person_id=person.id, kind="lesson_opened", at=at) for at in person.activity)
        # An erased person's activity stays without a person: it belongs to no unit.
        session.add(Activity(person_id=None, kind="lesson_opened", at=NOW - timedelta(days=1)))


@pytest.fixture
async def database(database_url: str, commune: list[Someone]):
    db = Database(database_url)
    await migrate.upgrade(db.engine)
    await _store(db, commune)
    yield db
    await db.dispose()


# --- the same figures, counted in plain Python ------------------------------------------------------

def _finished(person: Someone) -> bool:
    return all(person.progress.get(lesson) == "completed" for lesson in CORE)


def _active(person: Someone) -> bool:
    return any(at >= NOW - timedelta(days=30) for at in person.activity)


def _lesson_tries(person: Someone) -> list[Try]:
    return [t for t in person.tries if t.kind == "lesson" and t.finished is not None]


def _hardest(people: list[Someone]) -> tuple[LessonRate, ...]:
    rates = []
    for lesson in CORE:
        firsts = [min((t for t in _lesson_tries(person) if t.lesson == lesson), key=lambda t: t.finished)
                  for person in people if any(t.lesson == lesson for t in _lesson_tries(person))]
        if firsts:
            rates.append(LessonRate(lesson, len(firsts), sum(bool(t.passed) for t in firsts)))
    rates.sort(key=lambda rate: (Fraction(rate.first_try_passed, rate.first_tries), CORE.index(rate.lesson_id)))
    return tuple(rates[:3])


def _households(people: list[Someone], households: list[int]) -> tuple[int, int]:
    reached = {person.household for person in people if _finished(person)}
    return len(households), len([household for household in households if household in reached])


def expected_unit(people: list[Someone], commune: list[Someone], *, organisation: int | None = None,
                  households: list[int] | None = None) -> UnitFigures:
    """The figures of `people`; a household is reached by a member of the whole `commune`, wherever
    they live."""
    scores = [t.score for person in people for t in _lesson_tries(person) if t.score is not None]
    known, reached = _households(commune, households) if households is not None else (None, None)
    return UnitFigures(
        people=len(people),
        confirmed=None if organisation is None else sum(person.memberships[organisation] for person in people),
        active_30_days=sum(_active(person) for person in people),
        finished_core=sum(_finished(person) for person in people),
        vneid_level2=sum(person.vneid == "yes" for person in people),
        average_score=sum(scores) / len(scores) if scores else None,
        hardest=_hardest(people),
        households_known=known,
        households_reached=reached,
    )


def expected_members(people: list[Someone], organisation: int | None = None) -> tuple[dict[int, MemberProgress], int]:
    named = {}
    for person in people:
        if person.consent < 2:
            continue
        completed = [lesson for lesson, status in person.progress.items() if status == "completed"]
        named[person.id] = MemberProgress(
            person_id=person.id, name=person.name, village=VILLAGES.get(person.village),  # type: ignore[arg-type]
            lessons_finished=len(completed), core_finished=len(set(completed) & set(CORE)),
            finished_core=_finished(person),
            last_active=max(person.activity).astimezone(ZONE) if person.activity else None,
            confirmed=None if organisation is None else person.memberships[organisation],
        )
    return named, sum(person.consent < 2 for person in people)


def members_of(commune: list[Someone], organisation: int) -> list[Someone]:
    return [person for person in commune if organisation in person.memberships]


def _assert_list(members: MemberList, expected: dict[int, MemberProgress], hidden: int) -> None:
    assert {row.person_id: row for row in members.rows} == expected
    assert len(members.rows) == len(expected)
    assert members.hidden == hidden and members.core_total == len(CORE)
    assert all(row.last_active is None or row.last_active.utcoffset() == timedelta(hours=7) for row in members.rows)
    keys = [(figures.name_order(row.name), row.person_id) for row in members.rows]
    assert keys == sorted(keys)


# --- figures ---------------------------------------------------------------------------------------

async def test_organisation_figures_count_confirmed_and_claimed_members(database, commune):
    for organisation in ORGANISATIONS:
        got = await database.read(lambda c, o=organisation: figures.organisation_figures(c, o, CORE, NOW))
        assert got == expected_unit(members_of(commune, organisation), commune, organisation=organisation)
    women = await database.read(lambda c: figures.organisation_figures(c, 1, CORE, NOW))
    assert women.people > women.confirmed > 0


async def test_village_figures_count_residents_and_the_village_households(database, commune):
    for village in VILLAGES:
        got = await database.read(lambda c, v=village: figures.village_figures(c, v, CORE, NOW))
        residents = [person for person in commune if person.village == village]
        households = [id_ for id_, home in HOUSEHOLDS.items() if home == village]
        assert got == expected_unit(residents, commune, households=households), village
    empty = await database.read(lambda c: figures.village_figures(c, 4, CORE, NOW))
    assert empty.people == 0 and empty.average_score is None and empty.hardest == ()
    assert empty.households_reached == 1  # household 14 is in Thôn Ải; Mai, who finished, lives in Thôn Đông Đoài


async def test_commune_figures_total_everyone_and_list_every_unit(database, commune):
    got = await database.read(lambda c: figures.commune_figures(c, CORE, NOW))
    assert got.totals == expected_unit(commune, commune, households=list(HOUSEHOLDS))
    assert got.organisations == tuple(
        OrganisationRow(id_, ORGANISATIONS[id_], len(members_of(commune, id_)),
                        sum(person.memberships[id_] for person in members_of(commune, id_)),
                        sum(_finished(person) for person in members_of(commune, id_)))
        for id_ in ORGANISATION_ORDER
    )
    villages = []
    for id_, name in VILLAGES.items():
        residents = [person for person in commune if person.village == id_]
        known, reached = _households(commune, [household for household, home in HOUSEHOLDS.items() if home == id_])
        villages.append(VillageRow(id_, name, len(residents), sum(_finished(p) for p in residents), known, reached))
    assert got.villages == tuple(villages)
    assert got.organisations[1] == OrganisationRow(4, "Hội Cựu chiến binh", 0, 0, 0)


async def test_the_first_finished_lesson_try_is_the_one_counted(database, commune):
    mai = commune[-3]
    alone = [mai]
    assert _hardest(alone) == (LessonRate("vneid", 1, 0),)  # failed first, passed later; the review passed
    got = await database.read(lambda c: figures.organisation_figures(c, 1, CORE, NOW))
    assert got.hardest == _hardest(members_of(commune, 1))


async def test_without_a_core_course_nobody_has_finished_it(database):
    got = await database.read(lambda c: figures.organisation_figures(c, 1, [], NOW))
    assert got.finished_core == 0 and got.hardest == ()
    commune = await database.read(lambda c: figures.commune_figures(c, [], NOW))
    assert commune.totals.finished_core == 0 and commune.totals.households_reached == 0


async def test_member_rows_name_only_people_who_agreed(database, commune):
    for organisation in ORGANISATIONS:
        got = await database.read(lambda c, o=organisation: figures.member_rows(
            c, organisation_id=o, core_lessons=CORE, zone=ZONE))
        _assert_list(got, *expected_members(members_of(commune, organisation), organisation))
    for village in VILLAGES:
        got = await database.read(lambda c, v=village: figures.member_rows(
            c, village_id=v, core_lessons=CORE, zone=ZONE))
        _assert_list(got, *expected_members([person for person in commune if person.village == village]))
    hidden_person = commune[-2]
    claimed = await database.read(lambda c: figures.member_rows(c, organisation_id=3, core_lessons=CORE, zone=ZONE))
    assert hidden_person.id not in {row.person_id for row in claimed.rows} and claimed.hidden >= 1


async def test_household_progress_names_only_people_who_agreed(database, commune):
    for household in HOUSEHOLDS:
        got = await database.read(lambda c, h=household: figures.household_progress(c, h, CORE, ZONE))
        listed = await database.read(lambda c, h=household: figures.member_rows(
            c, household_id=h, core_lessons=CORE, zone=ZONE))
        _assert_list(got, *expected_members([person for person in commune if person.household == household]))
        assert listed == got


async def test_member_rows_needs_exactly_one_unit(database):
    with pytest.raises(ValueError, match="exactly one"):
        await database.read(lambda c: figures.member_rows(c, organisation_id=1, village_id=1, core_lessons=CORE,
                                                          zone=ZONE))


def test_names_are_in_vietnamese_order_by_given_name():
    names = ["Trần Văn Bình", "Lê Thị Ánh", "Nguyễn Văn An", "Phạm Đức", "Vũ Thị Dung", None, "Hoàng Ân", "Ngô Á"]
    assert sorted(names, key=figures.name_order) == [
        "Ngô Á", "Nguyễn Văn An", "Lê Thị Ánh", "Hoàng Ân", "Trần Văn Bình", "Vũ Thị Dung", "Phạm Đức", None,
    ]


# --- the workbook -----------------------------------------------------------------------------------

def _read_book(data: bytes):
    return load_workbook(BytesIO(data))[SHEET]


async def test_the_member_workbook_holds_the_named_members_and_the_hidden_note(database, commune):
    members = await database.read(lambda c: figures.member_rows(c, organisation_id=1, core_lessons=CORE, zone=ZONE))
    expected, hidden = expected_members(members_of(commune, 1), 1)
    sheet = _read_book(members_workbook("Hội Liên hiệp Phụ nữ – danh sách", members, organisation=True))
    assert sheet["A1"].value == "Hội Liên hiệp Phụ nữ – danh sách" and sheet["A1"].font.bold
    assert f"{hidden} người chưa đồng ý hiện tên nên không có trong danh sách" in sheet["A2"].value
    assert [cell.value for cell in sheet[3]] == [*COLUMNS, STATUS, ASSISTED]
    assert sheet.freeze_panes == "A4" and all(cell.font.bold for cell in sheet[3])
    rows = list(sheet.iter_rows(min_row=4, values_only=True))
    wanted = []
    for row in members.rows:  # the workbook keeps the list's order; the values come from `expected`
        person = expected[row.person_id]
        wanted.append((
            person.name or NO_NAME, person.village, person.lessons_finished,
            "Có" if person.finished_core else "Chưa",
            datetime.combine(person.last_active.date(), datetime.min.time()) if person.last_active else None,
            CONFIRMED if person.confirmed else CLAIMED,
            0,  # lessons learned with help: nobody in this generated commune had any
        ))
    assert rows == wanted and len(rows) == len(expected)
    dated = [row for row in sheet.iter_rows(min_row=4) if row[4].value is not None]
    assert dated and all(row[4].number_format == "DD/MM/YYYY" and row[4].is_date for row in dated)
    assert all(isinstance(row[2], int) for row in rows)


def test_the_workbook_keeps_typed_text_as_text_and_dates_in_the_commune_zone():
    late = datetime(2026, 11, 30, 18, 30, tzinfo=UTC).astimezone(ZONE)  # already 1 December in Việt Nam
    members = MemberList(rows=(
        MemberProgress(1, "=HYPERLINK(\"http://x\")", "Thôn Đông Đoài", 3, 2, False, late, None),
        MemberProgress(2, "Lan\x07 🌾", None, 0, 0, False, None, None),
    ), hidden=0, core_total=4)
    sheet = _read_book(members_workbook("Thôn Đông Đoài", members, organisation=False))
    assert "mọi người đều đã đồng ý hiện tên" in sheet["A2"].value
    assert [cell.value for cell in sheet[3]] == [*COLUMNS, ASSISTED]
    assert sheet["A4"].value == "=HYPERLINK(\"http://x\")" and sheet["A4"].data_type == "s"
    assert sheet["E4"].value.date() == date(2026, 12, 1)
    assert sheet["A5"].value == "Lan 🌾" and sheet["E5"].value is None


# --- charts -------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VIETNAMESE_LABELS = ["Hoàn thành khóa cơ bản", "Hội Liên hiệp Phụ nữ", "Thôn Đông Đoài", "Người lao động"]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _unit(people: int = 120, *, village: bool = False) -> UnitFigures:
    return UnitFigures(people, None if village else 90, 64, 31, 17, 78.5, (LessonRate("vneid", 40, 22),),
                       40 if village else None, 12 if village else None)


def test_every_vietnamese_letter_is_drawn_by_the_font():
    letters = {unicodedata.normalize("NFC", base + tone)
               for base in "aăâeêioôơuưy" for tone in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")}
    letters |= {"đ"}
    text = "".join(sorted(letters | {letter.upper() for letter in letters}))
    assert len(text) == 2 * (12 * 6 + 1)
    assert charts.printable(text) == text


@pytest.mark.parametrize("label", VIETNAMESE_LABELS)
def test_a_unit_chart_draws_vietnamese_labels_without_a_warning(label):
    # filterwarnings=error: a glyph missing from the font would fail here.
    assert _png_size(charts.unit_chart(label, _unit())) == (900, 560)
    assert _png_size(charts.unit_chart(label, _unit(village=True))) == (900, 560)


def test_a_character_the_font_lacks_becomes_a_question_mark():
    assert charts.printable("Lan 🌾 漢 Đoài") == "Lan ? ? Đoài"
    assert charts.printable("Hoa\u0300ng") == "Hoàng"  # typed with a combining accent
    _png_size(charts.unit_chart("Nhóm 🌾 漢", _unit()))
    _png_size(charts.household_chart("Hộ 🌾", [MemberProgress(1, "Bà 漢 $x$", None, 2, 2, False, None, None)], 4))


def test_drawing_a_missing_glyph_unfiltered_would_warn():
    """Why printable() exists: matplotlib warns for every glyph the font lacks."""
    figure = Figure()
    figure.text(0.5, 0.5, "🌾", fontfamily=charts.FONT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FigureCanvasAgg(figure).print_png(BytesIO())
    assert any("missing from font" in str(warning.message) for warning in caught)


def test_an_empty_unit_and_an_empty_household_still_draw():
    _png_size(charts.unit_chart("Hội Cựu chiến binh", _unit(0)))
    _png_size(charts.household_chart("Hộ bà Lan", [], 4, hidden=2))
    _png_size(charts.commune_chart("Xã Cát Thành", CommuneFigures(_unit(0, village=True), (), ())))


def test_a_commune_with_many_units_draws_the_first_fifteen_of_each():
    organisations = tuple(OrganisationRow(n, f"Chi hội Người lao động số {n}", 50 + n, 40, n) for n in range(1, 31))
    villages = tuple(VillageRow(n, f"Thôn Đông Đoài {n}", 100, n, 30, n // 2) for n in range(1, 21))
    width, height = _png_size(charts.commune_chart("Xã Cát Thành", CommuneFigures(_unit(), organisations, villages)))
    assert width == 900 and height > 1000


async def test_charts_of_the_stored_commune(database, commune):
    women = await database.read(lambda c: figures.organisation_figures(c, 1, CORE, NOW))
    village = await database.read(lambda c: figures.village_figures(c, 1, CORE, NOW))
    everyone = await database.read(lambda c: figures.commune_figures(c, CORE, NOW))
    household = await database.read(lambda c: figures.household_progress(c, 1, CORE, ZONE))
    assert _png_size(charts.unit_chart("Hội Liên hiệp Phụ nữ", women)) == (900, 560)
    assert _png_size(charts.unit_chart("Thôn Đông Đoài", village)) == (900, 560)
    assert _png_size(charts.commune_chart("Xã Cát Thành", everyone))[0] == 900
    assert _png_size(charts.household_chart("Hộ 1", household.rows, len(CORE), hidden=household.hidden))[0] == 900


def test_numbers_and_shares_read_the_vietnamese_way():
    assert charts.number(30000) == "30.000" and charts.number(7) == "7"
    assert [charts.percent(*pair) for pair in [(1, 3), (1, 1000), (0, 5), (3, 0), (2, 3)]] == [
        "33%", "<1%", "0%", "0%", "67%"]


def test_charts_drawn_on_two_threads_at_once_match_one_drawn_alone():
    """Charts render on the read threads: no pyplot, no shared figure state."""
    alone = charts.unit_chart("Thôn Đông Đoài", _unit(village=True))
    with ThreadPoolExecutor(2) as pool:
        drawn = list(pool.map(lambda _: charts.unit_chart("Thôn Đông Đoài", _unit(village=True)), range(6)))
    assert drawn == [alone] * 6
