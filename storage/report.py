"""The figures of the yearly report (due 10/12): one unit's people in one reporting period, by target
group, organisation, village, household and lesson.

A unit is the commune, one organisation (its confirmed and claimed members) or one village (its
residents). Counts are as of the end of the period ("registered" = registered before it ended,
"finished" = every core lesson completed before it ended); "in the period" counts what happened between
its start and its end. Self-reported answers (VNeID level 2) are as the person last gave them. People
who erased their data are not counted. Population figures are the commune's own, from the directory:
unknown ones stay None, never guessed.

Every function is synchronous SQLAlchemy Core on one connection, run through `Database.read`; the
people and the lessons are two reads, so on SQLite they run side by side on its two reader threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    Subquery,
    Table,
    and_,
    case,
    func,
    literal,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Connection

from content.schema import CitizenGroup
from storage.db import Database
from storage.figures import text_order
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

_person: Table = Person.__table__
_membership: Table = Membership.__table__
_household: Table = Household.__table__
_village: Table = Village.__table__
_organisation: Table = Organisation.__table__
_population: Table = PopulationFigure.__table__
_progress: Table = LessonProgress.__table__
_attempt: Table = QuizAttempt.__table__
_answer: Table = Answer.__table__
_activity: Table = Activity.__table__

MOST_MISSED = 3
"""How many of a lesson's most missed questions the report names."""

ScopeKind = Literal["commune", "organisation", "village"]


# --- the period ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A reporting year: from the day after last year's deadline to this year's deadline, both whole
    days in the commune's time zone. `start` and `end` are those bounds as moments, `end` exclusive."""

    year: int
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def reporting_period(year: int, deadline: tuple[int, int], zone: tzinfo) -> Period:
    """The period that ends on `deadline` (day, month) of `year`."""
    day, month = deadline
    last_day = date(year, month, day)
    first_day = date(year - 1, month, day) + timedelta(days=1)
    start = datetime.combine(first_day, time(), zone)
    end = datetime.combine(last_day + timedelta(days=1), time(), zone)
    return Period(year, first_day, last_day, start, end)


def period_year_of(moment: datetime, deadline: tuple[int, int], zone: tzinfo) -> int:
    """The reporting year a moment falls in: after this year's deadline, it is next year's."""
    local = moment.astimezone(zone).date()
    day, month = deadline
    return local.year + 1 if local > date(local.year, month, day) else local.year


# --- what the report holds -----------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    unit_id: int | None  # None for the commune
    name: str  # "xã Cát Thành", the organisation's or the village's name


@dataclass(frozen=True)
class GroupLine:
    """One target group of QĐ 757 (None: people who did not say)."""

    group: str | None
    registered: int
    finished: int
    vneid: int
    population: int | None  # the commune's figure for the unit; None when unknown or not applicable


@dataclass(frozen=True)
class OrganisationLine:
    name: str
    kind: str
    people: int
    confirmed: int
    finished: int
    vneid: int


@dataclass(frozen=True)
class VillageLine:
    name: str
    people: int
    finished: int
    vneid: int
    population: int | None  # sum of the village's figures over the groups entered; None when none is
    households_known: int
    households_reached: int


@dataclass(frozen=True)
class HouseholdLine:
    household_id: int
    head_name: str | None
    village: str | None
    listed_members: int | None  # the number the directory gives, if any
    registered: int
    finished: int
    village_id: int | None = None


@dataclass(frozen=True)
class MissedQuestion:
    question_key: str  # "lesson/question", as answers store it
    wrong: int
    answered: int


@dataclass(frozen=True)
class LessonLine:
    lesson_id: str
    attempts: int  # finished tries in the period
    passed: int
    people: int  # distinct people who tried in the period
    first_tries: int  # people whose first try ever fell in the period
    first_try_passed: int
    missed: tuple[MissedQuestion, ...]  # the most missed, most wrong answers first


@dataclass(frozen=True)
class PeopleFigures:
    """Everything of the report except the lessons (one read)."""

    groups: tuple[GroupLine, ...]  # the four groups in the framework's order, then "not said"
    households_known: int
    households_reached: int
    lessons_finished: int  # first completions of a lesson in the period
    quizzes_passed: int  # passed lesson quizzes in the period (retakes included)
    people_active: int  # people with any activity in the period
    organisations: tuple[OrganisationLine, ...]
    villages: tuple[VillageLine, ...]
    households: tuple[HouseholdLine, ...]

    @property
    def registered(self) -> int:
        return sum(line.registered for line in self.groups)

    @property
    def finished(self) -> int:
        return sum(line.finished for line in self.groups)

    @property
    def vneid(self) -> int:
        return sum(line.vneid for line in self.groups)


@dataclass(frozen=True)
class Report:
    scope: Scope
    period: Period
    made_at: datetime
    core_total: int
    people: PeopleFigures
    lessons: tuple[LessonLine, ...]  # in course order
    households_listed: bool = True  # False: a summary, its households counted but not listed


# --- the unit's people ---------------------------------------------------------------------------
# Counted two ways, to the same tallies (`_Tallies`), then laid out in lines by one set of functions.
# On SQLite (one commune, tens of thousands of people) a few narrow reads come up to Python and are
# counted in one pass each: a reader connection may not create even a temporary table, and a CTE of who
# finished, recomputed by each of five GROUP BYs, doubled the time. On PostgreSQL (up to a province, a
# million people) everything is counted in SQL: who finished goes once into a temporary table dropped
# with the read's transaction, and nothing per person comes up to Python. Both run in the renderer
# process (handlers/report.py), so neither holds the bot's GIL.

def _in_scope(scope: Scope, person: Table = _person) -> ColumnElement[bool]:
    if scope.kind == "village":
        return person.c.village_id == scope.unit_id
    if scope.kind == "organisation":
        # IN, not a join: one row per person even if a membership were listed twice.
        members = select(_membership.c.person_id).where(_membership.c.organisation_id == scope.unit_id)
        return person.c.id.in_(members)
    return true()


def _finished_by(core: Sequence[str], period: Period) -> Select[tuple[int]]:
    """The ids of people who had completed every core lesson when the period ended."""
    progress = _progress.c
    query = (
        select(progress.person_id.label("person_id"))
        .where(progress.status == "completed", progress.lesson_id.in_(list(core)), progress.completed_at < period.end)
        .group_by(progress.person_id)
    )
    return query.having(func.count() == len(core)) if core else query.where(literal(False))


@dataclass
class _Tallies:
    """The unit's people counted: (registered, finished, VNeID level 2) per group and per village,
    (members, confirmed, finished, VNeID) per organisation, (known, reached) households per village."""

    groups: dict[str | None, tuple[int, int, int]]
    organisations: dict[int, tuple[int, int, int, int]]
    village_people: dict[int, tuple[int, int, int]]
    village_homes: dict[int, tuple[int, int]]
    households: tuple[HouseholdLine, ...]
    households_known: int
    households_reached: int


def people_figures(
    connection: Connection, scope: Scope, core: Sequence[str], period: Period, households: bool = True
) -> PeopleFigures:
    """The unit's people by group, organisation, village and household, and its counts of the period.
    `households=False` leaves out the list of households (a province's summary), not their counts."""
    core = list(dict.fromkeys(core))
    count = _tally_in_python if connection.dialect.name == "sqlite" else _tally_in_sql
    tallies = count(connection, scope, core, period, households)
    return PeopleFigures(
        groups=_group_lines(connection, scope, tallies.groups),
        households_known=tallies.households_known,
        households_reached=tallies.households_reached,
        lessons_finished=_count_in_period(connection, scope, period, _progress, _progress.c.completed_at),
        quizzes_passed=_count_in_period(
            connection, scope, period, _attempt, _attempt.c.finished_at,
            _attempt.c.kind == "lesson", _attempt.c.passed.is_(True),
        ),
        people_active=_active_in_period(connection, scope, period),
        organisations=_organisation_lines(connection, scope, tallies.organisations),
        villages=_village_lines(connection, scope, tallies.village_people, tallies.village_homes),
        households=tallies.households,
    )


def _group_lines(
    connection: Connection, scope: Scope, counted: dict[str | None, tuple[int, int, int]]
) -> tuple[GroupLine, ...]:
    """The four groups in the framework's order, then people who did not say, then any group no
    longer offered (they still count)."""
    counted = dict(counted)
    population = _population_of(connection, scope)
    lines = []
    for group in [*(str(group) for group in CitizenGroup), None]:
        registered, done, vneid = counted.pop(group, (0, 0, 0))
        lines.append(GroupLine(group, registered, done, vneid, population.get(group) if group else None))
    for group, (registered, done, vneid) in sorted(counted.items(), key=lambda item: str(item[0])):
        lines.append(GroupLine(group, registered, done, vneid, None))
    return tuple(lines)


def _population_of(connection: Connection, scope: Scope) -> dict[str, int]:
    """The commune's figures for the unit: the commune's own row or the village's; none for an
    organisation (its denominator is its member list, not a census)."""
    if scope.kind == "organisation":
        return {}
    where = _population.c.village_id.is_(None) if scope.kind == "commune" else _population.c.village_id == scope.unit_id
    rows = connection.execute(select(_population.c.target_group, _population.c.count).where(where)).all()
    return {group: count for group, count in rows}


def _count_in_period(
    connection: Connection, scope: Scope, period: Period, table: Table, when: ColumnElement[datetime],
    *conditions: ColumnElement[bool],
) -> int:
    people = select(_person.c.id).where(_in_scope(scope))
    query = select(func.count()).select_from(table).where(when >= period.start, when < period.end, *conditions)
    if scope.kind != "commune":
        query = query.where(table.c.person_id.in_(people))
    return int(connection.execute(query).scalar_one())


def _active_in_period(connection: Connection, scope: Scope, period: Period) -> int:
    activity = _activity.c
    query = select(func.count(func.distinct(activity.person_id))).where(
        activity.at >= period.start, activity.at < period.end, activity.person_id.is_not(None)
    )
    if scope.kind != "commune":
        query = query.where(activity.person_id.in_(select(_person.c.id).where(_in_scope(scope))))
    return int(connection.execute(query).scalar_one())


def _organisation_lines(
    connection: Connection, scope: Scope, counts: dict[int, tuple[int, int, int, int]]
) -> tuple[OrganisationLine, ...]:
    """Every organisation for the commune; for a village, those with residents of it among their
    members; for an organisation, itself."""
    organisations = connection.execute(select(_organisation.c.id, _organisation.c.name, _organisation.c.kind)).all()
    lines = []
    for id_, name, kind in sorted(organisations, key=lambda row: (text_order(row.name), row.id)):
        if scope.kind == "organisation" and id_ != scope.unit_id:
            continue
        if scope.kind == "village" and id_ not in counts:
            continue
        people, confirmed, done, vneid = counts.get(id_, (0, 0, 0, 0))
        lines.append(OrganisationLine(name, kind, people, confirmed, done, vneid))
    return tuple(lines)


def _village_lines(
    connection: Connection, scope: Scope, people: dict[int, tuple[int, int, int]], homes: dict[int, tuple[int, int]]
) -> tuple[VillageLine, ...]:
    """Every village for the commune; for a village, itself; for an organisation, the villages its
    members live in."""
    population = {
        village: total for village, total in connection.execute(
            select(_population.c.village_id, func.sum(_population.c.count))
            .where(_population.c.village_id.is_not(None)).group_by(_population.c.village_id)
        ).all()
    }
    lines = []
    for id_, name in connection.execute(select(_village.c.id, _village.c.name).order_by(_village.c.id)).all():
        if scope.kind == "village" and id_ != scope.unit_id:
            continue
        if scope.kind == "organisation" and id_ not in people:
            continue
        count, done, vneid = people.get(id_, (0, 0, 0))
        known, reached = homes.get(id_, (0, 0))
        lines.append(VillageLine(name, count, done, vneid, population.get(id_), known, reached))
    return tuple(lines)


def _in_directory_order(lines: list[HouseholdLine]) -> tuple[HouseholdLine, ...]:
    """Village by village (the villages' own order), each village's households as the commune listed
    them (households made in chat after them), those without a village last."""
    return tuple(sorted(lines, key=lambda line: (line.village_id is None, line.village_id or 0, line.household_id)))


# Whose learning counts for a household: an organisation counts only its members; a village and the
# commune count everyone in the household, wherever they say they live (as /thongke does). A household
# is reached when one of the people counted in it has finished the core course. The households of a
# unit: the commune's all, a village's those listed in it, an organisation's those of its members.

# --- counted in Python (SQLite) ---

@dataclass(frozen=True)
class _Someone:
    id: int
    village: int | None
    household: int | None
    group: str | None
    vneid: bool
    finished: bool


def _tally_in_python(
    connection: Connection, scope: Scope, core: list[str], period: Period, listed: bool
) -> _Tallies:
    finished = {row[0] for row in connection.execute(_finished_by(core, period)).all()}
    person = _person.c
    everyone = [
        _Someone(id_, village, household, group, vneid == "yes", id_ in finished)
        for id_, village, household, group, vneid in connection.execute(
            select(person.id, person.village_id, person.household_id, person.target_group, person.vneid_level2)
            .where(person.created_at < period.end)
        ).all()  # all(): one fetchall, a third of the cost of fetching 30,000 rows one by one
    ]
    memberships = connection.execute(
        select(_membership.c.person_id, _membership.c.organisation_id, _membership.c.confirmed)
    ).all()
    if scope.kind == "village":
        ours = [someone for someone in everyone if someone.village == scope.unit_id]
    elif scope.kind == "organisation":
        members = {person_id for person_id, organisation_id, _ in memberships if organisation_id == scope.unit_id}
        ours = [someone for someone in everyone if someone.id in members]
    else:
        ours = everyone
    counted = ours if scope.kind == "organisation" else everyone
    homes: dict[int, list[int]] = {}
    for someone in counted:
        if someone.household is not None:
            tally = homes.setdefault(someone.household, [0, 0])
            tally[0] += 1
            tally[1] += someone.finished
    households = _listed_households(connection, scope, period, homes)
    return _Tallies(
        groups=_python_tally(ours, lambda someone: someone.group),
        organisations=_python_memberships(ours, memberships),
        village_people={village: tally for village, tally in _python_tally(ours, lambda s: s.village).items()
                        if village is not None},
        village_homes=_python_village_homes(connection, period, homes),
        households=households if listed else (),
        households_known=len(households),
        households_reached=sum(1 for line in households if line.finished),
    )


def _python_tally(people: list[_Someone], key: Callable[[_Someone], Any]) -> dict[Any, tuple[int, int, int]]:
    counted: dict[Any, list[int]] = {}
    for someone in people:
        tally = counted.setdefault(key(someone), [0, 0, 0])
        tally[0] += 1
        tally[1] += someone.finished
        tally[2] += someone.vneid
    return {key_: (registered, done, vneid) for key_, (registered, done, vneid) in counted.items()}


def _python_memberships(ours: list[_Someone], memberships: Sequence[Any]) -> dict[int, tuple[int, int, int, int]]:
    people = {someone.id: someone for someone in ours}
    counts: dict[int, list[int]] = {}
    for person_id, organisation_id, confirmed in memberships:
        someone = people.get(person_id)
        if someone is not None:
            tally = counts.setdefault(organisation_id, [0, 0, 0, 0])
            tally[0] += 1
            tally[1] += bool(confirmed)
            tally[2] += someone.finished
            tally[3] += someone.vneid
    return {id_: (people_, confirmed, done, vneid) for id_, (people_, confirmed, done, vneid) in counts.items()}


def _python_village_homes(
    connection: Connection, period: Period, homes: dict[int, list[int]]
) -> dict[int, tuple[int, int]]:
    counts: dict[int, list[int]] = {}
    household = _household.c
    for id_, village in connection.execute(
        select(household.id, household.village_id)
        .where(household.village_id.is_not(None), household.created_at < period.end)
    ).all():
        tally = counts.setdefault(village, [0, 0])
        tally[0] += 1
        tally[1] += bool(homes.get(id_, (0, 0))[1])
    return {village: (known, reached) for village, (known, reached) in counts.items()}


def _listed_households(
    connection: Connection, scope: Scope, period: Period, homes: dict[int, list[int]]
) -> tuple[HouseholdLine, ...]:
    household = _household.c
    query = (
        select(household.id, household.head_name, _village.c.name, household.member_count, household.village_id)
        .select_from(_household.outerjoin(_village, _village.c.id == household.village_id))
        .where(household.created_at < period.end)
    )
    if scope.kind == "village":
        query = query.where(household.village_id == scope.unit_id)
    return _in_directory_order([
        HouseholdLine(id_, head, village, members, *homes.get(id_, (0, 0)), village_id=village_id)
        for id_, head, village, members, village_id in connection.execute(query).all()
        if scope.kind != "organisation" or id_ in homes
    ])


# --- counted in SQL (PostgreSQL) ---

def _tally_in_sql(connection: Connection, scope: Scope, core: list[str], period: Period, listed: bool) -> _Tallies:
    finished = Table("report_finished", MetaData(), Column("person_id", Integer, primary_key=True),
                     prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
    finished.create(connection)
    connection.execute(finished.insert().from_select(["person_id"], _finished_by(core, period)))
    connection.execute(text("ANALYZE report_finished"))  # so the planner knows how many finished
    ours = _people(scope, period, finished, scoped=True)
    counted = ours if scope.kind == "organisation" else _people(scope, period, finished, scoped=False)
    homes = (
        select(counted.c.household_id, func.count().label("registered"), func.sum(counted.c.done).label("finished"))
        .where(counted.c.household_id.is_not(None))
        .group_by(counted.c.household_id)
        .subquery("homes")
    )
    membership, household = _membership.c, _household.c
    households, known, reached = _sql_households(connection, scope, period, homes, listed)
    return _Tallies(
        groups=_sql_counts(connection, select(ours.c.target_group, *_sql_tally(ours)).group_by(ours.c.target_group)),
        organisations=_sql_counts(connection, (
            select(membership.organisation_id, *_sql_tally(ours), func.count().filter(membership.confirmed.is_(True)))
            .select_from(_membership.join(ours, ours.c.id == membership.person_id))
            .group_by(membership.organisation_id)
        ), lambda people, done, vneid, confirmed: (people, confirmed, done, vneid)),
        village_people=_sql_counts(connection, (
            select(ours.c.village_id, *_sql_tally(ours))
            .where(ours.c.village_id.is_not(None)).group_by(ours.c.village_id)
        )),
        village_homes=_sql_counts(connection, (
            select(household.village_id, func.count(), func.count().filter(homes.c.finished > 0))
            .select_from(_household.outerjoin(homes, homes.c.household_id == household.id))
            .where(household.village_id.is_not(None), household.created_at < period.end)
            .group_by(household.village_id)
        )),
        households=households,
        households_known=known,
        households_reached=reached,
    )


def _people(scope: Scope, period: Period, finished: Table, scoped: bool) -> Subquery:
    """Everyone registered when the period ended (the unit's people only when `scoped`), each with
    `done` (1 when they had finished the core course) and `vneid` (1 for level 2)."""
    person = _person.c
    query = (
        select(person.id, person.village_id, person.household_id, person.target_group,
               case((finished.c.person_id.is_not(None), 1), else_=0).label("done"),
               case((person.vneid_level2 == "yes", 1), else_=0).label("vneid"))
        .select_from(_person.outerjoin(finished, finished.c.person_id == person.id))
        .where(person.created_at < period.end)
    )
    if scoped:
        query = query.where(_in_scope(scope))
    return query.subquery("ours" if scoped else "everyone")


def _sql_tally(people: Subquery) -> tuple[ColumnElement[Any], ...]:
    """People, those who finished, those with VNeID level 2."""
    return func.count(), func.coalesce(func.sum(people.c.done), 0), func.coalesce(func.sum(people.c.vneid), 0)


def _sql_counts(
    connection: Connection, query: Select[Any], arrange: Callable[..., tuple[int, ...]] = lambda *counts: counts
) -> dict[Any, Any]:
    """{key: counts} from a GROUP BY whose first column is the key."""
    return {key: arrange(*map(int, counts)) for key, *counts in connection.execute(query).all()}


def _sql_households(
    connection: Connection, scope: Scope, period: Period, homes: Subquery, listed: bool
) -> tuple[tuple[HouseholdLine, ...], int, int]:
    """The unit's households (none when not `listed`), how many there are and how many were reached."""
    household, tally = _household.c, homes.c
    households = _household.outerjoin(homes, tally.household_id == household.id)
    where = [household.created_at < period.end]
    if scope.kind == "village":
        where.append(household.village_id == scope.unit_id)
    elif scope.kind == "organisation":
        where.append(tally.household_id.is_not(None))
    if not listed:
        known, reached = connection.execute(
            select(func.count(), func.count().filter(tally.finished > 0)).select_from(households).where(*where)
        ).one()
        return (), int(known), int(reached)
    lines = _in_directory_order([
        HouseholdLine(id_, head, village, members, int(registered), int(done), village_id=village_id)
        for id_, head, village, members, village_id, registered, done in connection.execute(
            select(household.id, household.head_name, _village.c.name, household.member_count, household.village_id,
                   func.coalesce(tally.registered, 0), func.coalesce(tally.finished, 0))
            .select_from(households.outerjoin(_village, _village.c.id == household.village_id))
            .where(*where)
        ).all()
    ])
    return lines, len(lines), sum(1 for line in lines if line.finished)


# --- the lessons ---------------------------------------------------------------------------------

def lesson_figures(
    connection: Connection, scope: Scope, period: Period, lesson_order: Sequence[str],
    missed: dict[str, list[MissedQuestion]] | None = None,
) -> tuple[LessonLine, ...]:
    """Per lesson: the tries finished in the period, first-try pass rate, the most missed questions.

    A person's first try at a lesson is their earliest finished try (ties: the earlier row). Counted in
    SQL, per lesson: two hundred thousand tries never come up to Python.
    """
    attempt = _attempt.c
    finished = and_(attempt.kind == "lesson", attempt.finished_at.is_not(None), attempt.finished_at < period.end)
    if scope.kind != "commune":
        finished = and_(finished, attempt.person_id.in_(select(_person.c.id).where(_in_scope(scope))))
    inside = attempt.finished_at >= period.start
    counts = {
        lesson_id: (tries, passed, people)
        for lesson_id, tries, passed, people in connection.execute(
            select(attempt.lesson_id, func.count(), func.count().filter(attempt.passed.is_(True)),
                   func.count(attempt.person_id.distinct()))
            .where(finished, inside).group_by(attempt.lesson_id)
        ).all()
    }
    firsts = _first_tries(connection, finished, period)
    if missed is None:
        missed = missed_questions(connection, scope, period)
    lessons = list(dict.fromkeys([*lesson_order, *sorted(counts)]))
    lines = []
    for lesson_id in lessons:
        attempts, passed, people = counts.get(lesson_id, (0, 0, 0))
        first_tries, first_passed = firsts.get(lesson_id, (0, 0))
        lines.append(LessonLine(lesson_id, attempts, passed, people, first_tries, first_passed,
                                tuple(missed.get(lesson_id, ()))))
    return tuple(lines)


def _first_tries(connection: Connection, finished: ColumnElement[bool], period: Period) -> dict[str, tuple[int, int]]:
    """Per lesson: people whose first finished try fell in the period, and how many of them passed it."""
    attempt = _attempt.c
    if connection.dialect.name == "sqlite":
        # SQLite takes a bare column from the row that gave the aggregate's min(): the first try's
        # "passed". The key orders by time, then id (ids are zero-padded so text order is number order).
        first = func.min(func.printf("%s%012d", attempt.finished_at, attempt.id))
        per_person = (
            select(attempt.lesson_id, first.label("first"), attempt.passed, attempt.finished_at)
            .where(finished).group_by(attempt.person_id, attempt.lesson_id).subquery()
        )
    else:
        per_person = (
            select(attempt.lesson_id, attempt.passed, attempt.finished_at)
            .where(finished)
            .ext(distinct_on(attempt.person_id, attempt.lesson_id))
            .order_by(attempt.person_id, attempt.lesson_id, attempt.finished_at, attempt.id)
            .subquery()
        )
    return {
        lesson_id: (tries, passed)
        for lesson_id, tries, passed in connection.execute(
            select(per_person.c.lesson_id, func.count(), func.count().filter(per_person.c.passed.is_(True)))
            .where(per_person.c.finished_at >= period.start)
            .group_by(per_person.c.lesson_id)
        ).all()
    }


def missed_questions(connection: Connection, scope: Scope, period: Period) -> dict[str, list[MissedQuestion]]:
    """Wrong answers per question in the lesson quizzes finished in the period; each lesson's most
    missed first (ties: the question's key)."""
    attempt, answer = _attempt.c, _answer.c
    tries = select(attempt.id).where(
        attempt.kind == "lesson", attempt.finished_at >= period.start, attempt.finished_at < period.end
    )
    if scope.kind != "commune":
        tries = tries.where(attempt.person_id.in_(select(_person.c.id).where(_in_scope(scope))))
    # IN, not a join: SQLite then reads the period's tries once and each one's answers by its index
    # (0.9 s for a million answers), where the join walked the tries by lesson in random order (2.4 s).
    # A lesson quiz's answers are keyed "lesson/question", so the key names the lesson.
    query = (
        select(answer.question_id, func.count().filter(answer.correct.is_(False)), func.count())
        .where(answer.attempt_id.in_(tries))
        .group_by(answer.question_id)
    )
    by_lesson: dict[str, list[MissedQuestion]] = {}
    for key, wrong, answered in connection.execute(query).all():
        if wrong:
            by_lesson.setdefault(key.partition("/")[0], []).append(MissedQuestion(key, wrong, answered))
    for lesson_id, questions in by_lesson.items():
        questions.sort(key=lambda question: (-question.wrong, question.question_key))
        by_lesson[lesson_id] = questions[:MOST_MISSED]
    return by_lesson


def share(part: int, whole: int | None) -> float | None:
    """part / whole, or None where the whole is unknown or zero (a blank cell, never a made-up 0 %)."""
    return part / whole if whole else None



async def gather_report(
    database: Database, scope: Scope, period: Period, core: Sequence[str], lesson_order: Sequence[str],
    now: datetime, households: bool = True,
) -> Report:
    """The whole report: the answers, the people and the lessons, three reads side by side off the
    event loop's thread (on SQLite, as many at once as the database has reader threads; each is its own
    consistent snapshot, all within a second of each other). Without `households`, a summary: the
    households are counted, not listed (a province has 300,000)."""
    missed_read = asyncio.ensure_future(database.read(lambda connection: missed_questions(connection, scope, period)))
    people_read = asyncio.ensure_future(
        database.read(lambda connection: people_figures(connection, scope, core, period, households)))
    lessons = await database.read(lambda connection: lesson_figures(connection, scope, period, lesson_order, {}))
    people, missed = await people_read, await missed_read
    lessons = tuple(replace(line, missed=tuple(missed.get(line.lesson_id, ()))) for line in lessons)
    return Report(scope, period, now, len(dict.fromkeys(core)), people, lessons, households)
