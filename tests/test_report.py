"""The yearly report: its figures, its workbook, its draft and its chart, on SQLite and PostgreSQL.

A commune is generated from a fixed seed with moments before, inside and after the reporting period
(and exactly on its bounds); every expected figure is counted again here in plain Python from the
generated rows, never with the SQL under test.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from openpyxl import load_workbook

from content.schema import CitizenGroup
from reports.report_book import (
    ACTIVITIES,
    ASSISTED,
    HOUSEHOLDS,
    INITIATIVES,
    LESSONS,
    ORGANISATIONS,
    PERCENT,
    SUMMARY,
    VILLAGES,
)
from reports.report_files import ascii_slug, report_files
from reports.report_text import indicators
from storage import migrate
from storage.db import Database
from storage.models import (
    Activity,
    Answer,
    Household,
    LessonProgress,
    Membership,
    Organisation,
    Person,
    PopulationFigure,
    QuizAttempt,
    Village,
)
from storage.report import (
    GroupLine,
    HouseholdLine,
    LessonLine,
    MissedQuestion,
    OrganisationLine,
    PeopleFigures,
    Report,
    Scope,
    VillageLine,
    gather_report,
    people_figures,
    period_year_of,
    reporting_period,
)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PERIOD = reporting_period(2026, (10, 12), ZONE)
START, END = PERIOD.start, PERIOD.end
MADE = datetime(2026, 12, 5, 8, 30, tzinfo=ZONE)
CORE = ["bai-mot", "bai-hai", "bai-ba"]
EXTRA = "bai-them"
LESSON_ORDER = [*CORE, EXTRA]
QUESTIONS = ["q1", "q2", "q3"]
VILLAGES_ = {1: "Thôn Đông", 2: "Thôn Đoài", 3: "Xóm Ải"}
ORGANISATIONS_ = {1: ("Hội Nông dân xã", "doan-the"), 2: ("Đoàn Thanh niên xã", "doan-the"),
                  3: ("Trường Tiểu học Cát Thành", "truong-hoc")}
GROUPS = [str(group) for group in CitizenGroup]
COMMUNE_POPULATION = {"nguoi-dan": 900, "hoc-sinh-sinh-vien": 300, "can-bo-cong-chuc": 40}  # workers unknown
VILLAGE_POPULATION = {1: {"nguoi-dan": 300, "hoc-sinh-sinh-vien": 100, "can-bo-cong-chuc": 10,
                          "nguoi-lao-dong-doanh-nghiep": 50}}


def test_the_period_runs_from_the_day_after_last_years_deadline_to_this_years():
    assert PERIOD.first_day.isoformat() == "2025-12-11" and PERIOD.last_day.isoformat() == "2026-12-10"
    bounds = (datetime(2025, 12, 10, 17, 0, tzinfo=UTC), datetime(2026, 12, 10, 17, 0, tzinfo=UTC))
    assert bounds == (START, END)
    assert PERIOD.holds(START) and not PERIOD.holds(END) and PERIOD.holds(END - timedelta(microseconds=1))
    assert period_year_of(datetime(2026, 12, 10, 23, 59, tzinfo=ZONE), (10, 12), ZONE) == 2026
    assert period_year_of(datetime(2026, 12, 11, 0, 0, tzinfo=ZONE), (10, 12), ZONE) == 2027
    assert period_year_of(datetime(2026, 1, 1, tzinfo=ZONE), (10, 12), ZONE) == 2026


# --- the commune -----------------------------------------------------------------------------------

@dataclass
class Try:
    id: int
    lesson: str
    kind: str
    finished: datetime | None
    passed: bool | None
    answers: dict[str, bool] = field(default_factory=dict)


@dataclass
class Someone:
    id: int
    created: datetime
    group: str | None
    village: int | None
    household: int | None
    vneid: str | None
    memberships: dict[int, bool]
    completed: dict[str, datetime]  # lesson -> when completed
    started: list[str]  # lessons only started
    tries: list[Try]
    activity: list[datetime]


@dataclass
class Home:
    id: int
    village: int | None
    head: str | None
    listed: int | None
    created: datetime


def _moment(rng: random.Random, low: datetime, high: datetime) -> datetime:
    return low + timedelta(minutes=rng.randrange(int((high - low).total_seconds() // 60)))


def build_commune(seed: int = 10122026, size: int = 90) -> tuple[list[Someone], list[Home]]:
    rng = random.Random(seed)
    homes = [Home(id_, rng.choice([1, 2, 3, None]), rng.choice(["Nguyễn Văn Bảy", "Lê Thị Hoa", None]),
                  rng.choice([None, 3, 5]), START - timedelta(days=300)) for id_ in range(1, 15)]
    homes.append(Home(15, 1, "Hộ Mới Sau Kỳ", 2, END + timedelta(days=1)))  # made after the period: not counted
    homes.append(Home(16, 2, "Trần Văn Vắng", 4, START - timedelta(days=30)))  # in the directory, nobody joined
    tries = iter(range(1, 100_000))
    people = []
    for person_id in range(1, size + 1):
        created = _moment(rng, START - timedelta(days=200), END + timedelta(days=10))
        if person_id == 1:
            created = END  # registered exactly as the period ended: not counted
        someone = Someone(
            id=person_id, created=created, group=rng.choice([*GROUPS, None]), village=rng.choice([1, 2, 3, None]),
            household=rng.choice([home.id for home in homes[:14]] + [None]), vneid=rng.choice(["yes", "no", None]),
            memberships={org: rng.random() < 0.5 for org in ORGANISATIONS_ if rng.random() < 0.4},
            completed={}, started=[], tries=[], activity=[],
        )
        diligent = rng.random() < 0.4
        for lesson in LESSON_ORDER:
            if diligent or rng.random() < 0.3:
                someone.completed[lesson] = _moment(rng, created, created + timedelta(days=120))
            elif rng.random() < 0.3:
                someone.started.append(lesson)
            for _ in range(rng.choice([0, 1, 1, 2, 3])):
                finished = (None if rng.random() < 0.15
                            else _moment(rng, START - timedelta(days=60), END + timedelta(days=20)))
                passed = None if finished is None else rng.random() < 0.6
                kind = "review" if rng.random() < 0.1 else "lesson"
                answers = {} if finished is None else {q: rng.random() < 0.6 for q in QUESTIONS}
                someone.tries.append(Try(next(tries), lesson, kind, finished, passed, answers))
        someone.activity = [_moment(rng, START - timedelta(days=30), END + timedelta(days=10))
                            for _ in range(rng.choice([0, 1, 3]))]
        people.append(someone)
    # The bounds themselves: a try finished exactly at the start counts, one exactly at the end does not.
    people[2].tries.append(Try(next(tries), "bai-mot", "lesson", START, True, {"q1": False, "q2": True}))
    people[3].tries.append(Try(next(tries), "bai-mot", "lesson", END, True, {"q1": False}))
    people[4].completed["bai-hai"] = END  # completed as the period ended: not yet finished within it
    return people, homes


@pytest.fixture(scope="module")
def commune() -> tuple[list[Someone], list[Home]]:
    return build_commune()


async def _store(db: Database, people: list[Someone], homes: list[Home]) -> None:
    async with db.session() as session:
        session.add_all(Village(id=id_, name=name) for id_, name in VILLAGES_.items())
        session.add_all(Organisation(id=id_, name=name, kind=kind) for id_, (name, kind) in ORGANISATIONS_.items())
        await session.flush()
        session.add_all(Household(id=home.id, code=f"HO{home.id}", village_id=home.village, head_name=home.head,
                                  member_count=home.listed, in_directory=home.head is not None,
                                  created_at=home.created) for home in homes)
        session.add_all(PopulationFigure(target_group=group, village_id=None, count=count)
                        for group, count in COMMUNE_POPULATION.items())
        session.add_all(PopulationFigure(target_group=group, village_id=village, count=count)
                        for village, figures in VILLAGE_POPULATION.items() for group, count in figures.items())
        await session.flush()
        session.add_all(Person(id=p.id, full_name=f"Người {p.id}", village_id=p.village, household_id=p.household,
                               target_group=p.group, vneid_level2=p.vneid, consent_at=p.created, created_at=p.created)
                        for p in people)
        await session.flush()
        for p in people:
            session.add_all(Membership(person_id=p.id, organisation_id=org, confirmed=confirmed)
                            for org, confirmed in p.memberships.items())
            session.add_all(LessonProgress(person_id=p.id, lesson_id=lesson, status="completed", started_at=at,
                                           completed_at=at) for lesson, at in p.completed.items())
            session.add_all(LessonProgress(person_id=p.id, lesson_id=lesson, status="started", started_at=p.created)
                            for lesson in p.started)
            session.add_all(Activity(person_id=p.id, kind="lesson_opened", at=at) for at in p.activity)
            for t in p.tries:
                session.add(QuizAttempt(id=t.id, person_id=p.id, lesson_id=t.lesson, kind=t.kind,
                                        started_at=(t.finished or START) - timedelta(minutes=3),
                                        finished_at=t.finished, passed=t.passed, total=3))
        await session.flush()
        for p in people:
            for t in p.tries:
                session.add_all(Answer(attempt_id=t.id, question_id=f"{t.lesson}/{q}", option_index=0, correct=ok,
                                       answered_at=t.finished) for q, ok in t.answers.items())
        session.add(Activity(person_id=None, kind="lesson_opened", at=START + timedelta(days=1)))  # an erased person


@pytest.fixture
async def database(database_url: str, commune):
    db = Database(database_url)
    await migrate.upgrade(db.engine)
    await _store(db, *commune)
    yield db
    await db.dispose()


# --- the same figures, counted in plain Python ------------------------------------------------------

def in_scope(p: Someone, scope: Scope) -> bool:
    if scope.kind == "village":
        return p.village == scope.unit_id
    if scope.kind == "organisation":
        return scope.unit_id in p.memberships
    return True


def registered(p: Someone) -> bool:
    return p.created < END


def finished(p: Someone) -> bool:
    return all(lesson in p.completed and p.completed[lesson] < END for lesson in CORE)


def inside(moment: datetime | None) -> bool:
    return moment is not None and START <= moment < END


def expected_people(people: list[Someone], homes: list[Home], scope: Scope) -> PeopleFigures:
    ours = [p for p in people if in_scope(p, scope) and registered(p)]
    population = ({} if scope.kind == "organisation" else
                  COMMUNE_POPULATION if scope.kind == "commune" else VILLAGE_POPULATION.get(scope.unit_id, {}))
    groups = tuple(
        GroupLine(group, len(members), sum(map(finished, members)), sum(p.vneid == "yes" for p in members),
                  population.get(group) if group else None)
        for group in [*GROUPS, None] for members in [[p for p in ours if p.group == group]]
    )
    organisations = []
    for org, (name, kind) in sorted(ORGANISATIONS_.items(), key=lambda item: item[1][0].replace("Đ", "Dz")):
        members = [p for p in ours if org in p.memberships]
        if (scope.kind == "organisation" and org != scope.unit_id) or (scope.kind == "village" and not members):
            continue
        organisations.append(OrganisationLine(name, kind, len(members), sum(p.memberships[org] for p in members),
                                              sum(map(finished, members)), sum(p.vneid == "yes" for p in members)))
    counted_homes = [h for h in homes if h.created < END]
    everyone = [p for p in people if registered(p)]

    def reached_home(home: Home, among: list[Someone]) -> bool:
        return any(p.household == home.id and finished(p) for p in among)

    among = ours if scope.kind == "organisation" else everyone
    villages = []
    for village, name in VILLAGES_.items():
        residents = [p for p in ours if p.village == village]
        if (scope.kind == "village" and village != scope.unit_id) or (scope.kind == "organisation" and not residents):
            continue
        in_village = [h for h in counted_homes if h.village == village]
        figures = VILLAGE_POPULATION.get(village)
        villages.append(VillageLine(name, len(residents), sum(map(finished, residents)),
                                    sum(p.vneid == "yes" for p in residents),
                                    sum(figures.values()) if figures else None, len(in_village),
                                    sum(reached_home(h, among) for h in in_village)))
    if scope.kind == "village":
        listed = [h for h in counted_homes if h.village == scope.unit_id]
    elif scope.kind == "organisation":
        listed = [h for h in counted_homes if any(p.household == h.id for p in ours)]
    else:
        listed = counted_homes
    households = {
        HouseholdLine(h.id, h.head, VILLAGES_.get(h.village), h.listed,
                      sum(p.household == h.id for p in among), sum(p.household == h.id and finished(p) for p in among),
                      h.village)
        for h in listed
    }
    scoped = [p for p in people if in_scope(p, scope)]
    return PeopleFigures(
        groups=groups,
        households_known=len(households),
        households_reached=sum(1 for h in households if h.finished),
        lessons_finished=sum(inside(at) for p in scoped for at in p.completed.values()),
        quizzes_passed=sum(t.kind == "lesson" and bool(t.passed) and inside(t.finished)
                           for p in scoped for t in p.tries),
        people_active=sum(any(map(inside, p.activity)) for p in scoped),
        organisations=tuple(organisations),
        villages=tuple(villages),
        households=households,  # type: ignore[arg-type]  # compared as a set: the order is tested apart
    )


def expected_lessons(people: list[Someone], scope: Scope) -> tuple[LessonLine, ...]:
    lines = []
    for lesson in LESSON_ORDER:
        attempts, firsts, wrong, answered = [], [], {}, {}
        for p in people:
            if not in_scope(p, scope):
                continue
            done = sorted((t for t in p.tries if t.lesson == lesson and t.kind == "lesson" and t.finished is not None
                           and t.finished < END), key=lambda t: (t.finished, t.id))
            attempts += [t for t in done if inside(t.finished)]
            if done and inside(done[0].finished):
                firsts.append(done[0])
            for t in done:
                if inside(t.finished):
                    for q, ok in t.answers.items():
                        key = f"{lesson}/{q}"
                        answered[key] = answered.get(key, 0) + 1
                        wrong[key] = wrong.get(key, 0) + (not ok)
        missed = sorted((MissedQuestion(key, wrong[key], answered[key]) for key in wrong if wrong[key]),
                        key=lambda m: (-m.wrong, m.question_key))[:3]
        people_tried = {p.id for p in people for t in p.tries if t in attempts}
        lines.append(LessonLine(lesson, len(attempts), sum(bool(t.passed) for t in attempts), len(people_tried),
                                len(firsts), sum(bool(t.passed) for t in firsts), tuple(missed)))
    return tuple(lines)


SCOPES = [Scope("commune", None, "xã Cát Thành"), Scope("organisation", 1, "Hội Nông dân xã"),
          Scope("organisation", 3, "Trường Tiểu học Cát Thành"), Scope("village", 1, "Thôn Đông"),
          Scope("village", 3, "Xóm Ải")]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda scope: f"{scope.kind}-{scope.unit_id}")
async def test_every_figure_equals_an_independent_count(database, commune, scope):
    people, homes = commune
    report = await gather_report(database, scope, PERIOD, CORE, LESSON_ORDER, MADE)
    expected = expected_people(people, homes, scope)
    got = report.people
    assert got.groups == expected.groups
    assert got.organisations == expected.organisations
    assert got.villages == expected.villages
    assert set(got.households) == expected.households and len(got.households) == len(expected.households)
    assert (got.households_known, got.households_reached) == (expected.households_known, expected.households_reached)
    assert (got.lessons_finished, got.quizzes_passed, got.people_active) == (
        expected.lessons_finished, expected.quizzes_passed, expected.people_active)
    assert report.lessons == expected_lessons(people, scope)
    assert report.core_total == len(CORE)


async def test_the_data_holds_the_cases_this_file_is_about(database, commune):
    people, _ = commune
    report = await gather_report(database, SCOPES[0], PERIOD, CORE, LESSON_ORDER, MADE)
    assert 0 < report.people.finished < report.people.registered < len(people)
    assert all(line.registered for line in report.people.groups)  # every group, and people who did not say
    assert any(line.missed for line in report.lessons)
    assert any(line.first_tries < line.people for line in report.lessons)  # some tried again this year
    assert any(line.registered == 0 for line in report.people.households)  # a directory household nobody joined


@pytest.mark.parametrize("scope", SCOPES, ids=lambda scope: f"{scope.kind}-{scope.unit_id}")
async def test_a_summary_counts_the_households_without_listing_them(database, commune, scope):
    people, homes = commune
    summary = await gather_report(database, scope, PERIOD, CORE, LESSON_ORDER, MADE, households=False)
    expected = expected_people(people, homes, scope)
    assert summary.people.households == () and not summary.households_listed
    assert (summary.people.households_known, summary.people.households_reached) == (
        expected.households_known, expected.households_reached)
    assert summary.people.groups == expected.groups and summary.people.villages == expected.villages
    book = load_workbook(io.BytesIO(report_files(summary, "xã Cát Thành", TITLES, QUESTION_TEXTS).xlsx))
    assert _rows(book[HOUSEHOLDS]) == [] and "tóm tắt" in book[HOUSEHOLDS]["A3"].value


async def test_households_are_listed_in_the_directorys_order(database):
    figures = await database.read(lambda c: people_figures(c, SCOPES[0], CORE, PERIOD))
    keys = [(line.village_id is None, line.village_id or 0, line.household_id) for line in figures.households]
    assert keys == sorted(keys) and len({line.village_id for line in figures.households}) > 2


async def test_without_a_core_course_nobody_has_finished(database):
    report = await gather_report(database, SCOPES[0], PERIOD, [], LESSON_ORDER, MADE)
    assert report.people.finished == 0 and report.people.households_reached == 0


# --- the files -------------------------------------------------------------------------------------

TITLES = {"bai-mot": "Bài một", "bai-hai": "Bài hai", "bai-ba": "Bài ba", "bai-them": "Bài thêm"}
QUESTION_TEXTS = {f"{lesson}/{q}": f"Câu {q} của {TITLES[lesson]}" for lesson in LESSON_ORDER for q in QUESTIONS}


@pytest.fixture
async def commune_report(database) -> Report:
    return await gather_report(database, SCOPES[0], PERIOD, CORE, LESSON_ORDER, MADE)


def _rows(sheet) -> list[tuple]:
    return [row for row in sheet.iter_rows(min_row=6, values_only=True) if any(cell is not None for cell in row)]


async def test_the_workbook_holds_every_figure_as_a_number(commune_report):
    report = commune_report
    files = report_files(report, "xã Cát Thành", TITLES, QUESTION_TEXTS)
    book = load_workbook(io.BytesIO(files.xlsx))
    assert book.sheetnames == [SUMMARY, ORGANISATIONS, VILLAGES, HOUSEHOLDS, LESSONS, ACTIVITIES, ASSISTED, INITIATIVES]
    for sheet in book.worksheets:
        assert "11/12/2025" in sheet["A2"].value and "10/12/2026" in sheet["A2"].value  # the period on every sheet
        assert sheet.freeze_panes == "A6"
        assert all(sheet.column_dimensions[letter].width >= 10 for letter in "ABC")
    summary = book[SUMMARY]
    groups = report.people.groups
    for line, row in zip(groups, summary.iter_rows(min_row=6, max_row=5 + len(groups)), strict=True):
        assert [cell.value for cell in row[1:3]] == [line.registered, line.finished]
        assert row[4].value == line.population and row[6].value == line.vneid
        assert row[3].number_format == PERCENT and row[5].number_format == PERCENT
        assert row[3].value == pytest.approx(line.finished / line.registered)
        assert row[5].value == (pytest.approx(line.finished / line.population) if line.population else None)
    total = [cell.value for cell in summary[6 + len(groups)]]
    assert total[:3] == ["Tổng cộng", report.people.registered, report.people.finished]
    assert total[4] is None  # the workers' population is unknown, so there is no total to divide by
    organisations = _rows(book[ORGANISATIONS])
    assert [(row[0], row[2], row[3], row[4]) for row in organisations] == [
        (line.name, line.people, line.confirmed, line.finished) for line in report.people.organisations]
    villages = _rows(book[VILLAGES])
    assert [(row[0], row[1], row[2], row[4], row[7], row[8]) for row in villages] == [
        (line.name, line.people, line.finished, line.population, line.households_known, line.households_reached)
        for line in report.people.villages]
    homes = _rows(book[HOUSEHOLDS])
    assert [(row[3], row[4], row[5]) for row in homes] == [
        (line.registered, line.finished, "Có" if line.finished else "Chưa") for line in report.people.households]
    lessons = _rows(book[LESSONS])
    assert [(row[0], row[1], row[2], row[4], row[5]) for row in lessons] == [
        (TITLES[line.lesson_id], line.attempts, line.passed, line.first_tries, line.first_try_passed)
        for line in report.lessons]
    most_missed = next(line for line in report.lessons if line.missed).missed[0]
    assert any(f"{QUESTION_TEXTS[most_missed.question_key]} (sai {most_missed.wrong}/{most_missed.answered})"
               in (row[7] or "") for row in lessons)


async def test_an_organisations_workbook_names_no_household_head(database, commune):
    report = await gather_report(database, SCOPES[1], PERIOD, CORE, LESSON_ORDER, MADE)
    book = load_workbook(io.BytesIO(report_files(report, "xã Cát Thành", TITLES, QUESTION_TEXTS).xlsx))
    names = {row[0] for row in _rows(book[HOUSEHOLDS])}
    assert names and all(name.startswith("Hộ số ") for name in names)
    cells = {str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row}
    assert not {"Nguyễn Văn Bảy", "Lê Thị Hoa"} & cells
    assert not any(line.name != "Hội Nông dân xã" for line in report.people.organisations)


def _document_text(data: bytes) -> tuple[object, str]:
    document = Document(io.BytesIO(data))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    return document, "\n".join(parts)


async def test_the_draft_follows_the_administrative_layout_and_holds_the_figures(commune_report):
    report = commune_report
    document, text = _document_text(report_files(report, "xã Cát Thành", TITLES, QUESTION_TEXTS).docx)
    section = document.sections[0]
    def mm(length) -> int:
        return round(length.mm)

    assert (mm(section.page_width), mm(section.page_height)) == (210, 297)  # A4 (Word stores twentieths of a point)
    assert (mm(section.left_margin), mm(section.right_margin), mm(section.top_margin)) == (30, 15, 20)
    assert section.different_first_page_header_footer  # no page number on page 1
    normal = document.styles["Normal"].font
    assert normal.name == "Times New Roman" and normal.size.pt == 14
    for line in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "ỦY BAN NHÂN DÂN XÃ CÁT THÀNH",
                 "Số:       /BC-UBND", "Cát Thành, ngày 05 tháng 12 năm 2026", "BÁO CÁO",
                 'Kết quả thực hiện Phong trào "Bình dân học vụ số" năm 2026', "I. KẾT QUẢ THỰC HIỆN",
                 "II. TỒN TẠI, HẠN CHẾ, NGUYÊN NHÂN", "III. PHƯƠNG HƯỚNG, NHIỆM VỤ", "IV. ĐỀ XUẤT, KIẾN NGHỊ",
                 "Nơi nhận:", "Lưu: VT.", "từ ngày 11/12/2025 đến ngày 10/12/2026"):
        assert line in text, line
    assert text.count("[...]") >= 6  # every passage a person must write is marked
    people = report.people
    assert f"Số người đăng ký tham gia: {people.registered} người" in text
    assert f"đã hoàn thành khóa kỹ năng số cơ bản ({len(CORE)} bài): {people.finished} người" in text
    assert (f"Hộ gia đình có người hoàn thành khóa cơ bản: {people.households_reached}/{people.households_known}"
            in text)
    table = document.tables[1]  # after the heading: the five indicators
    for item, row in zip(indicators(report), table.rows[1:], strict=True):
        cells = [cell.text for cell in row.cells]
        assert cells[1] == item.label and cells[2] == str(item.registered) and cells[3] == str(item.reached)
        assert cells[8] == item.verdict
    workers = indicators(report)[4]
    assert workers.population is None and workers.verdict == "Không có chỉ tiêu"


async def test_a_units_draft_is_addressed_to_the_commune(database):
    report = await gather_report(database, SCOPES[3], PERIOD, CORE, LESSON_ORDER, MADE)
    _, text = _document_text(report_files(report, "xã Cát Thành", TITLES, QUESTION_TEXTS).docx)
    assert "THÔN ĐÔNG" in text and "UBND XÃ CÁT THÀNH" in text
    assert "Kính gửi: Ủy ban nhân dân xã Cát Thành (qua Phòng Văn hóa - Xã hội)" in text


def test_dates_take_a_leading_zero_for_early_days_and_the_first_two_months():
    from reports.report_doc import dated, place_of

    assert dated("Cát Thành", datetime(2026, 2, 3)) == "Cát Thành, ngày 03 tháng 02 năm 2026"
    assert dated("Cát Thành", datetime(2026, 12, 15)) == "Cát Thành, ngày 15 tháng 12 năm 2026"
    assert dated("Cát Thành", datetime(2026, 3, 9)) == "Cát Thành, ngày 09 tháng 3 năm 2026"
    assert place_of("xã Cát Thành") == "Cát Thành" and place_of("Phường Hoa Lư") == "Hoa Lư"


async def test_the_chart_is_a_png_and_file_names_are_plain(commune_report):
    files = report_files(commune_report, "xã Cát Thành", TITLES, QUESTION_TEXTS)
    assert files.png.startswith(b"\x89PNG")
    assert [name for name, _ in files.named()] == [
        "bao-cao-2026-xa-cat-thanh.xlsx", "bao-cao-2026-xa-cat-thanh.docx", "bao-cao-2026-xa-cat-thanh.png"]
    assert ascii_slug("Hội Liên hiệp Phụ nữ xã Đông") == "hoi-lien-hiep-phu-nu-xa-dong"
    assert ascii_slug("🎉") == "don-vi"
