"""Thi đua: organisations and villages ranked by the share of their people who finished the core
course, the most improved of the last 30 days, and the people who finished every lesson.

Every function is synchronous SQLAlchemy Core on one connection, run through `Database.read`, and
counts in SQL like storage/figures.py: the people who finished are found in one pass over the lesson
progress, and every unit's counts come from one statement.

Units are counted as storage/figures.py counts them: an organisation's people are its confirmed and
claimed members, a village's its residents; "finished" means every core lesson completed. So the
figures here are the ones /thongke shows for the same moment.

Privacy: the rankings name units only. The list of people who finished everything names a person only
at consent version 2 or later (figures.NAMED_FROM_CONSENT); the others are only counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction

from sqlalchemy import CTE, ColumnElement, Select, Table, case, false, func, literal, select, union_all
from sqlalchemy.engine import Connection

from storage.figures import NAMED_FROM_CONSENT, name_order, text_order
from storage.models import LessonProgress, Membership, Organisation, Person, Village

_person: Table = Person.__table__  # type: ignore[attr-defined]
_membership: Table = Membership.__table__  # type: ignore[attr-defined]
_village: Table = Village.__table__  # type: ignore[attr-defined]
_organisation: Table = Organisation.__table__  # type: ignore[attr-defined]
_progress: Table = LessonProgress.__table__  # type: ignore[attr-defined]

IMPROVEMENT_DAYS = 30

ORGANISATION, VILLAGE = "organisation", "village"


@dataclass(frozen=True)
class Standing:
    """One unit's counts now and `IMPROVEMENT_DAYS` ago."""

    kind: str  # ORGANISATION | VILLAGE
    unit_id: int
    name: str
    people: int  # organisation: confirmed + claimed members; village: residents
    finished: int  # of them, finished the core course
    people_before: int  # of them, registered by the earlier moment
    finished_before: int  # of those, had finished the core course by then

    @property
    def share(self) -> Fraction:
        return Fraction(self.finished, self.people) if self.people else Fraction(0)

    @property
    def share_before(self) -> Fraction:
        """The share at the earlier moment; 0 when nobody of the unit had registered yet."""
        return Fraction(self.finished_before, self.people_before) if self.people_before else Fraction(0)

    @property
    def change(self) -> Fraction:
        return self.share - self.share_before


@dataclass(frozen=True)
class Rankings:
    moment: datetime
    since: datetime  # the earlier moment of the improvement
    min_people: int
    organisations: tuple[Standing, ...]  # units with at least min_people, the best first
    villages: tuple[Standing, ...]
    improved: tuple[Standing, ...]  # ranked units of both kinds whose share rose, the most first
    left_out: int  # organisations and villages with fewer than min_people (none at all included)


def rank_key(standing: Standing) -> tuple[object, ...]:
    """Share, then the number who finished, then the name in Vietnamese order (then the id)."""
    return (-standing.share, -standing.finished, text_order(standing.name), standing.unit_id)


def improvement_key(standing: Standing) -> tuple[object, ...]:
    return (-standing.change, *rank_key(standing))


def rankings(connection: Connection, core_lessons: Sequence[str], now: datetime, min_people: int) -> Rankings:
    """Every organisation and village with at least `min_people` people, ranked by the share who
    finished the core course, and those whose share rose most since `IMPROVEMENT_DAYS` ago.

    Finished as of a moment: every core lesson completed at or before it (a person's completion time
    is the latest `completed_at` of their core lessons). People registered after the earlier moment
    are not in its denominator. Units are the ones of today: a person who moved village counts in
    their present one at both moments.
    """
    since = now - timedelta(days=IMPROVEMENT_DAYS)
    counts = _counts(connection, list(dict.fromkeys(core_lessons)), since)
    names = {
        ORGANISATION: connection.execute(select(_organisation.c.id, _organisation.c.name)).all(),
        VILLAGE: connection.execute(select(_village.c.id, _village.c.name)).all(),
    }
    standings = {
        kind: [Standing(kind, unit_id, name, *counts.get((kind, unit_id), (0, 0, 0, 0))) for unit_id, name in rows]
        for kind, rows in names.items()
    }
    ranked = {kind: sorted((s for s in rows if s.people >= min_people), key=rank_key)
              for kind, rows in standings.items()}
    improved = sorted((s for rows in ranked.values() for s in rows if s.change > 0), key=improvement_key)
    left_out = sum(len(rows) - len(ranked[kind]) for kind, rows in standings.items())
    return Rankings(
        moment=now, since=since, min_people=min_people, organisations=tuple(ranked[ORGANISATION]),
        villages=tuple(ranked[VILLAGE]), improved=tuple(improved), left_out=left_out,
    )


def _finished_at(lessons: list[str], *, scores: bool = False) -> CTE:
    """One row per person who completed every lesson of `lessons`: person_id and done_at, when the
    last of them was completed (NULL when a completion time is missing: finished, but since when is
    not known); with `scores`, score_0, score_1, ... the best score of each lesson. One pass over the
    lesson progress, like figures._finished_people."""
    progress = _progress.c
    # The conditions in FILTER, not WHERE (as figures._finished_people has them): SQLite then walks the
    # progress in person order along the person_id index and groups without sorting, where WHERE
    # lesson_id IN (...) makes it look each lesson up by its own index and sort (30,000 people: 0.25 s
    # against 0.7 s).
    completed = (progress.status == "completed", progress.lesson_id.in_(lessons))
    timed = func.count(progress.completed_at).filter(*completed)
    done_at = case((timed == len(lessons), func.max(progress.completed_at).filter(*completed)))
    # Only the people kept have scores read, and each of their lessons is completed: the lesson is enough.
    best = [func.max(progress.best_score).filter(progress.lesson_id == lesson).label(f"score_{index}")
            for index, lesson in enumerate(lessons)] if scores else []
    query = (
        select(progress.person_id, done_at.label("done_at"), *best)
        .group_by(progress.person_id)
        .having(func.count().filter(*completed) == len(lessons))
    )
    return (query if lessons else query.where(false())).cte("finished")


Counts = dict[tuple[str, int], tuple[int, int, int, int]]


def _counts(connection: Connection, core: list[str], since: datetime) -> Counts:
    """(kind, unit id) -> (people, finished, people then, finished then), in one statement."""
    finished = _finished_at(core)
    person = _person.c
    registered = person.created_at <= since
    done_then = registered & (finished.c.done_at <= since)

    def part(kind: str, unit: ColumnElement[int | None]) -> Select[tuple[str, int, int, int, int, int]]:
        return select(
            literal(kind).label("kind"), unit.label("unit"), func.count().label("people"),
            func.count(finished.c.person_id).label("finished"), func.count().filter(registered).label("before"),
            func.count().filter(done_then).label("finished_before"),
        ).where(unit.is_not(None)).group_by(unit)

    villages = part(VILLAGE, person.village_id).select_from(
        _person.outerjoin(finished, finished.c.person_id == person.id))
    # One membership row per person and organisation (unique constraint): each member counts once.
    organisations = part(ORGANISATION, _membership.c.organisation_id).select_from(
        _membership.join(_person, person.id == _membership.c.person_id)
        .outerjoin(finished, finished.c.person_id == person.id))
    return {(row.kind, row.unit): (row.people, row.finished, row.before, row.finished_before)
            for row in connection.execute(union_all(villages, organisations))}


# --- the people who finished everything ---------------------------------------------------------

@dataclass(frozen=True)
class Honoured:
    """A named person who finished every lesson, with their best score in each."""

    person_id: int
    name: str | None  # None: agreed to be named but never gave a name
    village: str | None
    organisations: tuple[tuple[str, bool], ...]  # (name, confirmed), in Vietnamese order
    finished_at: datetime | None  # when the last lesson was completed, in the zone asked for
    scores: tuple[int | None, ...]  # best score per lesson, in the order of HonoursList.lessons

    @property
    def average(self) -> float | None:
        known = [score for score in self.scores if score is not None]
        return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class HonoursList:
    lessons: tuple[str, ...]  # every lesson of every course, in course order
    rows: tuple[Honoured, ...]  # in Vietnamese name order
    hidden: int  # people who finished everything but are not named (consent before version 2)


def finished_everything(connection: Connection, lessons: Sequence[str], zone: tzinfo = UTC) -> HonoursList:
    """The people who completed every lesson of `lessons` (all the catalog's), for the commune's
    khen thưởng proposals: named ones with their best scores, the others only counted.

    Two statements: the people with their scores (one pass over the lesson progress, the best score
    of each lesson taken in the same grouping), and the memberships of the named ones.
    """
    lessons = list(dict.fromkeys(lessons))
    finished = _finished_at(lessons, scores=True)
    person = _person.c
    named = person.consent_version >= NAMED_FROM_CONSENT
    people = finished.join(_person, person.id == finished.c.person_id)
    rows = connection.execute(
        select(
            person.id, named.label("named"),
            case((named, person.full_name)).label("name"),  # a name not agreed to be shown stays in the database
            case((named, _village.c.name)).label("village"), finished.c.done_at,
            *(finished.c[f"score_{index}"] for index in range(len(lessons))),
        ).select_from(people.outerjoin(_village, _village.c.id == person.village_id))
    ).all()
    memberships: dict[int, list[tuple[str, bool]]] = {}
    for person_id, organisation, confirmed in connection.execute(
        select(person.id, _organisation.c.name, _membership.c.confirmed)
        .select_from(people.join(_membership, _membership.c.person_id == person.id)
                     .join(_organisation, _organisation.c.id == _membership.c.organisation_id))
        .where(named)
    ):
        memberships.setdefault(person_id, []).append((organisation, bool(confirmed)))
    order = {name: text_order(name) for name in {name for entries in memberships.values() for name, _ in entries}}
    honoured = [
        Honoured(
            person_id=row[0], name=row.name, village=row.village,
            organisations=tuple(sorted(memberships.get(row[0], []), key=lambda item: order[item[0]])),
            finished_at=row.done_at.astimezone(zone) if row.done_at is not None else None,
            scores=tuple(row[5:]),
        )
        for row in rows if row.named
    ]
    keys = {name: name_order(name) for name in {row.name for row in honoured}}  # a commune repeats names
    honoured.sort(key=lambda row: (keys[row.name], row.person_id))
    return HonoursList(lessons=tuple(lessons), rows=tuple(honoured), hidden=len(rows) - len(honoured))
