"""What units did offline, in the yearly report: activities, learning with the Tổ công nghệ số cộng đồng
("Học cùng") and initiatives, in /baocao's text, the workbook and the draft (issue 14, part 5).

A small commune is stored directly in the database, with the cases the counting is about: a removed
activity, activities and initiatives just inside and just outside the period, a person named at two
units' activities, a person helped who is both a member of an organisation and a resident of a village,
a finisher helped before the period, a quiz taken with help and nothing completed. Every expected figure
is counted here in plain Python from the specifications below, never with the code under test. On
SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from openpyxl import load_workbook
from sqlmodel import select

from bot.settings import Settings
from reports.report_book import ACTIVITIES, ASSISTED, INITIATIVES, SUMMARY
from reports.report_files import report_files
from storage.models import (
    ACTIVITY_KINDS,
    Initiative,
    LessonProgress,
    Membership,
    Organisation,
    Person,
    QuizAttempt,
    UnitActivity,
    UnitActivityMember,
    Village,
)
from storage.report import Report, Scope, gather_report, reporting_period
from tests.test_dialog_figures import FARMERS, WOMEN, grant, register_viewer

pytestmark = pytest.mark.console_only("the figures are under test, not a channel's rendering")

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PERIOD = reporting_period(2026, (10, 12), ZONE)
LAST_YEAR = reporting_period(2025, (10, 12), ZONE)
FIRST, LAST = PERIOD.first_day, PERIOD.last_day  # 11/12/2025 and 10/12/2026
START, END = PERIOD.start, PERIOD.end
MADE = datetime(2026, 11, 2, 8, 0, tzinfo=ZONE)
VILLAGE_1, VILLAGE_2 = "Thôn 1", "Thôn 2"
COMMUNE = "xã Cát Thành"
OWN = f"UBND {COMMUNE}"  # the commune's own activities and initiatives
ONCE = "Tổng cộng (mỗi người chỉ tính một lần)"
UNIT_KIND_LABELS = {"organisation": "Tổ chức", "village": "Thôn, xóm"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Every test here on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZONE)


# --- the commune, as specifications ----------------------------------------------------------------

Unit = tuple[str, str | None]  # ("organisation", name), ("village", name) or ("commune", None)


@dataclass(frozen=True)
class Learner:
    name: str
    village: str | None
    orgs: tuple[str, ...]
    lessons: tuple[tuple[int, datetime, bool], ...] = ()  # (core lesson index, completed at, with help)
    rest_of_core: datetime | None = None  # every other core lesson completed then, alone
    quizzes: tuple[tuple[datetime, bool], ...] = ()  # (a quiz try started at, with help)


LEARNERS = [
    # A member of the farmers who lives in Thôn 1, helped this year: in both units, once in the total.
    Learner("Nguyễn Văn An", VILLAGE_1, (FARMERS,), ((0, at(2026, 3, 2), True), (1, at(2026, 3, 9), True)),
            rest_of_core=at(2026, 5, 1)),
    # A member of two organisations, living in Thôn 2: helped with one lesson.
    Learner("Trần Thị Bình", VILLAGE_2, (FARMERS, WOMEN), ((0, at(2026, 4, 4), True),)),
    # Helped last year with one lesson, finished alone this year: a finisher with help, not helped this year.
    Learner("Lê Văn Cường", VILLAGE_1, (), ((0, at(2025, 12, 1), True),), rest_of_core=at(2026, 2, 1)),
    # Took a quiz with help (failed it), completed nothing.
    Learner("Phạm Thị Dung", VILLAGE_2, (WOMEN,), quizzes=((at(2026, 6, 6), True),)),
    # In no village and no organisation: only in the commune's total.
    Learner("Hoàng Văn Em", None, (), ((2, START, True),)),  # exactly at the period's start: inside
    # Finished alone.
    Learner("Vũ Thị Giang", VILLAGE_1, (FARMERS,), rest_of_core=at(2026, 1, 20)),
    # Helped, but only after the period ended, and once exactly at its end.
    Learner("Đỗ Văn Hạnh", VILLAGE_1, (), ((0, END, True), (1, END + timedelta(days=3), True)),
            quizzes=((END + timedelta(days=3), True),)),
    # A quiz with help before the period only.
    Learner("Bùi Văn Khoa", VILLAGE_2, (FARMERS,), quizzes=((at(2025, 11, 20), True), (at(2026, 2, 2), False))),
]


@dataclass(frozen=True)
class Held:
    unit: Unit
    kind: str
    day: date
    title: str
    place: str | None
    place_village: str | None
    participants: int
    named: tuple[str, ...]
    removed: bool = False


ACTIVITIES_HELD = [
    Held(("organisation", FARMERS), "tuyen-truyen", date(2026, 3, 15), "Tuyên truyền VNeID", None, VILLAGE_1, 40,
         ("Nguyễn Văn An", "Trần Thị Bình", "Vũ Thị Giang")),
    Held(("organisation", FARMERS), "tap-huan", LAST, "Tập huấn chữ ký số", "Nhà văn hóa thôn 2", None, 25,
         ("Vũ Thị Giang",)),
    Held(("organisation", FARMERS), "tuyen-truyen", date(2026, 5, 1), "Ghi nhầm", None, None, 99,
         ("Nguyễn Văn An",), removed=True),
    Held(("organisation", FARMERS), "hoi-thi", FIRST - timedelta(days=1), "Hội thi năm trước", None, None, 50,
         ("Bùi Văn Khoa",)),
    Held(("organisation", WOMEN), "tap-huan", FIRST, "Lớp dùng điện thoại", "Hội trường", None, 30,
         ("Trần Thị Bình", "Phạm Thị Dung")),
    Held(("organisation", WOMEN), "khac", LAST + timedelta(days=1), "Năm sau", None, None, 12, ()),
    Held(("village", VILLAGE_1), "ho-tro-tai-nha", date(2026, 6, 1), "Hỗ trợ tại nhà", None, None, 6,
         ("Nguyễn Văn An",)),
    Held(("commune", None), "hoi-thi", date(2026, 9, 2), "Hội thi Bình dân học vụ số", "Hội trường UBND xã", None,
         120, ("Hoàng Văn Em", "Nguyễn Văn An")),
]


@dataclass(frozen=True)
class Proposal:
    unit: Unit
    title: str
    proposed: datetime
    recognised: datetime | None


PROPOSALS = [
    Proposal(("organisation", FARMERS), "Nhóm Zalo hướng dẫn cài VNeID", at(2026, 2, 1), at(2026, 4, 1)),
    Proposal(("organisation", WOMEN), "Mỗi hội viên kèm một người", at(2026, 7, 1), None),
    Proposal(("village", VILLAGE_1), "Loa phát thanh nhắc học", at(2025, 11, 1), at(2026, 1, 15)),
    Proposal(("organisation", FARMERS), "Sáng kiến năm trước", at(2025, 10, 1), at(2025, 11, 1)),
    Proposal(("commune", None), "Góc học số ở bộ phận một cửa", at(2026, 8, 1), None),
    Proposal(("organisation", WOMEN), "Đề xuất năm sau", END + timedelta(days=2), None),
    Proposal(("organisation", FARMERS), "Công nhận sau hạn", at(2026, 10, 1), END + timedelta(days=10)),
]


@dataclass(frozen=True)
class World:
    core: list[str]
    person: dict[str, int]


async def build(services) -> World:
    core = list(services.catalog.core_lessons(LAST))
    async with services.database.session() as session:
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
        member = Person(full_name="Thành Viên Tổ Số", consent_version=2, consent_at=START - timedelta(days=90),
                        created_at=START - timedelta(days=90))
        session.add(member)
        await session.flush()
        ids = {}
        for learner in LEARNERS:
            person = Person(full_name=learner.name, village_id=villages.get(learner.village or ""), consent_version=2,
                            consent_at=START - timedelta(days=60), created_at=START - timedelta(days=60),
                            consent_method="in_person", registered_by=member.id)
            session.add(person)
            await session.flush()
            ids[learner.name] = person.id
            for org in learner.orgs:
                session.add(Membership(person_id=person.id, organisation_id=orgs[org], confirmed=True))
            for index, when in completed(learner, core).items():
                helped = helped_lessons(learner).get(index, False)
                session.add(LessonProgress(person_id=person.id, lesson_id=core[index], status="completed",
                                           started_at=when[0] - timedelta(hours=1), completed_at=when[0],
                                           assisted=helped, assisted_by=member.id if helped else None))
            for started, helped in learner.quizzes:
                session.add(QuizAttempt(person_id=person.id, lesson_id=core[5], total=5, correct=1, score=20,
                                        passed=False, started_at=started, finished_at=started + timedelta(minutes=5),
                                        assisted=helped, assisted_by=member.id if helped else None))
        for held in ACTIVITIES_HELD:
            kind, name = held.unit
            activity = UnitActivity(
                organisation_id=orgs[name] if kind == "organisation" else None,  # type: ignore[index]
                village_id=villages[name] if kind == "village" else None,  # type: ignore[index]
                kind=held.kind, held_on=held.day, title=held.title, place=held.place,
                place_village_id=villages[held.place_village] if held.place_village else None,
                participants=held.participants, recorded_by=member.id, created_at=START, updated_at=START,
                removed_at=START + timedelta(days=1) if held.removed else None)
            session.add(activity)
            await session.flush()
            session.add_all(UnitActivityMember(activity_id=activity.id, person_id=ids[someone])
                            for someone in held.named)
        for proposal in PROPOSALS:
            kind, name = proposal.unit
            session.add(Initiative(
                title=proposal.title, authors="Nhóm tác giả", description=f"Cách làm: {proposal.title}",
                result="Nhiều người biết dùng", proposed_by=ids["Nguyễn Văn An"],
                organisation_id=orgs[name] if kind == "organisation" else None,  # type: ignore[index]
                village_id=villages[name] if kind == "village" else None,  # type: ignore[index]
                created_at=proposal.proposed, updated_at=proposal.proposed, recognised_at=proposal.recognised,
                recognised_by=member.id if proposal.recognised else None))
    return World(core, ids)


def completed(learner: Learner, core: list[str]) -> dict[int, tuple[datetime, bool]]:
    lessons = {index: (when, helped) for index, when, helped in learner.lessons}
    if learner.rest_of_core is not None:
        for index in range(len(core)):
            lessons.setdefault(index, (learner.rest_of_core, False))
    return lessons


def helped_lessons(learner: Learner) -> dict[int, bool]:
    return {index: helped for index, _, helped in learner.lessons}


# --- the same figures, counted in plain Python ------------------------------------------------------

def inside(moment: datetime | None) -> bool:
    return moment is not None and START <= moment < END


@dataclass(frozen=True)
class Expected:
    activities: int = 0
    participants: int = 0
    named: int = 0
    kinds: tuple[tuple[str, int, int], ...] = ()  # (kind, activities, participants) in ACTIVITY_KINDS order
    helped: int = 0
    lessons: int = 0
    finished: int = 0
    proposed: int = 0
    recognised: int = 0

    @property
    def anything(self) -> bool:
        return any((self.activities, self.helped, self.finished, self.proposed, self.recognised))


def expected(units: Iterable[Unit], people: Iterable[Learner], core: list[str]) -> Expected:
    """The figures of the activities and initiatives of `units` and of the learning of `people`, each
    person counted once."""
    units = set(units)
    held = [a for a in ACTIVITIES_HELD if a.unit in units and not a.removed and FIRST <= a.day <= LAST]
    kinds = tuple((kind, sum(a.kind == kind for a in held), sum(a.participants for a in held if a.kind == kind))
                  for kind in ACTIVITY_KINDS if any(a.kind == kind for a in held))
    helped = lessons = finished = 0
    for learner in people:
        done = completed(learner, core)
        with_help = [when for when, was_helped in done.values() if was_helped]
        lessons_inside = sum(map(inside, with_help))
        quizzed = any(helped_try and inside(started) for started, helped_try in learner.quizzes)
        helped += bool(lessons_inside or quizzed)
        lessons += lessons_inside
        finished += (len(done) == len(core) and all(when < END for when, _ in done.values())
                     and any(was_helped for _, was_helped in done.values()))
    proposals = [p for p in PROPOSALS if p.unit in units]
    return Expected(
        activities=len(held), participants=sum(a.participants for a in held),
        named=len({someone for a in held for someone in a.named}), kinds=kinds,
        helped=helped, lessons=lessons, finished=finished,
        proposed=sum(inside(p.proposed) for p in proposals), recognised=sum(inside(p.recognised) for p in proposals),
    )


def of_unit(unit: Unit) -> list[Learner]:
    kind, name = unit
    if kind == "organisation":
        return [learner for learner in LEARNERS if name in learner.orgs]
    if kind == "village":
        return [learner for learner in LEARNERS if learner.village == name]
    return []


ALL_UNITS: list[Unit] = [("commune", None), ("organisation", FARMERS), ("organisation", WOMEN),
                         ("village", VILLAGE_1), ("village", VILLAGE_2)]


def expected_scope(scope: Scope, core: list[str]) -> Expected:
    if scope.kind == "commune":
        return expected(ALL_UNITS, LEARNERS, core)
    unit: Unit = (scope.kind, scope.name)
    return expected([unit], of_unit(unit), core)


def kinds_phrase(kinds: tuple[tuple[str, int, int], ...]) -> str:
    labels = {kind: label[0].lower() + label[1:] for kind, label in ACTIVITY_KINDS.items()}
    return "; ".join(f"{labels[kind]}: {count} hoạt động, {people} lượt người" for kind, count, people in kinds)


async def scopes(services) -> dict[str, Scope]:
    async with services.database.session() as session:
        orgs = {o.name: o.id for o in (await session.exec(select(Organisation))).all()}
        villages = {v.name: v.id for v in (await session.exec(select(Village))).all()}
    return {"commune": Scope("commune", None, COMMUNE),
            FARMERS: Scope("organisation", orgs[FARMERS], FARMERS), WOMEN: Scope("organisation", orgs[WOMEN], WOMEN),
            VILLAGE_1: Scope("village", villages[VILLAGE_1], VILLAGE_1),
            VILLAGE_2: Scope("village", villages[VILLAGE_2], VILLAGE_2)}


def test_the_commune_holds_the_cases_this_file_is_about():
    core = [f"bai-{number}" for number in range(12)]
    commune = expected(ALL_UNITS, LEARNERS, core)
    units = {unit: expected([unit], of_unit(unit), core) for unit in ALL_UNITS}
    # Named at two units' activities, helped in two units: the units add up to more than the commune.
    assert sum(line.named for line in units.values()) > commune.named
    assert sum(line.helped for unit, line in units.items() if unit[0] != "commune") > commune.helped
    assert commune.activities == 5 and commune.named == 5 and commune.helped == 4 and commune.finished == 2
    assert (commune.proposed, commune.recognised) == (4, 2)


# --- the figures ----------------------------------------------------------------------------------

async def test_every_offline_figure_equals_an_independent_count(services):
    world = await build(services)
    for name, scope in (await scopes(services)).items():
        report = await gather_report(services.database, scope, PERIOD, world.core, world.core, MADE)
        want = expected_scope(scope, world.core)
        total = report.offline.total
        assert (total.activities, total.participants, total.named_people) == (
            want.activities, want.participants, want.named), name
        assert [(k.kind, k.activities, k.participants) for k in total.by_kind] == list(want.kinds), name
        assert (total.helped_people, total.helped_lessons, total.helped_finished) == (
            want.helped, want.lessons, want.finished), name
        assert (total.initiatives_proposed, total.initiatives_recognised) == (want.proposed, want.recognised), name
        for line in report.offline.units:
            unit: Unit = (line.kind, None if line.kind == "commune" else line.name)
            mine = expected([unit], of_unit(unit), world.core)
            assert (line.activities, line.participants, line.named_people, line.helped_people, line.helped_lessons,
                    line.helped_finished, line.initiatives_proposed, line.initiatives_recognised) == (
                mine.activities, mine.participants, mine.named, mine.helped, mine.lessons, mine.finished,
                mine.proposed, mine.recognised), (name, line.name)
        # The report's finishers include those who finished with help.
        assert total.helped_finished <= report.people.finished
        assert pickle.loads(pickle.dumps(report)) == report  # it crosses from the renderer process as it is
    commune = await gather_report(services.database, (await scopes(services))["commune"], PERIOD, world.core,
                                  world.core, MADE)
    names = [line.name for line in commune.offline.units]
    assert names[0] == OWN and {FARMERS, WOMEN, VILLAGE_1, VILLAGE_2} <= set(names)
    assert len(names) == len(set(names))


async def test_people_read_by_their_ids_in_many_small_lists_count_the_same(services, monkeypatch):
    import storage.report

    world = await build(services)
    commune = (await scopes(services))["commune"]
    whole = await gather_report(services.database, commune, PERIOD, world.core, world.core, MADE)
    monkeypatch.setattr(storage.report, "ID_CHUNK", {"sqlite": 2, "postgresql": 2})
    chunked = await gather_report(services.database, commune, PERIOD, world.core, world.core, MADE)
    assert chunked.offline == whole.offline and whole.offline.total.helped_people == 4


async def test_last_years_report_counts_what_happened_in_last_year(services):
    world = await build(services)
    commune = (await scopes(services))["commune"]
    report = await gather_report(services.database, commune, LAST_YEAR, world.core, world.core, MADE)
    total = report.offline.total
    # The contest held the day before this year's period, the quiz and the lesson with help in December
    # 2025 and the two initiatives of 2025.
    assert (total.activities, total.participants, total.named_people) == (1, 50, 1)
    assert (total.helped_people, total.helped_lessons, total.helped_finished) == (2, 1, 0)
    assert (total.initiatives_proposed, total.initiatives_recognised) == (2, 1)
    assert [line.title for line in report.offline.activities] == ["Hội thi năm trước"]


# --- chat, workbook and draft -----------------------------------------------------------------------

def files_of(chat) -> dict[str, bytes]:
    return {reply.attachment.file_name.rsplit(".", 1)[1]: reply.attachment.data
            for reply in chat.replies if reply.attachment is not None}


def table(sheet) -> list[tuple]:
    """The main table's rows: from under the header to the first empty row."""
    rows = []
    for row in sheet.iter_rows(min_row=6, values_only=True):
        if not any(cell not in (None, "") for cell in row):
            break
        rows.append(row)
    return rows


def block(sheet, heading: str) -> list[tuple]:
    """The rows of the small table whose header starts with `heading`."""
    rows = list(sheet.iter_rows(values_only=True))
    start = next(index for index, row in enumerate(rows) if row[0] == heading)
    found = []
    for row in rows[start + 1:]:
        if not any(cell not in (None, "") for cell in row):
            break
        cells = list(row)
        while cells and cells[-1] is None:
            cells.pop()
        found.append(tuple(cells))
    return found


def document_text(data: bytes) -> list[str]:
    return [paragraph.text for paragraph in Document(io.BytesIO(data)).paragraphs]


def check_chat(answer: str, want: Expected) -> None:
    for line in (f"• Hoạt động tại cơ sở: {want.activities} hoạt động, {want.participants} lượt người tham dự",
                 f"• Học cùng Tổ công nghệ số: {want.helped} người, {want.lessons} bài học xong",
                 f"• Sáng kiến: {want.proposed} đề xuất, {want.recognised} được công nhận"):
        assert line in answer, f"{line!r} not in\n{answer}"
    assisted = f", trong đó {want.finished} người học cùng Tổ công nghệ số"
    assert (assisted in answer) == bool(want.finished), answer


def check_workbook(data: bytes, scope: Scope, want: Expected, core: list[str]) -> None:
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames[-3:] == [ACTIVITIES, ASSISTED, INITIATIVES]
    for name in (ACTIVITIES, ASSISTED, INITIATIVES):
        sheet = book[name]
        assert "11/12/2025" in sheet["A2"].value and "10/12/2026" in sheet["A2"].value
        assert sheet.freeze_panes == "A6" and sheet["A5"].font.bold
        assert all(sheet.column_dimensions[letter].width >= 10 for letter in "ABC")

    # The summary's block of offline figures.
    summary = {row[0]: row[1] for row in block(book[SUMMARY], "Hoạt động tại cơ sở, học cùng, sáng kiến")}
    assert summary == {
        "Hoạt động tại cơ sở đã tổ chức trong kỳ": want.activities,
        "Lượt người tham dự các hoạt động": want.participants,
        "Thành viên được ghi tên có mặt (mỗi người một lần)": want.named,
        "Người học cùng Tổ công nghệ số cộng đồng trong kỳ": want.helped,
        "Bài học hoàn thành khi học cùng Tổ công nghệ số trong kỳ": want.lessons,
        "Hoàn thành khóa cơ bản có học cùng Tổ công nghệ số": want.finished,
        "Sáng kiến, cách làm hay được đề xuất trong kỳ": want.proposed,
        "Sáng kiến, cách làm hay được công nhận trong kỳ": want.recognised,
    }

    # Hoạt động: one row per activity of the scope held in the period, counts only.
    units = ALL_UNITS if scope.kind == "commune" else [(scope.kind, scope.name)]
    held = [a for a in ACTIVITIES_HELD if a.unit in units and not a.removed and FIRST <= a.day <= LAST]
    sheet = book[ACTIVITIES]
    rows = table(sheet)
    assert sorted((row[0], row[1], row[2].date(), row[3], row[4] or "", row[5], row[6]) for row in rows) == sorted(
        (a.unit[1] or OWN, ACTIVITY_KINDS[a.kind], a.day, a.title, a.place_village or a.place or "", a.participants,
         len(a.named)) for a in held)
    assert all(cell.number_format == "DD/MM/YYYY" for (cell,) in sheet.iter_rows(min_row=6, max_row=5 + len(rows),
                                                                                 min_col=3, max_col=3))
    by_unit = block(sheet, "Theo đơn vị")
    assert by_unit[-1] == (ONCE, want.activities, want.participants, want.named)
    for name, count, people, named in by_unit[:-1]:
        unit: Unit = ("commune", None) if name == OWN else next(u for u in units if u[1] == name)
        mine = expected([unit], [], core)
        assert (count, people, named) == (mine.activities, mine.participants, mine.named), name
    assert len(by_unit) - 1 == sum(expected([unit], [], core).activities > 0 for unit in units)
    by_kind = block(sheet, "Theo loại hoạt động")
    assert [row[:3] for row in by_kind] == [
        *((ACTIVITY_KINDS[kind], count, people) for kind, count, people in want.kinds),
        ("Tổng cộng", want.activities, want.participants)]
    names = {learner.name for learner in LEARNERS} | {"Thành Viên Tổ Số"}
    for name in (ACTIVITIES, ASSISTED):
        cells = {cell for row in book[name].iter_rows(values_only=True) for cell in row}
        assert not names & cells, name  # counts only, nobody's name

    # Học cùng: per organisation and village, then (the commune) each person once.
    rows = table(book[ASSISTED])
    got = {row[0]: row[1:] for row in rows}
    helped_units = [unit for unit in units if unit[0] != "commune"]
    for unit in helped_units:
        mine = expected([], of_unit(unit), core)
        assert got[unit[1]] == (UNIT_KIND_LABELS[unit[0]], mine.helped, mine.lessons, mine.finished), unit
    if scope.kind == "commune":
        assert rows[-1] == (ONCE, None, want.helped, want.lessons, want.finished)
        assert len(rows) - 1 == len(book["Tổ chức"]["A"]) - 5 + len(table(book["Thôn xóm"]))  # every unit listed
        assert sum(row[2] for row in rows[:-1]) > rows[-1][2]  # a person helped in two units, once in the total
    else:
        assert len(rows) == 1

    # Sáng kiến: proposed or recognised in the period; the status as of the period's end.
    proposals = [p for p in PROPOSALS if p.unit in units and (inside(p.proposed) or inside(p.recognised))]
    rows = table(book[INITIATIVES])

    def status(proposal: Proposal) -> str:
        if proposal.recognised is not None and proposal.recognised < END:
            return f"Đã công nhận ngày {proposal.recognised.astimezone(ZONE):%d/%m/%Y}"
        return "Chờ xét"

    assert [(row[0], row[2], row[5].date(), row[6]) for row in rows] == [
        (p.title, p.unit[1] or OWN, p.proposed.astimezone(ZONE).date(), status(p))
        for p in sorted(proposals, key=lambda p: p.proposed)]
    assert block(book[INITIATIVES], "Sáng kiến trong kỳ") == [("Được đề xuất", want.proposed),
                                                             ("Được công nhận", want.recognised)]


def check_document(data: bytes, scope: Scope, want: Expected, core: list[str]) -> None:
    paragraphs = document_text(data)
    text = "\n".join(paragraphs)
    assert "3. Hoạt động tại cơ sở, học cùng Tổ công nghệ số cộng đồng, sáng kiến" in text
    assert "4. Đánh giá chung" in text
    whole = scope.kind == "commune"
    if want.activities:
        assert (f"a) Hoạt động đã tổ chức: {want.activities} hoạt động với {want.participants} lượt người tham dự "
                f"({kinds_phrase(want.kinds)}); {want.named} thành viên được ghi tên có mặt") in text
    else:
        assert "a) Hoạt động đã tổ chức: trong kỳ chưa ghi nhận hoạt động nào" in text
    once = " (mỗi người chỉ tính một lần)" if whole else ""
    assert (f"b) Học cùng Tổ công nghệ số cộng đồng: {want.helped} người đã học cùng thành viên của Tổ trong kỳ{once}, "
            f"hoàn thành {want.lessons} bài học; {want.finished} người hoàn thành khóa kỹ năng số cơ bản có học cùng Tổ"
            ) in text
    assert (f"c) Sáng kiến, cách làm hay: {want.proposed} sáng kiến được đề xuất trong kỳ, {want.recognised} sáng kiến "
            "được công nhận trong kỳ.") in text
    units = ALL_UNITS if whole else [(scope.kind, scope.name)]
    for proposal in PROPOSALS:
        if proposal.unit in units and inside(proposal.recognised):
            assert f"“{proposal.title}” ({proposal.unit[1] or OWN})" in text
    if not whole:
        assert "d) Theo từng đơn vị" not in text
        return
    # d) one paragraph per unit that did anything, with its own figures.
    for unit in ALL_UNITS:
        mine = expected([unit], of_unit(unit), core)
        line = next((p for p in paragraphs if p.startswith(f"- {unit[1] or OWN}: ")), None)
        assert (line is not None) == mine.anything, unit
        if line is None:
            continue
        parts = {
            f"{mine.activities} hoạt động với {mine.participants} lượt người tham dự ({kinds_phrase(mine.kinds)}), "
            f"{mine.named} thành viên được ghi tên có mặt": bool(mine.activities),
            f"{mine.helped} người học cùng Tổ công nghệ số, hoàn thành {mine.lessons} bài học; {mine.finished} người "
            "hoàn thành khóa cơ bản có học cùng": bool(mine.helped or mine.finished),
            f"{mine.proposed} sáng kiến được đề xuất trong kỳ, {mine.recognised} sáng kiến được công nhận trong kỳ":
                bool(mine.proposed or mine.recognised),
        }
        for part, present in parts.items():
            assert (part.lower() in line.lower()) == present, (unit, part, line)


async def test_chat_workbook_and_draft_give_the_same_counts_for_each_role(make_chat, services):
    world = await build(services)
    units = await scopes(services)
    roles = [("staff", "staff", {}, units["commune"]),
             ("leader", "leader", {"org": FARMERS}, units[FARMERS]),
             ("head", "village_head", {"village": VILLAGE_1}, units[VILLAGE_1])]
    for user, role, where, scope in roles:
        chat = make_chat(user)
        await register_viewer(chat, f"Người {user}")  # in no unit: changes no figure of this file
        await grant(services, chat, role, **where)
        answer = await chat.say("/baocao")
        want = expected_scope(scope, world.core)
        check_chat(answer, want)
        files = files_of(chat)
        check_workbook(files["xlsx"], scope, want, world.core)
        check_document(files["docx"], scope, want, world.core)


async def test_a_village_with_nothing_offline_says_so(services):
    world = await build(services)
    scope = (await scopes(services))[VILLAGE_2]
    report = await gather_report(services.database, scope, PERIOD, world.core, world.core, MADE)
    files = report_files(report, COMMUNE, {}, {})
    want = expected_scope(scope, world.core)
    assert want.activities == 0 and want.helped == 2  # helped, but no activity of its own
    check_workbook(files.xlsx, scope, want, world.core)
    check_document(files.docx, scope, want, world.core)


def test_an_empty_report_still_has_the_sheets_and_the_section():
    from storage.report import PeopleFigures

    people = PeopleFigures((), 0, 0, 0, 0, 0, (), (), ())
    report = Report(Scope("commune", None, COMMUNE), PERIOD, MADE, 12, people, ())
    files = report_files(report, COMMUNE, {}, {})
    book = load_workbook(io.BytesIO(files.xlsx))
    assert book.sheetnames[-3:] == [ACTIVITIES, ASSISTED, INITIATIVES]
    assert table(book[ACTIVITIES]) == [] and table(book[INITIATIVES]) == []
    text = "\n".join(document_text(files.docx))
    assert "chưa ghi nhận hoạt động nào" in text and "0 sáng kiến được đề xuất trong kỳ" in text
