"""What units organise offline (/hoatdong): campaigns, classes, home visits, contests.

A unit is an organisation, a village, or the commune as a whole (both ids None). An activity belongs
to the reporting year that holds its day (`storage.report.period_year_of`): it may be recorded for the
current or the previous reporting year, never for a day still to come, and corrected or removed only
while its year is the current one. Removing keeps the row with `removed_at`; removed rows count nowhere.

What people type is checked here (`ActivityError` carries one polite Vietnamese sentence), so the
chat and the shell refuse the same things. Short reads and writes take the turn's `AsyncSession`; the
counts and the rows for files are synchronous SQLAlchemy Core on one connection, run through
`Database.read` (like storage/figures.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Any, Literal

from sqlalchemy import Table, and_, delete, distinct, func, select
from sqlalchemy.engine import Connection
from sqlmodel import col
from sqlmodel import select as sql_select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.figures import name_order, text_order
from storage.models import (
    ACTIVITY_KINDS,
    Membership,
    Organisation,
    Person,
    UnitActivity,
    UnitActivityMember,
    Village,
)
from storage.report import Period, period_year_of, reporting_period

_activity: Table = UnitActivity.__table__  # type: ignore[attr-defined]
_member: Table = UnitActivityMember.__table__  # type: ignore[attr-defined]
_person: Table = Person.__table__  # type: ignore[attr-defined]
_organisation: Table = Organisation.__table__  # type: ignore[attr-defined]
_village: Table = Village.__table__  # type: ignore[attr-defined]

TITLE_MAX = 160
PLACE_MAX = 120
PARTICIPANTS_MAX = 100_000
NAMED_FROM_CONSENT = 2  # as storage/members.py: only people who agreed that leaders see their name

UnitKind = Literal["commune", "organisation", "village"]
# The fields a correction may change, by their column names (what the audit log's `detail` lists).
FIELDS = ("kind", "held_on", "title", "place", "place_village_id", "participants", "members")

_DATE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*(\d{4}|\d{2}))?", re.ASCII)
_NUMBER = re.compile(r"(\d{1,3}(?:[ .]\d{3})+|\d{1,7})(?:\s*người)?", re.ASCII | re.IGNORECASE)


class ActivityError(ValueError):
    """Input an activity cannot have; the message is one polite Vietnamese sentence."""


# --- checking what people type -----------------------------------------------------------------------

def _day_year(day: date, deadline: tuple[int, int], zone: tzinfo) -> int:
    """The reporting year a day belongs to."""
    return period_year_of(datetime.combine(day, time(12), zone), deadline, zone)


def earliest_day(today: date, deadline: tuple[int, int], zone: tzinfo, *, correcting: bool) -> date:
    """The first day an activity may be held on: the current reporting year's first day when it is
    corrected, the previous year's when it is recorded (a late entry just after the deadline)."""
    year = _day_year(today, deadline, zone)
    return reporting_period(year if correcting else year - 1, deadline, zone).first_day


def is_open(held_on: date, today: date, deadline: tuple[int, int], zone: tzinfo) -> bool:
    """Whether an activity held on `held_on` may still be corrected or removed: its year is the current one."""
    return _day_year(held_on, deadline, zone) == _day_year(today, deadline, zone)


def parse_day(text: str, today: date, deadline: tuple[int, int], zone: tzinfo, *, correcting: bool = False) -> date:
    """'20/10' or '20/10/2026' -> the day; without a year, the latest such day up to today (so '28/12'
    typed in January is last December). Refused: not a date, not a real day, a day still to come, a
    day before `earliest_day`."""
    match = _DATE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if not match:
        raise ActivityError("Mình chưa hiểu ngày này. Bạn gõ ngày theo dạng 20/10 hoặc 20/10/2026 nhé.")
    day, month = int(match.group(1)), int(match.group(2))
    if match.group(3):
        year = int(match.group(3))
        year += 2000 if year < 100 else 0
        try:
            held_on = date(year, month, day)
        except ValueError:
            raise ActivityError(f"Ngày {day:02d}/{month:02d}/{year} không có thật. Bạn gõ lại ngày nhé.") from None
    else:
        held_on = None
        for year in (today.year, today.year - 1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if candidate <= today:
                held_on = candidate
                break
        if held_on is None:
            raise ActivityError(f"Ngày {day:02d}/{month:02d} không có thật. Bạn gõ lại ngày nhé.")
    check_day(held_on, today, deadline, zone, correcting=correcting)
    return held_on


def check_day(held_on: date, today: date, deadline: tuple[int, int], zone: tzinfo, *, correcting: bool = False) -> None:
    if held_on > today:
        raise ActivityError(f"Ngày {held_on:%d/%m/%Y} chưa tới. Bạn chỉ ghi hoạt động đã diễn ra, "
                            f"đến hôm nay ({today:%d/%m/%Y}) nhé.")
    first = earliest_day(today, deadline, zone, correcting=correcting)
    if held_on < first:
        if correcting:
            raise ActivityError(f"Ngày {held_on:%d/%m/%Y} thuộc năm báo cáo đã khép lại. Khi sửa, bạn chọn một "
                                f"ngày từ {first:%d/%m/%Y} đến hôm nay nhé.")
        raise ActivityError(f"Ngày {held_on:%d/%m/%Y} đã quá xa: chỉ ghi được hoạt động của năm báo cáo này và "
                            f"năm trước, từ {first:%d/%m/%Y} đến hôm nay. Bạn gõ lại ngày nhé.")


def _clean(text: str) -> str:
    """Spaces collapsed; control and bidi characters dropped (a title is shown and put in files)."""
    kept = "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co"))
    return " ".join(kept.split())


def clean_title(text: str) -> str:
    title = _clean(text)
    if not title:
        raise ActivityError("Tên hoạt động đang trống. Bạn gõ tên, ví dụ: Tuyên truyền cài đặt VNeID.")
    if len(title) > TITLE_MAX:
        raise ActivityError(f"Tên hoạt động dài quá ({len(title)} ký tự, tối đa {TITLE_MAX}). "
                            "Bạn gõ ngắn hơn nhé.")
    return title


def clean_place(text: str) -> str:
    place = _clean(text)
    if not place:
        raise ActivityError("Nơi tổ chức đang trống. Bạn chọn thôn/xóm hoặc gõ tên nơi, ví dụ: Nhà văn hóa thôn 2.")
    if len(place) > PLACE_MAX:
        raise ActivityError(f"Tên nơi tổ chức dài quá ({len(place)} ký tự, tối đa {PLACE_MAX}). "
                            "Bạn gõ ngắn hơn nhé.")
    return place


def parse_participants(text: str) -> int:
    """'35', '1.200', '1 200', '35 người', '３５' -> the number; 0 to 100.000."""
    match = _NUMBER.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if not match:
        raise ActivityError("Bạn gõ số người tham dự bằng chữ số nhé, ví dụ 35.")
    number = int(re.sub(r"[ .]", "", match.group(1)))
    check_participants(number)
    return number


def check_participants(number: int) -> None:
    if not 0 <= number <= PARTICIPANTS_MAX:
        raise ActivityError(f"Số người tham dự cần từ 0 đến {PARTICIPANTS_MAX:,}. Bạn gõ lại nhé.".replace(",", "."))


def check_kind(kind: str) -> str:
    if kind not in ACTIVITY_KINDS:
        raise ActivityError("Loại hoạt động cần là một trong: " + ", ".join(ACTIVITY_KINDS.values()) + ".")
    return kind


def check_members(participants: int, members: Sequence[int]) -> None:
    if len(members) > participants:
        raise ActivityError(f"Đã ghi tên {len(members)} thành viên có mặt, nhiều hơn số người tham dự "
                            f"({participants}). Bạn sửa số người hoặc bớt tên nhé.")


# --- the unit -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitRef:
    """Whose activity: an organisation, a village, or the commune (both None)."""

    organisation_id: int | None = None
    village_id: int | None = None

    def __post_init__(self) -> None:
        if self.organisation_id is not None and self.village_id is not None:
            raise ValueError("an activity belongs to one unit")

    @property
    def kind(self) -> UnitKind:
        if self.organisation_id is not None:
            return "organisation"
        return "village" if self.village_id is not None else "commune"

    @property
    def key(self) -> tuple[UnitKind, int | None]:
        return self.kind, self.organisation_id if self.organisation_id is not None else self.village_id

    @staticmethod
    def of(activity: UnitActivity) -> UnitRef:
        return UnitRef(activity.organisation_id, activity.village_id)


def _of_unit(unit: UnitRef) -> Any:
    organisation, village = col(UnitActivity.organisation_id), col(UnitActivity.village_id)
    return and_(organisation == unit.organisation_id if unit.organisation_id is not None else organisation.is_(None),
                village == unit.village_id if unit.village_id is not None else village.is_(None))


# --- writing ------------------------------------------------------------------------------------------

async def create(
    session: AsyncSession, *, unit: UnitRef, kind: str, held_on: date, title: str, place: str | None,
    place_village_id: int | None, participants: int, members: Iterable[int] = (), photo_file_id: str | None = None,
    recorded_by: int | None, now: datetime,
) -> UnitActivity:
    """Store a new activity (checked again here: kind, participants, members) and who attended."""
    people = sorted(set(members))
    check_kind(kind)
    check_participants(participants)
    check_members(participants, people)
    activity = UnitActivity(
        organisation_id=unit.organisation_id, village_id=unit.village_id, kind=kind, held_on=held_on,
        title=clean_title(title), place=clean_place(place) if place is not None else None,
        place_village_id=place_village_id, participants=participants, photo_file_id=photo_file_id,
        recorded_by=recorded_by, created_at=now, updated_at=now)
    session.add(activity)
    await session.flush()
    for person_id in people:
        session.add(UnitActivityMember(activity_id=activity.id, person_id=person_id))
    await session.flush()
    return activity


def set_fields(activity: UnitActivity, people: Sequence[int]) -> list[str]:
    """The fields a new activity has: what its `activity_recorded` audit line lists."""
    fields = ["kind", "held_on", "title"]
    fields += ["place_village_id"] if activity.place_village_id is not None else []
    fields += ["place"] if activity.place is not None else []
    fields.append("participants")
    return [*fields, "members"] if people else fields


async def correct(session: AsyncSession, activity: UnitActivity, now: datetime, **changes: Any) -> list[str]:
    """Change some fields (FIELDS; `members` is the new list of person ids); the names of the fields
    that really changed, in FIELDS order (empty: nothing to store)."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a field of an activity: {sorted(unknown)}")
    changed = []
    members = changes.pop("members", None)
    if "kind" in changes:
        check_kind(changes["kind"])
    if "title" in changes:
        changes["title"] = clean_title(changes["title"])
    if changes.get("place") is not None:
        changes["place"] = clean_place(changes["place"])
    participants = changes.get("participants", activity.participants)
    check_participants(participants)
    current = await member_ids(session, activity.id)  # type: ignore[arg-type]
    wanted = sorted(set(members)) if members is not None else current
    check_members(participants, wanted)
    for name in FIELDS:
        if name in changes and getattr(activity, name) != changes[name]:
            setattr(activity, name, changes[name])
            changed.append(name)
    if wanted != current:
        await session.exec(delete(UnitActivityMember).where(  # type: ignore[call-overload]
            col(UnitActivityMember.activity_id) == activity.id,
            col(UnitActivityMember.person_id).not_in(wanted)))
        for person_id in sorted(set(wanted) - set(current)):
            session.add(UnitActivityMember(activity_id=activity.id, person_id=person_id))
        changed.append("members")
    if changed:
        activity.updated_at = now
        session.add(activity)
        await session.flush()
    return changed


async def remove(session: AsyncSession, activity: UnitActivity, now: datetime) -> bool:
    """Mark removed; False when it was removed already."""
    if activity.removed_at is not None:
        return False
    activity.removed_at = now
    activity.updated_at = now
    session.add(activity)
    await session.flush()
    return True


# --- short reads (in a turn) ----------------------------------------------------------------------------

async def get(session: AsyncSession, activity_id: int) -> UnitActivity | None:
    """An activity not removed."""
    activity = await session.get(UnitActivity, activity_id)
    return activity if activity is not None and activity.removed_at is None else None


async def of_unit(session: AsyncSession, unit: UnitRef, period: Period) -> list[UnitActivity]:
    """The unit's activities held in the period, the latest first."""
    statement = (sql_select(UnitActivity)
                 .where(_of_unit(unit), col(UnitActivity.removed_at).is_(None),
                        col(UnitActivity.held_on) >= period.first_day, col(UnitActivity.held_on) <= period.last_day)
                 .order_by(col(UnitActivity.held_on).desc(), col(UnitActivity.id).desc()))
    return list((await session.exec(statement)).all())


async def member_ids(session: AsyncSession, activity_id: int) -> list[int]:
    statement = (sql_select(UnitActivityMember.person_id)
                 .where(UnitActivityMember.activity_id == activity_id).order_by(col(UnitActivityMember.person_id)))
    return [person_id for person_id in (await session.exec(statement)).all() if person_id is not None]


@dataclass(frozen=True)
class Named:
    person_id: int
    name: str


def _named() -> Any:
    return and_(col(Person.consent_version) >= NAMED_FROM_CONSENT, col(Person.full_name).is_not(None))


async def members_present(session: AsyncSession, activity_id: int) -> tuple[list[Named], int]:
    """Who was named as present, by name (people who agreed to show it), and how many more are not shown."""
    statement = (sql_select(Person.id, Person.full_name, Person.consent_version)
                 .join(UnitActivityMember, col(UnitActivityMember.person_id) == col(Person.id))
                 .where(UnitActivityMember.activity_id == activity_id))
    rows = [(pid, name, version >= NAMED_FROM_CONSENT and name is not None)
            for pid, name, version in (await session.exec(statement)).all()]
    named = sorted((Named(pid, name) for pid, name, shown in rows if shown), key=lambda n: name_order(n.name))
    return named, sum(1 for *_, shown in rows if not shown)


async def confirmed_members(session: AsyncSession, organisation_id: int) -> list[Named]:
    """The organisation's confirmed members who agreed to show their name, in the order of a name list."""
    statement = (sql_select(Person.id, Person.full_name)
                 .join(Membership, col(Membership.person_id) == col(Person.id))
                 .where(Membership.organisation_id == organisation_id, col(Membership.confirmed).is_(True), _named()))
    rows = (await session.exec(statement)).all()
    return sorted((Named(pid, name) for pid, name in rows), key=lambda n: name_order(n.name))


# --- long reads (Database.read): counts for the report, rows for files ---------------------------------

@dataclass(frozen=True)
class Totals:
    """What a unit (or the commune) did in a period."""

    activities: int = 0
    participants: int = 0  # attendances: a person at two activities is counted twice
    named_people: int = 0  # distinct members named as present


def _in_period(period: Period) -> Any:
    return and_(_activity.c.removed_at.is_(None), _activity.c.held_on >= period.first_day,
                _activity.c.held_on <= period.last_day)


def _unit_key(organisation_id: int | None, village_id: int | None) -> tuple[UnitKind, int | None]:
    return UnitRef(organisation_id, village_id).key


def activity_totals(connection: Connection, period: Period) -> dict[tuple[UnitKind, int | None], Totals]:
    """Per unit, ("organisation", id), ("village", id) or ("commune", None): the activities held in the
    period, their participants and the distinct people named as present. Units without any are absent."""
    unit = (_activity.c.organisation_id, _activity.c.village_id)
    held = connection.execute(
        select(*unit, func.count(), func.coalesce(func.sum(_activity.c.participants), 0))
        .where(_in_period(period)).group_by(*unit)).all()
    named = connection.execute(
        select(*unit, func.count(distinct(_member.c.person_id)))
        .select_from(_activity.join(_member, _member.c.activity_id == _activity.c.id))
        .where(_in_period(period)).group_by(*unit)).all()
    people = {_unit_key(org, village): count for org, village, count in named}
    return {_unit_key(org, village): Totals(count, int(total), people.get(_unit_key(org, village), 0))
            for org, village, count, total in held}


def commune_totals(connection: Connection, period: Period) -> Totals:
    """Every unit's activities together; a person named at activities of two units is one person."""
    count, total = connection.execute(
        select(func.count(), func.coalesce(func.sum(_activity.c.participants), 0)).where(_in_period(period))).one()
    people = connection.execute(
        select(func.count(distinct(_member.c.person_id)))
        .select_from(_activity.join(_member, _member.c.activity_id == _activity.c.id))
        .where(_in_period(period))).scalar_one()
    return Totals(count, int(total), people)


def initials(name: str | None) -> str:
    """'Nguyễn Văn An' -> 'N.V.A.' (who recorded, in the shell: enough to recognise, not a name)."""
    return "".join(f"{word[0].upper()}." for word in (name or "").split() if word[0].isalpha())


@dataclass(frozen=True)
class ActivityRow:
    """One activity as files and the shell show it."""

    id: int
    unit_kind: UnitKind
    unit_id: int | None
    unit_name: str
    kind: str
    kind_label: str
    held_on: date
    title: str
    place: str  # the village's name or the place typed ("" when none)
    participants: int
    named_count: int  # members named as present
    named: tuple[str, ...]  # their names, of those who agreed to show them
    people: tuple[int, ...]  # the ids of the members named as present (to count people once across rows)
    recorded_by: str  # initials of who recorded it ("" when they erased their data)


def activity_rows(
    connection: Connection, period: Period, commune_name: str, *, unit: UnitRef | None = None,
) -> list[ActivityRow]:
    """The activities held in the period (of one unit, or of all), by unit (the commune first, then
    organisations and villages in Vietnamese order) and day."""
    place = _village.alias("place")
    recorder = _person.alias("recorder")
    statement = (
        select(_activity.c.id, _activity.c.organisation_id, _activity.c.village_id, _organisation.c.name,
               _village.c.name, _activity.c.kind, _activity.c.held_on, _activity.c.title, _activity.c.place,
               place.c.name, _activity.c.participants, recorder.c.full_name)
        .select_from(_activity
                     .outerjoin(_organisation, _organisation.c.id == _activity.c.organisation_id)
                     .outerjoin(_village, _village.c.id == _activity.c.village_id)
                     .outerjoin(place, place.c.id == _activity.c.place_village_id)
                     .outerjoin(recorder, recorder.c.id == _activity.c.recorded_by))
        .where(_in_period(period))
    )
    if unit is not None:
        statement = statement.where(
            _activity.c.organisation_id == unit.organisation_id if unit.organisation_id is not None
            else _activity.c.organisation_id.is_(None),
            _activity.c.village_id == unit.village_id if unit.village_id is not None
            else _activity.c.village_id.is_(None))
    found = connection.execute(statement).all()
    ids = [row[0] for row in found]
    present: dict[int, list[tuple[int, str | None, bool]]] = {activity_id: [] for activity_id in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for activity_id, person_id, name, version in connection.execute(
                select(_member.c.activity_id, _person.c.id, _person.c.full_name, _person.c.consent_version)
                .select_from(_member.join(_person, _person.c.id == _member.c.person_id))
                .where(_member.c.activity_id.in_(chunk))):
            present[activity_id].append((person_id, name, version >= NAMED_FROM_CONSENT and name is not None))
    rows = []
    for (activity_id, org_id, village_id, org_name, village_name, kind, held_on, title, typed_place, place_name,
         participants, recorder_name) in found:
        unit_kind, unit_id = _unit_key(org_id, village_id)
        names = sorted((name for _, name, shown in present[activity_id] if shown and name), key=name_order)
        rows.append(ActivityRow(
            id=activity_id, unit_kind=unit_kind, unit_id=unit_id,
            unit_name=org_name or village_name or commune_name, kind=kind, kind_label=ACTIVITY_KINDS.get(kind, kind),
            held_on=held_on, title=title, place=place_name or typed_place or "", participants=participants,
            named_count=len(present[activity_id]), named=tuple(names),
            people=tuple(sorted(person_id for person_id, *_ in present[activity_id])),
            recorded_by=initials(recorder_name)))
    order = {"commune": 0, "organisation": 1, "village": 2}
    return sorted(rows, key=lambda row: (order[row.unit_kind], text_order(row.unit_name), row.held_on, row.id))


@dataclass(frozen=True)
class UnitTally:
    unit_kind: UnitKind
    unit_id: int | None
    unit_name: str
    totals: Totals


def tally(rows: Sequence[ActivityRow]) -> tuple[list[UnitTally], Totals]:
    """Per unit (in the rows' order) and for all of them: activities, participants and distinct people
    named, counted from the rows themselves (the same figures as `activity_totals` for the same rows)."""
    units: dict[tuple[UnitKind, int | None], tuple[str, list[ActivityRow]]] = {}
    for row in rows:
        units.setdefault((row.unit_kind, row.unit_id), (row.unit_name, []))[1].append(row)

    def totals(of: Sequence[ActivityRow]) -> Totals:
        return Totals(len(of), sum(row.participants for row in of), len({p for row in of for p in row.people}))

    return ([UnitTally(kind, unit_id, name, totals(of)) for (kind, unit_id), (name, of) in units.items()],
            totals(rows))
