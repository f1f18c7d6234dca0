"""Roles by invitation: single-use codes stored hashed, role grants, and the audit log."""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditLog, InviteCode, Person, RoleGrant

# No look-alikes when read aloud or copied by hand: 0/O/Q, 1/I/L, 2/Z, 5/S, 8/B are left out.
CODE_ALPHABET = "ACDEFGHJKMNPRTUVWXY34679"
CODE_LENGTH = 12  # 24^12 ≈ 3.6e16: a guess per second for a year finds nothing
GROUP = 4

STAFF_ROLES = ("staff", "admin")


def new_code(rng: random.Random) -> str:
    return "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def grouped(code: str) -> str:
    """'K7MX4RTPW9AC' -> 'K7MX-4RTP-W9AC', for reading aloud."""
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def normalise_code(text: str) -> str | None:
    """The code typed, in capitals without spaces or dashes; None when it cannot be a code at all.

    NFKC first: a phone keyboard's full-width "Ｋ７" is the code's K7.
    """
    code = "".join(character for character in unicodedata.normalize("NFKC", text).upper()
                   if character not in " -_.–—")
    if len(code) != CODE_LENGTH or any(character not in CODE_ALPHABET for character in code):
        return None
    return code


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


async def audit(
    session: AsyncSession, now: datetime, actor: int | None, action: str, outcome: str = "ok", *,
    role: str | None = None, organisation_id: int | None = None, village_id: int | None = None,
    subject: int | None = None, record_id: int | None = None, detail: str | None = None,
) -> None:
    """Append one line to the audit log (ids only: never a name, a code or what was typed; `detail` names
    the fields changed, never their values)."""
    session.add(AuditLog(at=now, actor=actor, action=action, outcome=outcome, role=role,
                         organisation_id=organisation_id, village_id=village_id, subject=subject,
                         record_id=record_id, detail=detail))


async def create_invite(
    session: AsyncSession, *, role: str, now: datetime, expires_in: timedelta, rng: random.Random,
    organisation_id: int | None = None, village_id: int | None = None, created_by: int | None = None,
) -> str:
    """Store a new invitation and return its code: the only time the code exists in clear."""
    code = new_code(rng)
    session.add(InviteCode(code_hash=code_hash(code), role=role, organisation_id=organisation_id,
                           village_id=village_id, created_by=created_by, created_at=now,
                           expires_at=now + expires_in))
    await audit(session, now, created_by, "invite_created", role=role, organisation_id=organisation_id,
                village_id=village_id)
    await session.flush()
    return code


async def redeem(session: AsyncSession, hashed: str, person: Person, now: datetime) -> RoleGrant | None:
    """Use the invitation with this code hash for `person`; None when it is unknown, used or expired.

    One conditional UPDATE marks it used, so two people typing the same code at once cannot both
    get the role. A role the person already holds is not granted twice.
    """
    result = await session.exec(
        update(InviteCode)
        .where(col(InviteCode.code_hash) == hashed, col(InviteCode.used_at).is_(None),
               col(InviteCode.expires_at) > now)
        .values(used_at=now, used_by=person.id)
    )
    if result.rowcount != 1:
        await audit(session, now, person.id, "invite_redeemed", "refused")
        return None
    invite = (await session.exec(select(InviteCode).where(InviteCode.code_hash == hashed))).one()
    grant = await _held(session, person.id, invite.role, invite.organisation_id, invite.village_id)  # type: ignore[arg-type]
    if grant is None:
        grant = RoleGrant(person_id=person.id, role=invite.role, organisation_id=invite.organisation_id,
                          village_id=invite.village_id, invite_id=invite.id, granted_at=now)
        session.add(grant)
        await session.flush()
    await audit(session, now, person.id, "invite_redeemed", role=invite.role,
                organisation_id=invite.organisation_id, village_id=invite.village_id, subject=invite.created_by)
    return grant


async def _held(session: AsyncSession, person_id: int, role: str, organisation_id: int | None,
                village_id: int | None) -> RoleGrant | None:
    statement = select(RoleGrant).where(
        RoleGrant.person_id == person_id, RoleGrant.role == role, col(RoleGrant.revoked_at).is_(None),
        RoleGrant.organisation_id == organisation_id if organisation_id is not None
        else col(RoleGrant.organisation_id).is_(None),
        RoleGrant.village_id == village_id if village_id is not None else col(RoleGrant.village_id).is_(None),
    )
    return (await session.exec(statement)).first()


async def active_grants(session: AsyncSession, person_id: int) -> list[RoleGrant]:
    statement = (select(RoleGrant)
                 .where(RoleGrant.person_id == person_id, col(RoleGrant.revoked_at).is_(None))
                 .order_by(col(RoleGrant.id)))
    return list((await session.exec(statement)).all())


@dataclass(frozen=True)
class Scopes:
    """What a person answers for: the units whose figures and names they may see."""

    organisations: tuple[int, ...] = ()  # led
    villages: tuple[int, ...] = ()  # headed
    staff: bool = False  # staff or admin: the whole commune
    admin: bool = False
    household: int | None = None  # the household they are head of
    # Member of the Tổ công nghệ số cộng đồng (role "digital_team"): of these villages, and of the whole
    # commune when `team_commune`. They help residents learn; they do not see units' figures.
    team_villages: tuple[int, ...] = ()
    team_commune: bool = False

    @property
    def any(self) -> bool:
        return bool(self.organisations or self.villages or self.staff or self.household is not None)

    @property
    def digital_team(self) -> bool:
        return bool(self.team_villages or self.team_commune)

    def visits(self, village_id: int) -> bool:
        """Whether they may see the households of `village_id` still to visit: staff, its head, its team."""
        return self.heads(village_id) or self.team_commune or village_id in self.team_villages

    def leads(self, organisation_id: int) -> bool:
        return self.staff or organisation_id in self.organisations

    def heads(self, village_id: int) -> bool:
        return self.staff or village_id in self.villages


async def scopes_of(session: AsyncSession, person: Person | None) -> Scopes:
    if person is None:
        return Scopes()
    grants = await active_grants(session, person.id)  # type: ignore[arg-type]
    roles = {grant.role for grant in grants}
    return Scopes(
        organisations=tuple(g.organisation_id for g in grants if g.role == "leader" and g.organisation_id),
        villages=tuple(g.village_id for g in grants if g.role == "village_head" and g.village_id),
        staff=bool(roles & set(STAFF_ROLES)),
        admin="admin" in roles,
        household=person.household_id if person.is_household_head else None,
        team_villages=tuple(g.village_id for g in grants if g.role == "digital_team" and g.village_id),
        team_commune=any(g.role == "digital_team" and g.village_id is None for g in grants),
    )


async def revoke(session: AsyncSession, grant_id: int, now: datetime, actor: int | None = None) -> RoleGrant | None:
    """End a grant; None when there is no such active grant."""
    grant = await session.get(RoleGrant, grant_id)
    if grant is None or grant.revoked_at is not None:
        return None
    grant.revoked_at = now
    session.add(grant)
    await audit(session, now, actor, "role_revoked", role=grant.role, organisation_id=grant.organisation_id,
                village_id=grant.village_id, subject=grant.person_id)
    await session.flush()
    return grant
