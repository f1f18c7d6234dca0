"""An organisation's members as its leaders see them: claims to confirm or remove."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Membership, Person, Village

# People who agreed to the consent text that names leaders (handlers.home.CONSENT_VERSION 2): only
# they are shown by name; the others are counted.
NAMED_FROM_VERSION = 2


@dataclass(frozen=True)
class Claim:
    membership_id: int
    person_id: int
    name: str
    village: str | None


@dataclass(frozen=True)
class ClaimCounts:
    confirmed: int
    pending: int
    pending_unnamed: int  # pending claims of people who have not agreed to show their name


async def claim_counts(session: AsyncSession, organisation_id: int) -> ClaimCounts:
    unnamed = (col(Person.consent_version) < NAMED_FROM_VERSION) | col(Person.full_name).is_(None)
    statement = (
        select(
            func.count().filter(col(Membership.confirmed)),
            func.count().filter(~col(Membership.confirmed)),
            func.sum(case((~col(Membership.confirmed) & unnamed, 1), else_=0)),
        )
        .select_from(Membership)
        .join(Person, col(Person.id) == col(Membership.person_id))
        .where(Membership.organisation_id == organisation_id)
    )
    confirmed, pending, pending_unnamed = (await session.exec(statement)).one()
    return ClaimCounts(confirmed or 0, pending or 0, int(pending_unnamed or 0))


def _named_pending() -> object:
    return (
        select(Membership.id, Person.id, Person.full_name, Village.name)
        .join(Person, col(Person.id) == col(Membership.person_id))
        .outerjoin(Village, col(Village.id) == col(Person.village_id))
        .where(col(Membership.confirmed).is_(False), col(Person.consent_version) >= NAMED_FROM_VERSION,
               col(Person.full_name).is_not(None))
    )


async def pending_claims(session: AsyncSession, organisation_id: int, limit: int) -> list[Claim]:
    """The oldest claims not yet confirmed, of people who agreed to show their name."""
    statement = (_named_pending().where(Membership.organisation_id == organisation_id)  # type: ignore[attr-defined]
                 .order_by(col(Membership.id)).limit(limit))
    return [Claim(mid, pid, name, village) for mid, pid, name, village in (await session.exec(statement)).all()]


async def named_claim(session: AsyncSession, membership_id: int) -> Claim | None:
    """One pending claim, if its person agreed to show their name."""
    statement = _named_pending().where(Membership.id == membership_id)  # type: ignore[attr-defined]
    row = (await session.exec(statement)).first()
    return Claim(*row) if row else None


async def confirm(session: AsyncSession, membership_id: int, now: datetime) -> bool:
    """Confirm a pending claim; False when it is gone or was confirmed meanwhile."""
    result = await session.exec(
        update(Membership)
        .where(col(Membership.id) == membership_id, col(Membership.confirmed).is_(False))
        .values(confirmed=True, confirmed_at=now)
    )
    return result.rowcount == 1


async def remove(session: AsyncSession, membership_id: int) -> bool:
    """Remove a pending claim (the person is not a member); False when it is gone or confirmed."""
    result = await session.exec(
        delete(Membership).where(col(Membership.id) == membership_id, col(Membership.confirmed).is_(False))
    )
    return result.rowcount == 1
