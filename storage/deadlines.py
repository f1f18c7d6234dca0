"""Deadlines, their reminder moments, who is reminded, and which units handed in.

A deadline is yearly (`year` None: every year on day/month) or one-off. Each occurrence (its due date
in one year) has reminders `remind_days` days before at `remind_hour`:00 in the commune's zone. A
reminder is due from its moment for `grace` (a process that was stopped catches up, saying it is late)
and never once its deadline's day has ended. Units that marked their report handed in for an occurrence
(`HandIn`) are reminded no more for it.

Everything here is pure or a short query; the figures in a reminder are counted elsewhere
(handlers/deadlines.py, through `Database.read`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.access import STAFF_ROLES
from storage.models import Deadline, HandIn, Organisation, RoleGrant, Village

DEFAULT_TITLE = 'Báo cáo kết quả thực hiện Phong trào "Bình dân học vụ số"'
DEFAULT_DAYS = (30, 14, 7, 3, 1, 0)
DEFAULT_HOUR = 8
AUDIENCES = ("all", "organisations", "staff")
TITLE_MAX = 200
MAX_DAYS_BEFORE = 365
FIRST_YEAR, LAST_YEAR = 2000, 2100
# The scheduler runs every 5 minutes: a reminder sent within this time of its moment is on time.
LATE_AFTER = timedelta(minutes=10)

_handin = HandIn.__table__  # type: ignore[attr-defined]
_DATE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*(\d{4}))?", re.ASCII)


class DeadlineError(ValueError):
    """Input a deadline cannot have; the message is one polite Vietnamese sentence."""


# --- checking what people type ---------------------------------------------------------------------

def parse_date(text: str) -> tuple[int, int, int | None]:
    """'10/12' -> (10, 12, None) (every year); '15/06/2027' -> (15, 6, 2027) (once)."""
    # NFKC: a phone keyboard's full-width "１０／１２" is 10/12.
    match = _DATE.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if not match:
        raise DeadlineError("Mình chưa hiểu ngày này. Bạn gõ theo dạng 10/12 (hằng năm) "
                            "hoặc 15/06/2027 (một lần) nhé.")
    day, month = int(match.group(1)), int(match.group(2))
    year = int(match.group(3)) if match.group(3) else None
    check_date(day, month, year)
    return day, month, year


def check_date(day: int, month: int, year: int | None) -> None:
    if year is not None and not FIRST_YEAR <= year <= LAST_YEAR:
        raise DeadlineError(f"Năm cần từ {FIRST_YEAR} đến {LAST_YEAR}. Bạn gõ lại ngày nhé.")
    if year is None and (day, month) == (29, 2):
        raise DeadlineError("Ngày 29/02 không có trong mọi năm. Bạn chọn ngày khác, hoặc ghi rõ năm (29/02/2028).")
    try:
        date(year or 2024, month, day)  # 2024: a leap year, so only 29/02 of a given year is checked by it
    except ValueError:
        raise DeadlineError(f"Ngày {day:02d}/{month:02d} không có thật. Bạn gõ lại ngày nhé.") from None


def check_future(day: int, month: int, year: int | None, today: date) -> None:
    """A one-off deadline must not be already past (a yearly one always has a next occurrence)."""
    if year is not None and date(year, month, day) < today:
        raise DeadlineError(f"Ngày {day:02d}/{month:02d}/{year} đã qua. Bạn gõ một ngày từ hôm nay trở đi nhé.")


def clean_title(text: str) -> str:
    title = " ".join(text.split())
    if not title:
        raise DeadlineError("Tên hạn chót đang trống. Bạn gõ tên, ví dụ: Sơ kết 2027.")
    if len(title) > TITLE_MAX:
        raise DeadlineError(f"Tên hạn chót dài quá ({len(title)} ký tự, tối đa {TITLE_MAX}). Bạn gõ ngắn hơn nhé.")
    return title


def check_days(days: Iterable[int]) -> list[int]:
    """The days before, without repeats, the earliest reminder first."""
    unique = sorted(set(days), reverse=True)
    if not unique:
        raise DeadlineError("Cần ít nhất một ngày nhắc (0 là đúng ngày hạn).")
    if any(not 0 <= day <= MAX_DAYS_BEFORE for day in unique):
        raise DeadlineError(f"Ngày nhắc cần từ 0 (đúng ngày hạn) đến {MAX_DAYS_BEFORE} ngày trước hạn.")
    return unique


def check_hour(hour: int) -> int:
    if not 0 <= hour <= 23:
        raise DeadlineError("Giờ nhắc cần từ 0 đến 23.")
    return hour


def check_audience(audience: str, organisation_ids: Sequence[int]) -> None:
    if audience not in AUDIENCES:
        raise DeadlineError(f"Người nhận cần là một trong: {', '.join(AUDIENCES)}.")
    if audience == "organisations" and not organisation_ids:
        raise DeadlineError("Cần chọn ít nhất một tổ chức phải nộp báo cáo.")
    if audience != "organisations" and organisation_ids:
        raise DeadlineError("Chỉ chọn tổ chức khi người nhận là một số tổ chức (organisations).")


# --- the table -------------------------------------------------------------------------------------

async def active_deadlines(session: AsyncSession) -> list[Deadline]:
    """Deadlines not removed, paused ones included, in the order they were made."""
    statement = select(Deadline).where(col(Deadline.removed_at).is_(None)).order_by(col(Deadline.id))
    return list((await session.exec(statement)).all())


async def active_deadline(session: AsyncSession, deadline_id: int) -> Deadline | None:
    deadline = await session.get(Deadline, deadline_id)
    return deadline if deadline is not None and deadline.removed_at is None else None


async def add_deadline(
    session: AsyncSession, *, title: str, day: int, month: int, year: int | None, now: datetime, zone: tzinfo,
    remind_days: Iterable[int] = DEFAULT_DAYS, remind_hour: int = DEFAULT_HOUR, audience: str = "all",
    organisation_ids: Sequence[int] = (), created_by: int | None = None,
) -> Deadline:
    """Check everything (raising DeadlineError) and store a new deadline."""
    title = clean_title(title)
    check_date(day, month, year)
    check_future(day, month, year, now.astimezone(zone).date())
    check_audience(audience, organisation_ids)
    deadline = Deadline(title=title, day=day, month=month, year=year, remind_days=check_days(remind_days),
                        remind_hour=check_hour(remind_hour), audience=audience,
                        organisation_ids=sorted(set(organisation_ids)), created_at=now, created_by=created_by)
    session.add(deadline)
    await session.flush()
    return deadline


async def edit_deadline(
    session: AsyncSession, deadline_id: int, *, now: datetime, zone: tzinfo, title: str | None = None,
    when: tuple[int, int, int | None] | None = None, remind_days: Iterable[int] | None = None,
    remind_hour: int | None = None, paused: bool | None = None,
) -> Deadline | None:
    """Change what is given (checked, raising DeadlineError); None when there is no such active deadline."""
    deadline = await active_deadline(session, deadline_id)
    if deadline is None:
        return None
    if title is not None:
        deadline.title = clean_title(title)
    if when is not None:
        day, month, year = when
        check_date(day, month, year)
        check_future(day, month, year, now.astimezone(zone).date())
        deadline.day, deadline.month, deadline.year = day, month, year
    if remind_days is not None:
        deadline.remind_days = check_days(remind_days)  # a new list, so the JSON column is seen as changed
    if remind_hour is not None:
        deadline.remind_hour = check_hour(remind_hour)
    if paused is not None:
        deadline.paused = paused
    session.add(deadline)
    await session.flush()
    return deadline


async def remove_deadline(session: AsyncSession, deadline_id: int, now: datetime) -> Deadline | None:
    """Soft removal: the row stays (with `removed_at`), so the default deadline is never seeded again."""
    deadline = await active_deadline(session, deadline_id)
    if deadline is None:
        return None
    deadline.removed_at = now
    session.add(deadline)
    await session.flush()
    return deadline


async def seed_default(session: AsyncSession, deadline: tuple[int, int], now: datetime) -> Deadline | None:
    """The yearly report's deadline, made only when no deadline was ever stored (one staff removed
    stays removed); None when there was one."""
    if (await session.exec(select(func.count()).select_from(Deadline))).one():
        return None
    day, month = deadline
    seeded = Deadline(title=DEFAULT_TITLE, day=day, month=month, year=None, remind_days=list(DEFAULT_DAYS),
                      remind_hour=DEFAULT_HOUR, audience="all", organisation_ids=[], created_at=now)
    session.add(seeded)
    await session.flush()
    return seeded


# --- occurrences and moments ------------------------------------------------------------------------

def occurrence(deadline: Deadline, year: int) -> date | None:
    """The deadline's due date in `year`; None when it has none that year."""
    if deadline.year is not None and deadline.year != year:
        return None
    try:
        return date(year, deadline.month, deadline.day)
    except ValueError:  # 29/02 of a one-off year that has none: refused when stored, kept safe here
        return None


def next_occurrence(deadline: Deadline, today: date) -> date | None:
    """The first due date from `today` on (the due day itself is still open); None once a one-off passed."""
    for year in (today.year, today.year + 1):
        due = occurrence(deadline, year)
        if due is not None and due >= today:
            return due
    return None


def is_occurrence(deadline: Deadline, due_on: date) -> bool:
    return occurrence(deadline, due_on.year) == due_on


def day_end(due_on: date, zone: tzinfo) -> datetime:
    """The first moment after the due day, in UTC: nothing is sent for it from then on."""
    return datetime.combine(due_on + timedelta(days=1), time(), zone).astimezone(UTC)


def reminder_moment(due_on: date, days_before: int, hour: int, zone: tzinfo) -> datetime:
    """`days_before` days before `due_on`, at `hour`:00 local time, in UTC."""
    return datetime.combine(due_on - timedelta(days=days_before), time(hour), zone).astimezone(UTC)


def days_left(due_on: date, now: datetime, zone: tzinfo) -> int:
    return (due_on - now.astimezone(zone).date()).days


@dataclass(frozen=True)
class DueReminder:
    """One reminder of one occurrence, due now."""

    deadline_id: int
    title: str
    due_on: date
    days_before: int
    moment: datetime  # when it was meant to go (UTC)
    late: bool  # more than LATE_AFTER after its moment: the process was stopped
    audience: str
    organisation_ids: tuple[int, ...]


def reminders_due(
    deadlines: Iterable[Deadline], now: datetime, zone: tzinfo, grace: timedelta,
) -> list[DueReminder]:
    """Every reminder whose moment is in (now - grace, now] and whose deadline day has not ended.

    When a long stop missed several reminders of one occurrence, only the newest is due: the person
    needs one message with the days left now, not each one missed.
    """
    due: list[DueReminder] = []
    today = now.astimezone(zone).date()
    for deadline in deadlines:
        if deadline.paused or deadline.removed_at is not None or deadline.id is None:
            continue
        reach = max(deadline.remind_days, default=0) // 365 + 1
        for year in range(today.year, today.year + reach + 1):
            due_on = occurrence(deadline, year)
            if due_on is None or now >= day_end(due_on, zone):
                continue
            newest = _newest_moment(deadline, due_on, now, zone, grace)
            if newest is not None:
                days_before, moment = newest
                due.append(DueReminder(deadline.id, deadline.title, due_on, days_before, moment,
                                       now - moment > LATE_AFTER, deadline.audience,
                                       tuple(deadline.organisation_ids)))
    return due


def _newest_moment(
    deadline: Deadline, due_on: date, now: datetime, zone: tzinfo, grace: timedelta,
) -> tuple[int, datetime] | None:
    window = [(days, moment) for days in deadline.remind_days
              for moment in [reminder_moment(due_on, days, deadline.remind_hour, zone)]
              if now - grace < moment <= now]
    return max(window, key=lambda item: item[1]) if window else None


def schedule_of(deadline: Deadline, year: int, zone: tzinfo) -> list[tuple[int, datetime]]:
    """(days before, moment) of every reminder of the year's occurrence, the earliest first."""
    due_on = occurrence(deadline, year)
    if due_on is None:
        return []
    return sorted(((days, reminder_moment(due_on, days, deadline.remind_hour, zone))
                   for days in set(deadline.remind_days)), key=lambda item: item[1])


# --- who is reminded ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    person_id: int
    unit: str  # "commune", "org:ID" or "village:ID"
    role: str  # the role that makes them a recipient: staff, admin, leader, village_head


def unit_key(grant: RoleGrant) -> str | None:
    if grant.role in STAFF_ROLES:
        return "commune"
    if grant.role == "leader" and grant.organisation_id is not None:
        return f"org:{grant.organisation_id}"
    if grant.role == "village_head" and grant.village_id is not None:
        return f"village:{grant.village_id}"
    return None


def in_audience(audience: str, organisation_ids: Sequence[int], unit: str) -> bool:
    """Whether `unit` must report for a deadline with this audience."""
    if unit == "commune":
        return True  # staff are reminded of every deadline
    if audience == "all":
        return unit.startswith(("org:", "village:"))
    if audience == "organisations":
        return unit.startswith("org:") and unit.partition(":")[2] in {str(i) for i in organisation_ids}
    return False


async def recipients(
    session: AsyncSession, audience: str, organisation_ids: Sequence[int], skip_units: Iterable[str] = (),
) -> list[Recipient]:
    """Everyone reminded for this audience, one row per (person, unit), without the units in `skip_units`
    (those that handed in). Someone who is staff and admin is reminded once for the commune."""
    grants = (await session.exec(
        select(RoleGrant).where(col(RoleGrant.revoked_at).is_(None)).order_by(col(RoleGrant.person_id),
                                                                              col(RoleGrant.id))
    )).all()
    skipped = set(skip_units)
    found: dict[tuple[int, str], Recipient] = {}
    for grant in grants:
        unit = unit_key(grant)
        if unit is None or unit in skipped or not in_audience(audience, organisation_ids, unit):
            continue
        found.setdefault((grant.person_id, unit), Recipient(grant.person_id, unit, grant.role))
    return list(found.values())


async def expected_units(session: AsyncSession, deadline: Deadline) -> list[str]:
    """The units that must report to the commune for this deadline: every organisation and village
    ("all"), the organisations listed ("organisations"), or the commune's own staff ("staff")."""
    if deadline.audience == "staff":
        return ["commune"]
    organisations = (await session.exec(select(Organisation.id).order_by(col(Organisation.id)))).all()
    if deadline.audience == "organisations":
        listed = set(deadline.organisation_ids)
        return [f"org:{id_}" for id_ in organisations if id_ in listed]
    villages = (await session.exec(select(Village.id).order_by(col(Village.id)))).all()
    return [f"org:{id_}" for id_ in organisations] + [f"village:{id_}" for id_ in villages]


async def unit_names(session: AsyncSession, units: Iterable[str], commune_name: str) -> dict[str, str]:
    """unit key -> the name people know it by."""
    wanted = set(units)
    org_ids = {int(u.partition(":")[2]) for u in wanted if u.startswith("org:")}
    village_ids = {int(u.partition(":")[2]) for u in wanted if u.startswith("village:")}
    names = {"commune": commune_name} if "commune" in wanted else {}
    if org_ids:
        rows = (await session.exec(select(Organisation.id, Organisation.name)
                                   .where(col(Organisation.id).in_(org_ids)))).all()
        names.update({f"org:{id_}": name for id_, name in rows})
    if village_ids:
        rows = (await session.exec(select(Village.id, Village.name)
                                   .where(col(Village.id).in_(village_ids)))).all()
        names.update({f"village:{id_}": name for id_, name in rows})
    return names


# --- hand-ins ----------------------------------------------------------------------------------------

async def hand_in(
    session: AsyncSession, deadline_id: int, due_on: date, unit: str, person_id: int | None, now: datetime,
) -> bool:
    """Mark the unit's report for this occurrence handed in; False when it was marked before."""
    connection = await session.connection()
    insert: Any = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(_handin).values(deadline_id=deadline_id, due_on=due_on, unit=unit, person_id=person_id,
                                       handed_at=now).on_conflict_do_nothing(
        index_elements=["deadline_id", "due_on", "unit"])
    return (await connection.execute(statement)).rowcount == 1


async def handed_in(session: AsyncSession, deadline_id: int, due_on: date) -> set[str]:
    """The units that handed in for this occurrence."""
    rows = await session.exec(select(HandIn.unit).where(HandIn.deadline_id == deadline_id, HandIn.due_on == due_on))
    return set(rows.all())
