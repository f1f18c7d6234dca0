"""The figures of the yearly report (due 10/12): one unit's people in one reporting period, by target
group, organisation, village, household and lesson.

A unit is the commune, one organisation (its confirmed and claimed members) or one village (its
residents). Counts are as of the end of the period ("registered" = registered before it ended,
"finished" = every core lesson completed before it ended); "in the period" counts what happened between
its start and its end. Self-reported answers (VNeID level 2) are as the person last gave them. People
who erased their data are not counted. Population figures are the commune's own, from the directory:
unknown ones stay None, never guessed.

What units did offline in the period (`offline_figures`) comes with it: the activities they recorded
(/hoatdong), the people who learned beside a member of the Tổ công nghệ số cộng đồng ("Học cùng") and
the initiatives proposed and recognised (/sangkien), per unit and for the whole scope, where a person
counted by two units is one person.

Every function is synchronous SQLAlchemy Core on one connection, run through `Database.read`; the
people and the lessons are two reads, so on SQLite they run side by side on its two reader threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
    or_,
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
    ACTIVITY_KINDS,
    Activity,
    Answer,
    Household,
    Initiative,
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
_initiative: Table = Initiative.__table__

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
class KindCount:
    """A unit's activities of one kind in the period."""

    kind: str  # a key of storage.models.ACTIVITY_KINDS
    activities: int
    participants: int


@dataclass(frozen=True)
class ActivityLine:
    """One activity held in the period, as the workbook lists it: counts only, nobody's name."""

    unit: str
    kind: str
    held_on: date
    title: str
    place: str  # the village's name or the place typed ("" when none)
    participants: int
    named: int  # members named as present


@dataclass(frozen=True)
class InitiativeLine:
    """One initiative proposed or recognised in the period; dates in the commune's zone."""

    title: str
    authors: str
    unit: str  # the organisation's or village's name, or the commune's own (`commune_unit`)
    description: str
    result: str
    proposed_on: date
    recognised_on: date | None  # None: not recognised by the period's end (chờ xét)
    proposed_in_period: bool
    recognised_in_period: bool


@dataclass(frozen=True)
class OfflineLine:
    """What one unit, or the report's whole scope, did offline in the period.

    A unit's line counts each person once within the unit; the scope's line counts each person once
    within the scope, so a person named at two units' activities, or a member of an organisation who
    lives in a village and learned with help, is in both units' lines and once in the total."""

    kind: ScopeKind
    unit_id: int | None
    name: str
    activities: int = 0  # held in the period, removed ones left out
    participants: int = 0  # attendances: a person at two activities counts twice
    named_people: int = 0  # distinct members named as present
    by_kind: tuple[KindCount, ...] = ()  # the kinds held, in ACTIVITY_KINDS order
    helped_people: int = 0  # completed a lesson or took a quiz with a digital-team member in the period
    helped_lessons: int = 0  # lessons completed with a digital-team member in the period
    helped_finished: int = 0  # finished the core course by the period's end, a core lesson of it with help
    initiatives_proposed: int = 0  # proposed in the period
    initiatives_recognised: int = 0  # recognised in the period (whenever proposed)

    @property
    def anything(self) -> bool:
        return bool(self.activities or self.helped_people or self.helped_finished or self.initiatives_proposed
                     or self.initiatives_recognised)


@dataclass(frozen=True)
class OfflineFigures:
    """Activities, learning with help and initiatives of the report's scope."""

    total: OfflineLine = OfflineLine("commune", None, "")
    # The commune: its own line (activities and initiatives of no unit, when any), every organisation,
    # every village. An organisation or a village: itself.
    units: tuple[OfflineLine, ...] = ()
    activities: tuple[ActivityLine, ...] = ()  # by unit, then day
    initiatives: tuple[InitiativeLine, ...] = ()  # in the order they were proposed


@dataclass(frozen=True)
class Report:
    scope: Scope
    period: Period
    made_at: datetime
    core_total: int
    people: PeopleFigures
    lessons: tuple[LessonLine, ...]  # in course order
    households_listed: bool = True  # False: a summary, its households counted but not listed
    offline: OfflineFigures = field(default_factory=OfflineFigures)


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


# --- what units do offline -----------------------------------------------------------------------
# The activities come from storage/activities.py and the initiatives' counts from storage/initiatives.py
# (the same counts /hoatdong and /sangkien give); both import this module's Period, so they are
# imported where they are used. A unit's report holds the unit's own activities and initiatives and its
# people's learning with help (an organisation's members, a village's residents); the commune's holds
# every unit's and its own (those of no unit).

def commune_unit(commune_name: str) -> str:
    """The name the commune's own activities and initiatives are listed under."""
    return f"UBND {commune_name}"


def offline_figures(connection: Connection, scope: Scope, core: Sequence[str], period: Period) -> OfflineFigures:
    """The scope's activities, learning with help and initiatives in the period: a few statements each,
    the rest counted in Python over rows that are one per activity, per initiative, per person helped."""
    from storage.activities import UnitRef, activity_rows, tally
    from storage.initiatives import initiative_totals

    own_name = commune_unit(scope.name)
    unit = (None if scope.kind == "commune" else UnitRef(organisation_id=scope.unit_id)
            if scope.kind == "organisation" else UnitRef(village_id=scope.unit_id))
    rows = activity_rows(connection, period, own_name, unit=unit)
    per_unit, overall = tally(rows)
    held = {(line.unit_kind, line.unit_id): line.totals for line in per_unit}
    kinds: dict[tuple[str, int | None], dict[str, list[int]]] = {}
    for row in rows:
        counted = kinds.setdefault((row.unit_kind, row.unit_id), {}).setdefault(row.kind, [0, 0])
        counted[0] += 1
        counted[1] += row.participants
    initiatives = initiative_totals(connection, period)
    proposals = {(line.kind, line.unit_id): (line.proposed, line.recognised) for line in initiatives.units}
    helped_units, helped_total = _helped(connection, scope, list(dict.fromkeys(core)), period)

    def line(kind: ScopeKind, unit_id: int | None, name: str) -> OfflineLine:
        totals = held.get((kind, unit_id))
        proposed, recognised = proposals.get((kind, unit_id), (0, 0))
        people, lessons, finished = helped_units.get((kind, unit_id), (0, 0, 0))
        return OfflineLine(
            kind, unit_id, name,
            activities=totals.activities if totals else 0, participants=totals.participants if totals else 0,
            named_people=totals.named_people if totals else 0, by_kind=_by_kind(kinds.get((kind, unit_id), {})),
            helped_people=people, helped_lessons=lessons, helped_finished=finished,
            initiatives_proposed=proposed, initiatives_recognised=recognised)

    if scope.kind == "commune":
        own = line("commune", None, own_name)
        organisations = sorted(connection.execute(select(_organisation.c.id, _organisation.c.name)).all(),
                               key=lambda row: (text_order(row.name), row.id))
        villages = connection.execute(select(_village.c.id, _village.c.name).order_by(_village.c.id)).all()
        units = ((own,) if own.anything else ()) + tuple(
            line("organisation", id_, name) for id_, name in organisations) + tuple(
            line("village", id_, name) for id_, name in villages)
        proposed, recognised = initiatives.proposed, initiatives.recognised
    else:
        units = (line(scope.kind, scope.unit_id, scope.name),)
        proposed, recognised = units[0].initiatives_proposed, units[0].initiatives_recognised
    every_kind: dict[str, list[int]] = {}
    for of_unit in kinds.values():
        for kind, (count, participants) in of_unit.items():
            tally_ = every_kind.setdefault(kind, [0, 0])
            tally_[0] += count
            tally_[1] += participants
    people, lessons, finished = helped_total
    total = OfflineLine(
        scope.kind, scope.unit_id, scope.name, activities=overall.activities, participants=overall.participants,
        named_people=overall.named_people, by_kind=_by_kind(every_kind), helped_people=people,
        helped_lessons=lessons, helped_finished=finished, initiatives_proposed=proposed,
        initiatives_recognised=recognised)
    return OfflineFigures(
        total=total, units=units,
        activities=tuple(ActivityLine(row.unit_name, row.kind, row.held_on, row.title, row.place, row.participants,
                                      row.named_count) for row in rows),
        initiatives=_initiative_lines(connection, scope, period, own_name),
    )


def _by_kind(counted: dict[str, list[int]]) -> tuple[KindCount, ...]:
    order = list(ACTIVITY_KINDS)
    return tuple(KindCount(kind, count, participants) for kind, (count, participants)
                 in sorted(counted.items(), key=lambda item: (item[0] not in order,
                                                              order.index(item[0]) if item[0] in order else 0,
                                                              item[0])))


def _helped(
    connection: Connection, scope: Scope, core: list[str], period: Period
) -> tuple[dict[tuple[str, int | None], tuple[int, int, int]], tuple[int, int, int]]:
    """Learning with a digital-team member ("Học cùng"): per organisation (its members) and village (its
    residents), and for the scope with each person once: (people who completed a lesson or took a
    quiz with help in the period, lessons completed with help in the period, people who had finished
    the core course by the period's end with a core lesson of it completed with help, as
    storage/figures.py counts `finished_assisted`).

    The lessons and the quizzes taken with help are a small part of all (an index-free scan of each
    table, grouped per person); who of those helped with a core lesson finished, and where the people
    helped live and which organisations they belong to, are then read by their ids."""
    progress, attempt, person = _progress.c, _attempt.c, _person.c
    core_by_end = and_(progress.status == "completed", progress.lesson_id.in_(core),
                       progress.completed_at < period.end)
    lessons = {person_id: (int(inside), int(core_helped)) for person_id, inside, core_helped in connection.execute(
        select(progress.person_id,
               func.count().filter(progress.completed_at >= period.start, progress.completed_at < period.end),
               func.count().filter(core_by_end))
        .where(progress.assisted.is_(True), progress.status == "completed")
        .group_by(progress.person_id)
    ).all()}
    quizzed = {person_id for (person_id,) in connection.execute(
        select(attempt.person_id).distinct()
        .where(attempt.assisted.is_(True), attempt.started_at >= period.start, attempt.started_at < period.end)
    ).all()}
    candidates = sorted(person_id for person_id, (_, core_helped) in lessons.items() if core_helped)
    finished = {person_id for chunk in _chunks(connection, candidates) for (person_id,) in connection.execute(
        select(progress.person_id).where(progress.person_id.in_(chunk), core_by_end)
        .group_by(progress.person_id).having(func.count() == len(core))
    ).all()} if core else set()
    helped = sorted({person_id for person_id, (inside, _) in lessons.items() if inside} | quizzed | finished)
    village_of: dict[int, int | None] = {}  # the people registered by the period's end, as everywhere in the report
    for chunk in _chunks(connection, helped):
        village_of.update((person_id, village_id) for person_id, village_id in connection.execute(
            select(person.id, person.village_id).where(person.id.in_(chunk), person.created_at < period.end)
        ).all())
    member_of: dict[int, list[int]] = {}
    for chunk in _chunks(connection, helped):
        for person_id, organisation_id in connection.execute(
            select(_membership.c.person_id, _membership.c.organisation_id).where(_membership.c.person_id.in_(chunk))
        ).all():
            member_of.setdefault(person_id, []).append(organisation_id)
    units: dict[tuple[str, int | None], list[int]] = {}
    total = [0, 0, 0]
    for person_id, village_id in village_of.items():
        inside = lessons.get(person_id, (0, 0))[0]
        counts = (int(bool(inside) or person_id in quizzed), inside, int(person_id in finished))
        organisations = member_of.get(person_id, [])
        keys: list[tuple[str, int | None]] = [("organisation", id_) for id_ in dict.fromkeys(organisations)]
        if village_id is not None:
            keys.append(("village", village_id))
        for key in keys:
            tally = units.setdefault(key, [0, 0, 0])
            for index, count in enumerate(counts):
                tally[index] += count
        if (scope.kind == "commune" or (scope.kind == "village" and village_id == scope.unit_id)
                or (scope.kind == "organisation" and scope.unit_id in organisations)):
            for index, count in enumerate(counts):
                total[index] += count
    return ({key: (people, lessons_, done) for key, (people, lessons_, done) in units.items()},
            (total[0], total[1], total[2]))


ID_CHUNK = {"sqlite": 900, "postgresql": 10_000}
"""Ids bound in one IN list: under SQLite's oldest limit of 999 variables a statement, and well under
PostgreSQL's 32,767 parameters (a province may have a hundred thousand people helped)."""


def _chunks(connection: Connection, ids: list[int]) -> list[list[int]]:
    size = ID_CHUNK.get(connection.dialect.name, ID_CHUNK["sqlite"])
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def _initiative_lines(
    connection: Connection, scope: Scope, period: Period, own_name: str
) -> tuple[InitiativeLine, ...]:
    """The scope's initiatives proposed or recognised in the period (what initiative_totals counts),
    in the order they were proposed; recognised means by the period's end."""
    initiative = _initiative.c
    proposed_in = and_(initiative.created_at >= period.start, initiative.created_at < period.end)
    recognised_in = and_(initiative.recognised_at >= period.start, initiative.recognised_at < period.end)
    query = (
        select(initiative.title, initiative.authors, _organisation.c.name, _village.c.name, initiative.organisation_id,
               initiative.village_id, initiative.description, initiative.result, initiative.created_at,
               initiative.recognised_at)
        .select_from(_initiative
                     .outerjoin(_organisation, _organisation.c.id == initiative.organisation_id)
                     .outerjoin(_village, _village.c.id == initiative.village_id))
        .where(or_(proposed_in, recognised_in))
        .order_by(initiative.created_at, initiative.id)
    )
    if scope.kind == "organisation":
        query = query.where(initiative.organisation_id == scope.unit_id)
    elif scope.kind == "village":
        query = query.where(initiative.village_id == scope.unit_id)
    zone = period.start.tzinfo
    lines = []
    for (title, authors, organisation, village, organisation_id, village_id, description, result, proposed,
         recognised) in connection.execute(query).all():
        recognised_by_end = recognised if recognised is not None and recognised < period.end else None
        unit = (organisation if organisation_id is not None else village if village_id is not None else own_name)
        lines.append(InitiativeLine(
            title, authors, unit or "", description, result, proposed.astimezone(zone).date(),
            recognised_by_end.astimezone(zone).date() if recognised_by_end is not None else None,
            period.holds(proposed), recognised is not None and period.holds(recognised)))
    return tuple(lines)



async def gather_report(
    database: Database, scope: Scope, period: Period, core: Sequence[str], lesson_order: Sequence[str],
    now: datetime, households: bool = True,
) -> Report:
    """The whole report: the answers, the people, the lessons and what units did offline, four reads side
    by side off the event loop's thread (on SQLite, as many at once as the database has reader threads;
    each is its own consistent snapshot, all within a second of each other). Without `households`, a summary: the
    households are counted, not listed (a province has 300,000)."""
    missed_read = asyncio.ensure_future(database.read(lambda connection: missed_questions(connection, scope, period)))
    people_read = asyncio.ensure_future(
        database.read(lambda connection: people_figures(connection, scope, core, period, households)))
    lessons_read = asyncio.ensure_future(
        database.read(lambda connection: lesson_figures(connection, scope, period, lesson_order, {})))
    # Last: the shortest read, it takes the first reader thread the others leave free.
    offline_read = asyncio.ensure_future(
        database.read(lambda connection: offline_figures(connection, scope, core, period)))
    lessons = await lessons_read
    people, missed, offline = await people_read, await missed_read, await offline_read
    lessons = tuple(replace(line, missed=tuple(missed.get(line.lesson_id, ()))) for line in lessons)
    return Report(scope, period, now, len(dict.fromkeys(core)), people, lessons, households, offline)
