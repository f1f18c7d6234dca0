"""The households of a village still to visit: nobody in them has finished the core course yet.

For the village head and the Tổ công nghệ số cộng đồng going door to door (handlers/visits.py). Every
household of the village counts, the directory's (`Household.in_directory`, with the head's name as the
commune listed it, registered in or not) and those made in chat. A household is reached when one of its
members completed every core lesson that counts at the moment asked (`Services.core_lessons(now)`), the
same test as `storage.figures.village_figures`, so "households known minus households reached" here is the
number /thongke shows.

Synchronous SQLAlchemy Core on one connection, run through `Database.read` (one snapshot): the counts and
the rows come from the same moment. Counting happens in SQL; Python only groups the few names and sorts.

Privacy: a household is named by the head's name from the directory; only where the directory has none
(a household made in chat) by its registered members who agreed to be named (consent version 2), and the
progress shown is theirs only. People at consent version 1 are only counted. Household codes are never
read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, exists, func, select
from sqlalchemy.engine import Connection

from storage.figures import NAMED_FROM_CONSENT, _core, _core_done, _finished, name_order
from storage.models import Household, Person

_person: Table = Person.__table__  # type: ignore[attr-defined]
_household: Table = Household.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HouseholdToVisit:
    """One household where nobody has finished the core course. `household_id` is for ordering and
    tests only; it is never shown (and the household's code is not even read)."""

    household_id: int
    head_name: str | None  # as the directory lists the head; None for a household made in chat
    named_members: tuple[str, ...]  # registered members who agreed to be named (asked only without head_name)
    in_directory: bool
    listed_size: int | None  # people in the household as the directory lists them
    registered: int  # people registered in it, named or not
    best_core: int | None  # most core lessons completed by one named member; None: nobody named

    @property
    def names(self) -> tuple[str, ...]:
        """What the household is called in the list: the directory's head, else its named members."""
        return (self.head_name,) if self.head_name else self.named_members


@dataclass(frozen=True)
class VisitList:
    """A village's households: how many, how many reached, and the rows of those still to visit."""

    village_id: int
    households: int  # every household of the village (directory and chat)
    reached: int  # of those, with a member who finished the core course
    rows: tuple[HouseholdToVisit, ...]  # the others, named ones in Vietnamese name order, unnamed last
    core_total: int

    @property
    def to_visit(self) -> int:
        return len(self.rows)

    @property
    def nobody_registered(self) -> int:
        return sum(row.registered == 0 for row in self.rows)


def _reached(household_id: ColumnElement[int], core: list[str]) -> ColumnElement[bool]:
    """A member of the household (wherever they live) completed every core lesson."""
    member = _person.alias("finisher")
    return exists().where(member.c.household_id == household_id, _finished(member.c.id, core))


def households_to_visit(connection: Connection, village_id: int, core_lessons: Sequence[str]) -> VisitList:
    """The village's households where nobody finished `core_lessons`, with what a visitor needs."""
    core = _core(core_lessons)
    house = _household.c
    in_village = house.village_id == village_id
    reached = _reached(house.id, core)
    known, done = connection.execute(
        select(func.count(), func.count().filter(reached)).select_from(_household).where(in_village)
    ).one()

    member = _person.alias("member")
    registered = select(func.count()).where(member.c.household_id == house.id).scalar_subquery()
    named = _person.alias("named")
    best = (
        select(func.max(_core_done(named.c.id, core)))
        .where(named.c.household_id == house.id, named.c.consent_version >= NAMED_FROM_CONSENT)
        .scalar_subquery()
    )
    households = connection.execute(
        select(house.id, house.head_name, house.in_directory, house.member_count, registered, best)
        .where(in_village, ~reached)
    ).all()

    # Names only where the directory gives none: the members who agreed to be named, the head first.
    person = _person.c
    names: dict[int, list[tuple[bool, str]]] = {}
    for household_id, full_name, is_head in connection.execute(
        select(person.household_id, person.full_name, person.is_household_head)
        .select_from(_person.join(_household, house.id == person.household_id))
        .where(in_village, ~reached, house.head_name.is_(None),
               person.consent_version >= NAMED_FROM_CONSENT, person.full_name.is_not(None))
    ):
        if full_name.strip():
            names.setdefault(household_id, []).append((bool(is_head), full_name))

    rows = [
        HouseholdToVisit(
            household_id=household_id, head_name=head_name or None,
            named_members=tuple(name for _, name in sorted(
                names.get(household_id, []), key=lambda item: (not item[0], name_order(item[1])))),
            in_directory=bool(in_directory), listed_size=listed_size, registered=int(count),
            best_core=int(most) if most is not None else None,
        )
        for household_id, head_name, in_directory, listed_size, count, most in households
    ]
    rows.sort(key=lambda row: (name_order(row.names[0] if row.names else None), row.household_id))
    return VisitList(village_id=village_id, households=int(known), reached=int(done), rows=tuple(rows),
                     core_total=len(core))
