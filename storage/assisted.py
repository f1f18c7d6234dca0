""""Học cùng": residents a member of the Tổ công nghệ số cộng đồng registers in person and learns beside.

A member sees the people they helped and nobody else: those they registered, and those whose lesson was
completed or quiz taken with them beside. They may learn only with the people they registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import access
from storage.models import Household, LessonProgress, Person, QuizAttempt, Village


@dataclass(frozen=True)
class Helped:
    """One person a member helped, as the member's list shows them."""

    person_id: int
    name: str
    village: str | None
    registered_here: bool  # registered by this member: they may learn together
    has_own_phone: bool  # a messenger account is linked: they can also learn on their own


async def is_team_member(session: AsyncSession, person: Person | None) -> bool:
    return person is not None and (await access.scopes_of(session, person)).digital_team


async def register_in_person(
    session: AsyncSession, member: Person, *, name: str, village_id: int | None, household_id: int | None,
    consent_version: int, now: datetime,
) -> Person:
    """A resident registered on the member's phone, after they heard the consent text and agreed aloud."""
    person = Person(full_name=name, village_id=village_id, household_id=household_id, consent_at=now,
                    consent_version=consent_version, consent_offered=consent_version, consent_method="in_person",
                    registered_by=member.id, created_at=now)
    session.add(person)
    await session.flush()
    await access.audit(session, now, member.id, "assisted_registered", role="digital_team", village_id=village_id,
                       subject=person.id)
    return person


async def helped_by(session: AsyncSession, member_id: int) -> list[Helped]:
    """Everyone `member_id` helped, newest first: registered by them, or learned a lesson with them."""
    with_help = select(LessonProgress.person_id).where(LessonProgress.assisted_by == member_id).union(
        select(QuizAttempt.person_id).where(QuizAttempt.assisted_by == member_id))
    statement = (
        select(Person, Village.name)
        .outerjoin(Village, col(Village.id) == col(Person.village_id))
        .where(or_(col(Person.registered_by) == member_id, col(Person.id).in_(with_help)))
        .order_by(col(Person.created_at).desc(), col(Person.id).desc())
    )
    rows = (await session.exec(statement)).all()
    linked = await _with_accounts(session, [person.id for person, _ in rows])  # type: ignore[misc]
    return [Helped(person.id, person.full_name or "(chưa có tên)", village, person.registered_by == member_id,  # type: ignore[arg-type]
                   person.id in linked) for person, village in rows]


async def _with_accounts(session: AsyncSession, person_ids: list[int]) -> set[int]:
    from storage.models import ChannelAccount

    if not person_ids:
        return set()
    rows = await session.exec(select(ChannelAccount.person_id).where(col(ChannelAccount.person_id).in_(person_ids)))
    return {row for row in rows.all() if row is not None}


async def learner_for(session: AsyncSession, member: Person | None, person_id: int | None) -> Person | None:
    """The resident `member` may learn with now: registered by them, and the member still in the team."""
    if member is None or person_id is None or not await is_team_member(session, member):
        return None
    resident = await session.get(Person, person_id)
    if resident is None or resident.registered_by != member.id or resident.id == member.id:
        return None
    return resident


async def directory_households(session: AsyncSession, village_id: int) -> list[Household]:
    """The village's households that have a head's name, in the directory's order, for choosing one."""
    statement = (select(Household).where(Household.village_id == village_id, col(Household.head_name).is_not(None))
                 .order_by(col(Household.head_name), col(Household.id)))
    return list((await session.exec(statement)).all())
