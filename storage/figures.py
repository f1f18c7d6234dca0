"""The figures leaders see in chat: counts of an organisation, a village, a household or the commune.

Every function is synchronous SQLAlchemy Core on one connection, run through `Database.read`. The
counting happens in SQL: a unit's figures walk its people through the person_id indexes, so they cost
in proportion to its members, not to the commune's history; the commune's are one pass over each table.

Privacy: a person appears by name only at consent version 2 or later (they agreed that their leader
and village head see their name and progress); everyone else of the unit is only counted (`hidden`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields, replace
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    FromClause,
    Select,
    Table,
    distinct,
    exists,
    false,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.engine import Connection

from storage.models import Activity, Household, LessonProgress, Membership, Organisation, Person, QuizAttempt, Village

_person: Table = Person.__table__  # type: ignore[attr-defined]
_membership: Table = Membership.__table__  # type: ignore[attr-defined]
_household: Table = Household.__table__  # type: ignore[attr-defined]
_village: Table = Village.__table__  # type: ignore[attr-defined]
_organisation: Table = Organisation.__table__  # type: ignore[attr-defined]
_progress: Table = LessonProgress.__table__  # type: ignore[attr-defined]
_attempt: Table = QuizAttempt.__table__  # type: ignore[attr-defined]
_activity: Table = Activity.__table__  # type: ignore[attr-defined]

NAMED_FROM_CONSENT = 2
"""The consent version from which a person's name and progress are shown to their leaders."""

ACTIVE_DAYS = 30
HARDEST_SHOWN = 3


@dataclass(frozen=True)
class LessonRate:
    """How often people passed a lesson's quiz at their first finished try."""

    lesson_id: str
    first_tries: int
    first_try_passed: int

    @property
    def rate(self) -> float:
        return self.first_try_passed / self.first_tries if self.first_tries else 0.0


@dataclass(frozen=True)
class UnitFigures:
    """The figures of one unit (organisation, village or the whole commune)."""

    people: int  # organisation: confirmed + claimed members; village: its residents; commune: everyone
    confirmed: int | None  # organisations only (claims = people - confirmed)
    active_30_days: int
    finished_core: int
    vneid_level2: int  # self-reported
    average_score: float | None  # mean score of finished "lesson" attempts; None when there are none
    hardest: tuple[LessonRate, ...]  # up to 3 core lessons, lowest first-try pass rate first
    households_known: int | None  # villages and the commune only
    households_reached: int | None  # of those, households with a member who finished the core course
    # Of `finished_core`, those who completed a core lesson with a digital-team member beside them
    # ("Học cùng"): they count as finished, and are shown apart.
    finished_assisted: int = 0


@dataclass(frozen=True)
class OrganisationRow:
    organisation_id: int
    name: str
    people: int
    confirmed: int
    finished_core: int
    finished_assisted: int = 0


@dataclass(frozen=True)
class VillageRow:
    village_id: int
    name: str
    people: int
    finished_core: int
    households_known: int
    households_reached: int
    finished_assisted: int = 0


@dataclass(frozen=True)
class CommuneFigures:
    totals: UnitFigures  # over every person; households over every household
    organisations: tuple[OrganisationRow, ...]  # by name, in Vietnamese order
    villages: tuple[VillageRow, ...]  # by id, the directory's order


@dataclass(frozen=True)
class MemberProgress:
    """One named person's progress."""

    person_id: int
    name: str | None  # None: agreed to be named but never gave a name
    village: str | None
    lessons_finished: int
    core_finished: int
    finished_core: bool
    last_active: datetime | None  # in the zone asked for
    confirmed: bool | None  # organisations only
    lessons_assisted: int = 0  # lessons completed with a digital-team member beside them ("Học cùng")


@dataclass(frozen=True)
class MemberList:
    """The named people of a unit, in Vietnamese name order, and how many more are only counted."""

    rows: tuple[MemberProgress, ...]
    hidden: int
    core_total: int


# --- units --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    """The people of a unit: `source` has one row per person (with the person table's columns) where
    `where` holds; `people` selects their ids (None: everyone)."""

    source: FromClause
    where: ColumnElement[bool]
    people: Select[tuple[int]] | None
    confirmed: ColumnElement[bool] | None = None


def _organisation_unit(organisation_id: int) -> _Unit:
    # One membership row per person and organisation (unique constraint): each member counts once.
    where = _membership.c.organisation_id == organisation_id
    return _Unit(
        source=_membership.join(_person, _person.c.id == _membership.c.person_id),
        where=where,
        people=select(_membership.c.person_id).where(where),
        confirmed=_membership.c.confirmed,
    )


def _resident_unit(where: ColumnElement[bool]) -> _Unit:
    return _Unit(source=_person, where=where, people=select(_person.c.id).where(where))


def _village_unit(village_id: int) -> _Unit:
    return _resident_unit(_person.c.village_id == village_id)


def _household_unit(household_id: int) -> _Unit:
    return _resident_unit(_person.c.household_id == household_id)


def _commune_unit() -> _Unit:
    return _Unit(source=_person, where=true(), people=None)


# --- per-person predicates (correlated: a few index lookups per person of the unit) --------------

def _core(core_lessons: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(core_lessons))


def _core_done(person_id: ColumnElement[int], core: list[str]) -> ColumnElement[int]:
    """How many core lessons the person completed (one progress row per person and lesson)."""
    done = _progress.alias()
    # The condition in FILTER, not WHERE: SQLite then reads the person's rows in one index range instead
    # of one lookup per core lesson (18 -> 10 ms for 2,000 people).
    completed = func.count().filter(done.c.status == "completed", done.c.lesson_id.in_(core))
    return select(completed).where(done.c.person_id == person_id).scalar_subquery()


def _finished(person_id: ColumnElement[int], core: list[str]) -> ColumnElement[bool]:
    # No core course configured: nobody can have finished it (not "everyone vacuously has").
    return _core_done(person_id, core) == len(core) if core else false()


def _helped(person_id: ColumnElement[int], core: list[str]) -> ColumnElement[bool]:
    """Whether the person completed a core lesson with a digital-team member beside them."""
    done = _progress.alias()
    return select(done.c.person_id).where(
        done.c.person_id == person_id, done.c.status == "completed", done.c.lesson_id.in_(core),
        done.c.assisted.is_(True),
    ).exists()


def _active(person_id: ColumnElement[int], now: datetime) -> ColumnElement[bool]:
    recent = _activity.alias()
    # Selecting an indexed column (not EXISTS (SELECT *)) lets SQLite answer from ix_activity_person_at alone.
    return select(recent.c.person_id).where(
        recent.c.person_id == person_id, recent.c.at >= now - timedelta(days=ACTIVE_DAYS)
    ).exists()


# --- figures -------------------------------------------------------------------------------------

def organisation_figures(
    connection: Connection, organisation_id: int, core_lessons: Sequence[str], now: datetime
) -> UnitFigures:
    """The figures of one organisation's confirmed and claimed members."""
    return _unit_figures(connection, _organisation_unit(organisation_id), _core(core_lessons), now)


def village_figures(connection: Connection, village_id: int, core_lessons: Sequence[str], now: datetime) -> UnitFigures:
    """The figures of one village's residents and of the households listed in it."""
    core = _core(core_lessons)
    figures = _unit_figures(connection, _village_unit(village_id), core, now)
    member = _person.alias("member")
    reached = exists().where(member.c.household_id == _household.c.id, _finished(member.c.id, core))
    known, done = connection.execute(
        select(func.count(), func.count().filter(reached))
        .select_from(_household)
        .where(_household.c.village_id == village_id)
    ).one()
    return replace(figures, households_known=known, households_reached=done)


def _unit_figures(connection: Connection, unit: _Unit, core: list[str], now: datetime) -> UnitFigures:
    person_id = _person.c.id
    people, confirmed, active, finished, vneid, helped = connection.execute(
        select(
            func.count(),
            func.count().filter(unit.confirmed) if unit.confirmed is not None else null(),
            func.count().filter(_active(person_id, now)),
            func.count().filter(_finished(person_id, core)),
            func.count().filter(_person.c.vneid_level2 == "yes"),
            func.count().filter(_finished(person_id, core), _helped(person_id, core)),
        )
        .select_from(unit.source)
        .where(unit.where)
    ).one()
    average, hardest = _quiz_figures(connection, unit.people, core)
    return UnitFigures(
        people=people, confirmed=confirmed, active_30_days=active, finished_core=finished, vneid_level2=vneid,
        average_score=average, hardest=hardest, households_known=None, households_reached=None,
        finished_assisted=helped,
    )


def _quiz_figures(
    connection: Connection, people: Select[tuple[int]] | None, core: list[str]
) -> tuple[float | None, tuple[LessonRate, ...]]:
    """The mean score of the people's finished lesson attempts, and their hardest core lessons.

    One pass over the attempts, grouped by lesson: a dozen rows come back, never the attempts. A first
    try is each person's earliest finished lesson attempt at a lesson (ties: the earlier row).
    """
    attempt = _attempt.c
    tries = select(
        attempt.lesson_id, attempt.score, attempt.passed,
        func.row_number().over(
            partition_by=(attempt.person_id, attempt.lesson_id), order_by=(attempt.finished_at, attempt.id)
        ).label("n"),
    ).where(attempt.kind == "lesson", attempt.finished_at.is_not(None))
    if people is not None:
        # IN, not a join: SQLite then walks the unit's ids through ix_quizattempt_person_id.
        tries = tries.where(attempt.person_id.in_(people))
    tried = tries.subquery("tries")
    first = tried.c.n == 1
    rows = connection.execute(
        select(
            tried.c.lesson_id,
            func.count(tried.c.score),
            func.coalesce(func.sum(tried.c.score), 0),
            func.count().filter(first),
            func.count().filter(first, tried.c.passed.is_(True)),
        ).group_by(tried.c.lesson_id)
    ).all()
    scored = sum(row[1] for row in rows)
    average = sum(int(row[2]) for row in rows) / scored if scored else None
    order = {lesson: index for index, lesson in enumerate(core)}
    rates = [LessonRate(row[0], row[3], row[4]) for row in rows if row[0] in order and row[3]]
    rates.sort(key=lambda rate: (Fraction(rate.first_try_passed, rate.first_tries), order[rate.lesson_id]))
    return average, tuple(rates[:HARDEST_SHOWN])


# --- the commune ---------------------------------------------------------------------------------

def commune_figures(connection: Connection, core_lessons: Sequence[str], now: datetime) -> CommuneFigures:
    """Totals over everyone and every household, and one row per organisation and per village."""
    core = _core(core_lessons)
    tallies = _commune_tallies(connection, core, now)
    by_village = {unit: tally for (part, unit), tally in tallies.items() if part == "village"}
    everyone = sum(by_village.values(), _Tally())  # people without a village are the None row
    average, hardest = _quiz_figures(connection, None, core)
    totals = UnitFigures(
        people=everyone.people, confirmed=None, active_30_days=everyone.active, finished_core=everyone.finished,
        vneid_level2=everyone.vneid, average_score=average, hardest=hardest,
        households_known=everyone.homes, households_reached=everyone.reached, finished_assisted=everyone.assisted,
    )
    # Ordered here, not by ORDER BY: the database's collation (binary on SQLite) puts "Đoàn" after "Hội".
    organisations = sorted(connection.execute(select(_organisation.c.id, _organisation.c.name)).all(),
                           key=lambda row: (text_order(row.name), row.id))
    villages = connection.execute(select(_village.c.id, _village.c.name).order_by(_village.c.id)).all()
    none = _Tally()
    return CommuneFigures(
        totals=totals,
        organisations=tuple(
            OrganisationRow(id_, name, tally.people, tally.confirmed, tally.finished, tally.assisted)
            for id_, name in organisations
            for tally in [tallies.get(("organisation", id_), none)]
        ),
        villages=tuple(
            VillageRow(id_, name, tally.people, tally.finished, tally.homes, tally.reached, tally.assisted)
            for id_, name in villages
            for tally in [by_village.get(id_, none)]
        ),
    )


@dataclass(frozen=True)
class _Tally:
    """The counts of one village or organisation in the commune's breakdown."""

    people: int = 0
    finished: int = 0
    active: int = 0
    vneid: int = 0
    confirmed: int = 0
    homes: int = 0
    reached: int = 0
    assisted: int = 0  # of `finished`, those who had help ("Học cùng")

    def __add__(self, other: _Tally) -> _Tally:
        return _Tally(*(mine + theirs for mine, theirs in zip(astuple(self), astuple(other), strict=True)))


def _finished_people(core: list[str]) -> CTE:
    """The ids of people who completed every core lesson, by one pass over the lesson progress, and
    `helped`: how many of those lessons they completed with a digital-team member beside them."""
    progress = _progress.c
    completed = func.count().filter(progress.status == "completed", progress.lesson_id.in_(core))
    helped = func.count().filter(progress.status == "completed", progress.lesson_id.in_(core),
                                 progress.assisted.is_(True))
    query = (select(progress.person_id, helped.label("helped")).group_by(progress.person_id)
             .having(completed == len(core)))
    return (query if core else query.where(false())).cte("finished")


def _commune_tallies(connection: Connection, core: list[str], now: datetime) -> dict[tuple[str, int | None], _Tally]:
    """Counts by village (people, households) and by organisation (members): ("village" or
    "organisation", its id) -> tally; the village None holds the people and households without one.

    One statement, so the people who finished are found once (one pass over the lesson progress) for
    every breakdown; asked person by person that would be 30,000 lookups per breakdown.
    """
    finished = _finished_people(core)
    person, household, membership = _person.c, _household.c, _membership.c

    def part(name: str, unit: ColumnElement[int | None], **counts: ColumnElement[int]) -> Select[Any]:
        zero = literal(0)
        columns = [counts.get(field.name, zero).label(field.name) for field in fields(_Tally)]
        return select(literal(name).label("part"), unit.label("unit"), *columns).group_by(unit)

    people = part(
        "village", person.village_id, people=func.count(), finished=func.count(finished.c.person_id),
        active=func.count().filter(_active(person.id, now)), vneid=func.count().filter(person.vneid_level2 == "yes"),
        assisted=func.count().filter(finished.c.helped > 0),
    ).select_from(_person.outerjoin(finished, finished.c.person_id == person.id))
    homes = part("village", household.village_id, homes=func.count()).select_from(_household)
    # A household counts in its own village, whichever village its finishing member lives in.
    reached = part("village", household.village_id, reached=func.count(distinct(household.id))).select_from(
        finished.join(_person, person.id == finished.c.person_id).join(_household, household.id == person.household_id)
    )
    members = part(
        "organisation", membership.organisation_id, people=func.count(), finished=func.count(finished.c.person_id),
        confirmed=func.count().filter(membership.confirmed), assisted=func.count().filter(finished.c.helped > 0),
    ).select_from(_membership.outerjoin(finished, finished.c.person_id == membership.person_id))
    tallies: dict[tuple[str, int | None], _Tally] = {}
    for row in connection.execute(union_all(people, homes, reached, members)).mappings():
        key = (row["part"], row["unit"])
        tally = _Tally(*(int(row[field.name]) for field in fields(_Tally)))
        tallies[key] = tallies.get(key, _Tally()) + tally
    return tallies


# --- named lists ---------------------------------------------------------------------------------

def household_progress(
    connection: Connection, household_id: int, core_lessons: Sequence[str], zone: tzinfo = UTC
) -> MemberList:
    """The progress of a household's named members, and how many more are only counted."""
    return _member_list(connection, _household_unit(household_id), _core(core_lessons), zone)


def member_rows(
    connection: Connection,
    *,
    organisation_id: int | None = None,
    village_id: int | None = None,
    household_id: int | None = None,
    core_lessons: Sequence[str],
    zone: tzinfo,
) -> MemberList:
    """The named people of exactly one unit (organisation, village or household) with their progress."""
    units = [
        _organisation_unit(organisation_id) if organisation_id is not None else None,
        _village_unit(village_id) if village_id is not None else None,
        _household_unit(household_id) if household_id is not None else None,
    ]
    chosen = [unit for unit in units if unit is not None]
    if len(chosen) != 1:
        raise ValueError("member_rows needs exactly one of organisation_id, village_id, household_id")
    return _member_list(connection, chosen[0], _core(core_lessons), zone)


def _member_list(connection: Connection, unit: _Unit, core: list[str], zone: tzinfo) -> MemberList:
    person_id = _person.c.id
    done, newest = _progress.alias("done"), _activity.alias("newest")
    lessons_done = select(func.count()).where(done.c.person_id == person_id, done.c.status == "completed")
    helped = _progress.alias("helped")
    lessons_helped = select(func.count()).where(helped.c.person_id == person_id, helped.c.status == "completed",
                                                helped.c.assisted.is_(True))
    last_active = select(func.max(newest.c.at)).where(newest.c.person_id == person_id)
    named = _person.c.consent_version >= NAMED_FROM_CONSENT
    rows = connection.execute(
        select(
            person_id, _person.c.full_name, _village.c.name,
            lessons_done.scalar_subquery(),
            _core_done(person_id, core) if core else null(),
            last_active.scalar_subquery(),
            unit.confirmed if unit.confirmed is not None else null(),
            lessons_helped.scalar_subquery(),
        )
        .select_from(unit.source.outerjoin(_village, _village.c.id == _person.c.village_id))
        .where(unit.where, named)
    ).all()
    hidden = connection.execute(
        select(func.count()).select_from(unit.source).where(unit.where, ~named)
    ).scalar_one()
    members = [
        MemberProgress(
            person_id=row[0], name=row[1], village=row[2], lessons_finished=row[3],
            core_finished=row[4] or 0, finished_core=bool(core) and row[4] == len(core),
            last_active=row[5].astimezone(zone) if row[5] is not None else None,
            confirmed=None if unit.confirmed is None else bool(row[6]), lessons_assisted=row[7] or 0,
        )
        for row in rows
    ]
    members.sort(key=lambda member: (name_order(member.name), member.person_id))
    return MemberList(rows=tuple(members), hidden=hidden, core_total=len(core))


# --- Vietnamese name order -----------------------------------------------------------------------

# The Vietnamese alphabet, with the Latin letters it lacks (f j w z, in foreign names) in their places.
_ALPHABET = {letter: index for index, letter in enumerate("aăâbcdđefghijklmnoôơpqrstuưvwxyz")}
# Tones (as combining marks after NFD) in dictionary order: ngang, huyền, hỏi, ngã, sắc, nặng.
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}


def text_order(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sort key of Vietnamese text: letters in the alphabet's order (a ă â b c d đ …) first, tones only
    to break ties, as dictionaries do. Spaces, digits and signs sort before letters, by code point."""
    letters: list[int] = []
    tones: list[int] = []
    for char in unicodedata.normalize("NFC", text.casefold()):
        letter, tone = _letter(char)
        if letter is not None:
            letters.append(letter)
            tones.append(tone)
    return tuple(letters), tuple(tones)


@cache
def _letter(char: str) -> tuple[int | None, int]:
    """(place in the alphabet, tone) of one composed character; None for a stray tone mark. Cached: a
    commune's 10,000 household heads are sorted from a few hundred distinct characters."""
    parts = unicodedata.normalize("NFD", char)
    base = unicodedata.normalize("NFC", "".join(mark for mark in parts if mark not in _TONES))
    if not base:
        return None, 0
    return _ALPHABET.get(base, ord(base[0]) - 0x110000), next((_TONES[mark] for mark in parts if mark in _TONES), 0)


def name_order(name: str | None) -> tuple[object, ...]:
    """Sort key of a Vietnamese full name: by given name (the last word), then the whole name, as
    class and voter lists are ordered; people without a name come last."""
    words = name.split() if name else []
    if not words:
        return (1,)
    given, whole = text_order(words[-1]), text_order(" ".join(words))
    return (0, given[0], whole[0], given[1], whole[1])
