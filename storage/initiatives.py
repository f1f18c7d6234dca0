"""Initiatives (sáng kiến, cách làm hay): what people typed checked, proposals stored and corrected,
staff's recognition, the lists people may see, and the counts of a reporting period.

Who sees what is decided here in one place (`may_see`, `may_correct`): an initiative not yet recognised
is seen by its proposer and by staff only; once recognised, by everyone registered. Its proposer may
correct it until it is recognised. Every change is one conditional UPDATE, so a correction that races
a recognition (or two staff pressing at once) changes nothing twice.

The unit of an initiative is an organisation, a village, or neither (the commune: "không thuộc đơn vị
nào"). Lists for the export and the CLI, and the counts for the yearly report, are synchronous
SQLAlchemy Core on one connection, run through `Database.read`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Literal

from sqlalchemy import ColumnElement, Table, and_, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Initiative, Membership, Organisation, Person, RoleGrant, Village, column_length
from storage.report import Period

_initiative: Table = Initiative.__table__  # type: ignore[attr-defined]
_organisation: Table = Organisation.__table__  # type: ignore[attr-defined]
_village: Table = Village.__table__  # type: ignore[attr-defined]

FIELDS = ("title", "authors", "description", "result")
"""The typed fields of an initiative, in the order they are asked."""
ONE_LINE = frozenset({"title", "authors"})
LIMITS = {field: column_length(Initiative, field) for field in FIELDS}
TITLE_MIN = 3
LABELS = {
    "title": "Tên sáng kiến",
    "authors": "Tên tác giả",
    "description": "Phần nội dung",
    "result": "Phần kết quả",
}
# Invisible characters that turn text around or hide it (bidi overrides and isolates): a typed title
# must read in the export as it reads in the chat.
_HIDDEN = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

UnitKind = Literal["commune", "organisation", "village"]


class InitiativeError(ValueError):
    """Text an initiative cannot hold; the message is one polite Vietnamese sentence."""


# --- what people type -------------------------------------------------------------------------------

def clean(field: str, text: str) -> str:
    """The text of `field` as it is stored: control and hidden characters dropped, spaces collapsed (a
    title or the authors on one line; the description and the result keep their lines, at most one
    blank line between paragraphs), within the column's length. Raises InitiativeError otherwise."""
    label = LABELS[field]
    lines_kept = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    visible = "".join(" " if char != "\n" and char.isspace() else char for char in lines_kept
                      if char == "\n" or char.isspace() or (unicodedata.category(char) != "Cc" and char not in _HIDDEN))
    if field in ONE_LINE:
        value = " ".join(visible.split())
    else:
        lines = [" ".join(line.split()) for line in visible.split("\n")]
        kept: list[str] = []
        for line in lines:
            if line or (kept and kept[-1]):
                kept.append(line)
        value = "\n".join(kept).strip("\n")
    if not value:
        raise InitiativeError(f"{label} đang trống. Bạn gõ lại giúp mình nhé.")
    if not any(char.isalnum() for char in value):
        raise InitiativeError(f"Mình chưa thấy chữ nào trong {label[0].lower()}{label[1:]}. Bạn gõ lại giúp mình nhé.")
    if len(value) > LIMITS[field]:
        raise InitiativeError(f"{label} dài quá ({len(value)} ký tự, tối đa {LIMITS[field]}). "
                              "Bạn gõ ngắn lại giúp mình nhé.")
    if field == "title" and len(value) < TITLE_MIN:
        raise InitiativeError("Tên sáng kiến ngắn quá. Bạn gõ rõ hơn một chút nhé, "
                              "ví dụ: Nhóm Zalo hướng dẫn người cao tuổi cài VNeID.")
    return value


# --- who sees and changes what ----------------------------------------------------------------------

def may_see(initiative: Initiative, person_id: int | None, staff: bool) -> bool:
    """A recognised initiative is everyone's; before that, only its proposer's and staff's."""
    if person_id is None:
        return False
    return initiative.recognised_at is not None or staff or initiative.proposed_by == person_id


def may_correct(initiative: Initiative, person_id: int | None) -> bool:
    """Only its proposer, and only until it is recognised."""
    return person_id is not None and initiative.proposed_by == person_id and initiative.recognised_at is None


# --- the units a person may propose for -------------------------------------------------------------

@dataclass(frozen=True)
class UnitChoice:
    """A unit an initiative may belong to: `kind` and `unit_id` (None for the commune) and its name."""

    kind: UnitKind
    unit_id: int | None
    name: str


async def unit_choices(session: AsyncSession, person: Person) -> list[UnitChoice]:
    """The organisations the person belongs to (claimed or confirmed) or leads, then their village, in
    the directory's order. The commune ("không thuộc đơn vị nào") is always possible and is not listed."""
    member_of = select(Membership.organisation_id).where(Membership.person_id == person.id)
    leads = select(RoleGrant.organisation_id).where(
        RoleGrant.person_id == person.id, RoleGrant.role == "leader", col(RoleGrant.revoked_at).is_(None),
        col(RoleGrant.organisation_id).is_not(None))
    organisations = (await session.exec(
        select(Organisation).where(or_(col(Organisation.id).in_(member_of), col(Organisation.id).in_(leads)))
        .order_by(col(Organisation.id)))).all()
    choices = [UnitChoice("organisation", organisation.id, organisation.name) for organisation in organisations]
    if person.village_id is not None:
        village = await session.get(Village, person.village_id)
        if village is not None:
            choices.append(UnitChoice("village", village.id, village.name))
    return choices


def unit_columns(kind: UnitKind, unit_id: int | None) -> dict[str, int | None]:
    """The initiative's `organisation_id` and `village_id` for a unit."""
    return {"organisation_id": unit_id if kind == "organisation" else None,
            "village_id": unit_id if kind == "village" else None}


async def unit_name(session: AsyncSession, initiative: Initiative) -> str | None:
    """The name of the initiative's organisation or village; None for the commune (or a unit gone)."""
    if initiative.organisation_id is not None:
        organisation = await session.get(Organisation, initiative.organisation_id)
        return organisation.name if organisation else None
    if initiative.village_id is not None:
        village = await session.get(Village, initiative.village_id)
        return village.name if village else None
    return None


# --- proposing and correcting -----------------------------------------------------------------------

async def propose(session: AsyncSession, *, person_id: int, title: str, authors: str, kind: UnitKind,
                  unit_id: int | None, description: str, result: str, now: datetime) -> Initiative:
    """Store a new proposal (its text already `clean`ed)."""
    initiative = Initiative(title=title, authors=authors, description=description, result=result,
                            proposed_by=person_id, created_at=now, updated_at=now, **unit_columns(kind, unit_id))
    session.add(initiative)
    await session.flush()
    return initiative


def _correctable(initiative_id: int, person_id: int) -> ColumnElement[bool]:
    return and_(col(Initiative.id) == initiative_id, col(Initiative.proposed_by) == person_id,
                col(Initiative.recognised_at).is_(None))


async def correct(session: AsyncSession, initiative_id: int, person_id: int, field: str, value: str,
                  now: datetime) -> bool:
    """Change one typed field of the person's own initiative; False when it is not theirs, is gone, or
    was recognised meanwhile."""
    if field not in FIELDS:
        raise ValueError(field)
    result = await session.exec(update(Initiative).where(_correctable(initiative_id, person_id))
                                .values({field: value, "updated_at": now}))
    return result.rowcount == 1


async def move(session: AsyncSession, initiative_id: int, person_id: int, kind: UnitKind, unit_id: int | None,
               now: datetime) -> bool:
    """Change the unit of the person's own initiative; False as for `correct`."""
    result = await session.exec(update(Initiative).where(_correctable(initiative_id, person_id))
                                .values(updated_at=now, **unit_columns(kind, unit_id)))
    return result.rowcount == 1


async def recognise(session: AsyncSession, initiative_id: int, staff_id: int, now: datetime) -> bool:
    """Mark it recognised; False when it is gone or already recognised."""
    result = await session.exec(
        update(Initiative).where(col(Initiative.id) == initiative_id, col(Initiative.recognised_at).is_(None))
        .values(recognised_at=now, recognised_by=staff_id))
    return result.rowcount == 1


async def unrecognise(session: AsyncSession, initiative_id: int) -> bool:
    """Take a recognition back; False when it is gone or not recognised."""
    result = await session.exec(
        update(Initiative).where(col(Initiative.id) == initiative_id, col(Initiative.recognised_at).is_not(None))
        .values(recognised_at=None, recognised_by=None))
    return result.rowcount == 1


# --- the lists in chat ------------------------------------------------------------------------------

ListKind = Literal["mine", "recognised", "all"]


def _where(kind: ListKind, person_id: int) -> ColumnElement[bool]:
    if kind == "mine":
        return col(Initiative.proposed_by) == person_id
    if kind == "recognised":
        return col(Initiative.recognised_at).is_not(None)
    return col(Initiative.id).is_not(None)


async def count(session: AsyncSession, kind: ListKind, person_id: int) -> int:
    return (await session.exec(select(func.count()).select_from(Initiative).where(_where(kind, person_id)))).one()


async def count_waiting(session: AsyncSession, person_id: int | None = None) -> int:
    """Initiatives not yet recognised: the person's own, or (None) everyone's."""
    where = [col(Initiative.recognised_at).is_(None)]
    if person_id is not None:
        where.append(col(Initiative.proposed_by) == person_id)
    return (await session.exec(select(func.count()).select_from(Initiative).where(*where))).one()


async def page(session: AsyncSession, kind: ListKind, person_id: int, offset: int, limit: int) -> list[Initiative]:
    """One page of a list: one's own newest first; the recognised ones newest recognised first; all of
    them (staff) those still waiting first, each part newest first."""
    newest = col(Initiative.id).desc()
    if kind == "recognised":
        order = [col(Initiative.recognised_at).desc(), newest]
    elif kind == "all":
        order = [col(Initiative.recognised_at).is_not(None), newest]
    else:
        order = [newest]
    statement = select(Initiative).where(_where(kind, person_id)).order_by(*order).offset(offset).limit(limit)
    return list((await session.exec(statement)).all())


# --- the export and the CLI (Database.read) ---------------------------------------------------------

@dataclass(frozen=True)
class InitiativeRow:
    """One initiative as the export lists it: plain data, dates in the commune's zone."""

    id: int
    title: str
    authors: str
    unit: str | None  # None: not of a unit (the commune)
    description: str
    result: str
    proposed_on: date
    recognised_on: date | None


def _in(column: ColumnElement[datetime] | object, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)  # type: ignore[operator]


def initiative_rows(connection: Connection, zone: tzinfo, *, period: Period | None = None,
                    recognised_only: bool = False) -> list[InitiativeRow]:
    """The initiatives in the order they were proposed.

    With `period`: those proposed in it, or recognised in it (everything that happened in that reporting
    year); with `recognised_only` as well, those recognised in it. Without a period: all of them, or all
    recognised ones.
    """
    proposed, recognised = _initiative.c.created_at, _initiative.c.recognised_at
    where: list[ColumnElement[bool]] = []
    if period is not None:
        where.append(_in(recognised, period) if recognised_only else or_(_in(proposed, period),
                                                                          _in(recognised, period)))
    elif recognised_only:
        where.append(recognised.is_not(None))
    unit = func.coalesce(_organisation.c.name, _village.c.name)
    statement = (
        core_select(_initiative.c.id, _initiative.c.title, _initiative.c.authors, unit, _initiative.c.description,
               _initiative.c.result, proposed, recognised)
        .select_from(_initiative
                     .outerjoin(_organisation, _organisation.c.id == _initiative.c.organisation_id)
                     .outerjoin(_village, _village.c.id == _initiative.c.village_id))
        .where(*where)
        .order_by(proposed, _initiative.c.id)
    )
    return [InitiativeRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6].astimezone(zone).date(),
                          row[7].astimezone(zone).date() if row[7] is not None else None)
            for row in connection.execute(statement)]


# --- the yearly report (Database.read) ----------------------------------------------------------------

@dataclass(frozen=True)
class InitiativeTotal:
    """One unit's initiatives in a period: `kind` "commune" (no unit) has `unit_id` None."""

    kind: UnitKind
    unit_id: int | None
    name: str | None  # the organisation's or village's name; None for the commune
    proposed: int  # proposed in the period
    recognised: int  # recognised in the period (whenever proposed)


@dataclass(frozen=True)
class InitiativeTotals:
    units: tuple[InitiativeTotal, ...]  # units with any initiative: organisations, villages, then the commune
    proposed: int  # the commune's totals: the sums of the units' (an initiative has one unit)
    recognised: int


def initiative_totals(connection: Connection, period: Period) -> InitiativeTotals:
    """Per unit, the initiatives proposed in `period` and those recognised in it, counted in one statement.

    An initiative proposed in one year and recognised in the next counts as proposed in the first and
    recognised in the second. People who erased their data took their initiatives with them.
    """
    proposed_in, recognised_in = _in(_initiative.c.created_at, period), _in(_initiative.c.recognised_at, period)
    organisation_id, village_id = _initiative.c.organisation_id, _initiative.c.village_id
    statement = (core_select(organisation_id, village_id, func.count().filter(proposed_in),
                        func.count().filter(recognised_in))
                 .where(or_(proposed_in, recognised_in))
                 .group_by(organisation_id, village_id))
    units: dict[tuple[UnitKind, int | None], tuple[int, int]] = {}
    for organisation, village, proposed, recognised in connection.execute(statement):
        key: tuple[UnitKind, int | None] = (
            ("organisation", organisation) if organisation is not None
            else ("village", village) if village is not None else ("commune", None))
        before = units.get(key, (0, 0))
        units[key] = (before[0] + proposed, before[1] + recognised)
    names = {
        "organisation": _names(connection, _organisation, {i for kind, i in units if kind == "organisation"}),
        "village": _names(connection, _village, {i for kind, i in units if kind == "village"}),
    }
    order = {"organisation": 0, "village": 1, "commune": 2}
    lines = tuple(
        InitiativeTotal(kind, unit_id, names[kind].get(unit_id) if unit_id is not None else None,  # type: ignore[arg-type]
                        proposed, recognised)
        for (kind, unit_id), (proposed, recognised) in sorted(units.items(),
                                                              key=lambda item: (order[item[0][0]], item[0][1] or 0)))
    return InitiativeTotals(lines, sum(line.proposed for line in lines), sum(line.recognised for line in lines))


def _names(connection: Connection, table: Table, ids: set[int | None]) -> dict[int, str]:
    if not ids:
        return {}
    statement = core_select(table.c.id, table.c.name).where(table.c.id.in_(ids))
    return {row[0]: row[1] for row in connection.execute(statement)}
