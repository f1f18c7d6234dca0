"""One person on several messengers (/lienket): link codes, refused tries, and merging two people.

A code is 6 digits (the first never 0, so it can never be read as a menu number), made on the account
that has the person and typed on the other account within 10 minutes, once. Only its SHA-256 is
stored. A chat may get 5 codes wrong within 15 minutes, then it waits (`LinkCodeTry`, like the
household codes' tries): at that pace (480 guesses a day) and with five codes alive at every moment
among 900,000, one chat would need about a year on average to hit one. The limit is per chat, so
someone with many accounts guesses proportionally faster; the confirmation shows only the code's app
and the owner's initials.

When the account typing the code already has a person of its own, that person is merged into the
code's person (`merge_person`) in the turn's one transaction: every row that refers to the person is
moved, nothing already saved is lost, and the merged person is deleted.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import queries
from storage.models import (
    Activity,
    Announcement,
    Certificate,
    ChannelAccount,
    ConversationState,
    Deadline,
    Delivery,
    HandIn,
    Initiative,
    InviteCode,
    LessonProgress,
    LinkCode,
    LinkCodeTry,
    Membership,
    Person,
    QuizAttempt,
    RoleGrant,
    UnitActivity,
    UnitActivityMember,
)

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
# The "channel" of a code a digital-team member makes for someone registered in person (handlers/assisted.py):
# it is no messenger, so any messenger may take it.
ASSISTED_CHANNEL = "hoccung"
TRIES = 5
TRIES_WINDOW = timedelta(minutes=15)


# --- codes ------------------------------------------------------------------------------------------

def new_code(rng: random.Random) -> str:
    """Six digits, the first 1-9: '482913'."""
    return str(rng.randint(10 ** (CODE_DIGITS - 1), 10 ** CODE_DIGITS - 1))


def code_hash(code: str) -> str:
    return hashlib.sha256(f"link:{code}".encode("ascii")).hexdigest()


async def create_code(session: AsyncSession, person_id: int, channel: str, now: datetime,
                      rng: random.Random) -> str:
    """A new code for the person, replacing any code they had; the only time the code exists in clear.

    Codes that expired or were used (anyone's) are forgotten here, so the table holds live codes only.
    """
    await session.exec(delete(LinkCode).where(or_(
        col(LinkCode.person_id) == person_id, col(LinkCode.expires_at) <= now, col(LinkCode.used_at).is_not(None),
    )))
    for _ in range(50):
        code = new_code(rng)
        taken = (await session.exec(select(LinkCode.id).where(LinkCode.code_hash == code_hash(code)))).first()
        if taken is None:
            break
    else:  # only with a broken random source: a few live codes among 900,000
        raise RuntimeError("không tạo được mã liên kết mới")
    session.add(LinkCode(code_hash=code_hash(code), person_id=person_id, channel=channel, created_at=now,
                         expires_at=now + CODE_LIFETIME))
    await session.flush()
    return code


@dataclass(frozen=True)
class Found:
    """What a typed code is: `live` (with its person and channel), `expired`, or `unknown` (never made,
    already used, or replaced by a newer one: one answer for all of these)."""

    status: str
    person_id: int | None = None
    channel: str | None = None


async def find_code(session: AsyncSession, hashed: str, now: datetime) -> Found:
    row = (await session.exec(select(LinkCode).where(LinkCode.code_hash == hashed))).first()
    if row is None or row.used_at is not None:
        return Found("unknown")
    if row.expires_at <= now:
        return Found("expired")
    return Found("live", row.person_id, row.channel)


async def use_code(session: AsyncSession, hashed: str, now: datetime) -> bool:
    """Mark the code used; False when it was used or expired meanwhile. One conditional UPDATE, so two
    accounts typing the same code at once cannot both link with it."""
    result = await session.exec(
        update(LinkCode)
        .where(col(LinkCode.code_hash) == hashed, col(LinkCode.used_at).is_(None), col(LinkCode.expires_at) > now)
        .values(used_at=now)
    )
    return result.rowcount == 1


async def tries(session: AsyncSession, channel: str, external_id: str, now: datetime) -> list[datetime]:
    """When this chat typed a wrong or expired code within the window, oldest first."""
    return await queries.chat_tries(session, LinkCodeTry, channel, external_id,  # type: ignore[arg-type]
                                    now - TRIES_WINDOW)


async def record_try(session: AsyncSession, channel: str, external_id: str, now: datetime) -> None:
    """Note a refused code (never the code itself)."""
    await queries.record_chat_try(session, LinkCodeTry, channel, external_id, now,  # type: ignore[arg-type]
                                  TRIES_WINDOW)


async def channels_of(session: AsyncSession, person_id: int) -> list[str]:
    """The messengers the person has accounts on, in the order they were linked."""
    statement = (select(ChannelAccount.channel).where(ChannelAccount.person_id == person_id)
                 .order_by(col(ChannelAccount.id)))
    return list((await session.exec(statement)).all())


# --- linking ----------------------------------------------------------------------------------------

async def add_account(session: AsyncSession, person_id: int, channel: str, external_id: str, now: datetime) -> None:
    """This chat, which has no person yet, becomes one more account of the person."""
    session.add(ChannelAccount(channel=channel, external_id=external_id, person_id=person_id, created_at=now))
    await session.flush()


VNEID_ORDER = {None: 0, "unknown": 1, "no": 2, "yes": 3}


async def merge_person(session: AsyncSession, source: Person, target: Person) -> None:
    """Move everything of `source` to `target`, then delete `source`. The caller's transaction makes
    it all or nothing.

    - lesson progress: one row per lesson; where both have one, "completed" wins, the best score is
      the higher, started and completed the earlier;
    - memberships: the union; where both claim an organisation, confirmed if either was, the earlier
      confirmation time;
    - roles: the union; an active grant the target already holds is not kept twice (revoking it must
      end it), revoked grants all stay as the record;
    - certificates: one per course, the one issued first (its code is the one printed and shared);
    - quiz attempts with their answers, activity, outbox rows, accounts, hand-ins, deadlines,
      announcements and invitations made or used: moved as they are;
    - registration: the target's answers stay, its empty ones are filled from the source's; VNeID
      level 2 takes the more advanced answer; consent the earlier time and the newer text; nudges stay
      off if either turned them off; the household: the target's, else the source's (with its head
      role); a household the source leaves is settled (a new head, or deleted when empty).

    The audit log keeps its ids as they were: it records what happened, and the link's own line names
    both people.
    """
    assert source.id is not None and target.id is not None and source.id != target.id
    source_id, target_id = source.id, target.id
    # Both rows locked (PostgreSQL; SQLite has one writer), in id order so two merges cannot deadlock.
    await session.exec(select(Person.id).where(col(Person.id).in_(sorted((source_id, target_id))))
                       .order_by(col(Person.id)).with_for_update())

    await _merge_progress(session, source_id, target_id)
    await _merge_memberships(session, source_id, target_id)
    await _merge_roles(session, source_id, target_id)
    await _merge_certificates(session, source_id, target_id)

    moves: list[tuple[Any, Any]] = [
        (QuizAttempt, QuizAttempt.person_id), (Activity, Activity.person_id), (Delivery, Delivery.person_id),
        (ChannelAccount, ChannelAccount.person_id), (HandIn, HandIn.person_id),
        (InviteCode, InviteCode.created_by), (InviteCode, InviteCode.used_by), (Deadline, Deadline.created_by),
        (Announcement, Announcement.author_id),
        # What units do offline (issue 14): proposals, recognitions, records, help given, people registered.
        (Initiative, Initiative.proposed_by), (Initiative, Initiative.recognised_by),
        (UnitActivity, UnitActivity.recorded_by), (LessonProgress, LessonProgress.assisted_by),
        (QuizAttempt, QuizAttempt.assisted_by), (Person, Person.registered_by),
        (ConversationState, ConversationState.learning_with),
    ]
    # Named at the same activity twice: one row is enough (the pair is unique).
    both = select(UnitActivityMember.activity_id).where(col(UnitActivityMember.person_id) == target_id)
    await session.exec(delete(UnitActivityMember).where(col(UnitActivityMember.person_id) == source_id,
                                                        col(UnitActivityMember.activity_id).in_(both)))
    moves.append((UnitActivityMember, UnitActivityMember.person_id))
    for model, column in moves:
        await session.exec(update(model).where(col(column) == source_id).values({column.key: target_id}))
    await session.exec(delete(LinkCode).where(col(LinkCode.person_id) == source_id))

    left_household = _merge_fields(source, target)
    session.add(target)
    await session.delete(source)
    await session.flush()
    if left_household is not None:
        await queries.settle_household(session, left_household)


def _merge_fields(source: Person, target: Person) -> int | None:
    """Fill the target's registration from the source; the household the source leaves, if any."""
    for field in ("full_name", "village_id", "target_group"):
        if getattr(target, field) is None:
            setattr(target, field, getattr(source, field))
    if VNEID_ORDER.get(source.vneid_level2, 0) > VNEID_ORDER.get(target.vneid_level2, 0):
        target.vneid_level2 = source.vneid_level2
    if source.registration_step is None:  # done on either side is done (what was skipped stays skipped)
        target.registration_step = None
    target.consent_at = min(target.consent_at, source.consent_at)
    target.created_at = min(target.created_at, source.created_at)
    target.consent_version = max(target.consent_version, source.consent_version)
    target.consent_offered = max(target.consent_offered, source.consent_offered)
    target.nudges_off = target.nudges_off or source.nudges_off
    if source.household_id is None:
        return None
    if target.household_id is None:
        target.household_id, target.is_household_head = source.household_id, source.is_household_head
        return None
    if target.household_id == source.household_id:
        target.is_household_head = target.is_household_head or source.is_household_head
        return None
    return source.household_id


async def _merge_progress(session: AsyncSession, source_id: int, target_id: int) -> None:
    mine = await queries.progress_of(session, target_id)
    for lesson_id, theirs in (await queries.progress_of(session, source_id)).items():
        kept = mine.get(lesson_id)
        if kept is None:
            continue  # moved below
        if theirs.status == "completed":
            if kept.status != "completed" or _earlier(kept.completed_at, theirs.completed_at) != kept.completed_at:
                kept.assisted, kept.assisted_by = theirs.assisted, theirs.assisted_by  # the first one says
            kept.status = "completed"
        kept.best_score = _larger(kept.best_score, theirs.best_score)
        kept.started_at = min(kept.started_at, theirs.started_at)
        kept.completed_at = _earlier(kept.completed_at, theirs.completed_at)
        session.add(kept)
        await session.delete(theirs)
    await session.flush()
    await session.exec(update(LessonProgress).where(col(LessonProgress.person_id) == source_id)
                       .values(person_id=target_id))


async def _merge_memberships(session: AsyncSession, source_id: int, target_id: int) -> None:
    mine = {m.organisation_id: m for m in await queries.memberships_of(session, target_id)}
    for theirs in await queries.memberships_of(session, source_id):
        kept = mine.get(theirs.organisation_id)
        if kept is None:
            continue
        kept.confirmed = kept.confirmed or theirs.confirmed
        kept.confirmed_at = _earlier(kept.confirmed_at, theirs.confirmed_at)
        session.add(kept)
        await session.delete(theirs)
    await session.flush()
    await session.exec(update(Membership).where(col(Membership.person_id) == source_id).values(person_id=target_id))


async def _merge_roles(session: AsyncSession, source_id: int, target_id: int) -> None:
    def scope(grant: RoleGrant) -> tuple[str, int | None, int | None]:
        return grant.role, grant.organisation_id, grant.village_id

    def active(person_id: int) -> Any:
        return select(RoleGrant).where(RoleGrant.person_id == person_id, col(RoleGrant.revoked_at).is_(None))

    held = {scope(grant) for grant in (await session.exec(active(target_id))).all()}
    for grant in (await session.exec(active(source_id))).all():
        if scope(grant) in held:
            await session.delete(grant)
    await session.flush()
    await session.exec(update(RoleGrant).where(col(RoleGrant.person_id) == source_id).values(person_id=target_id))


async def _merge_certificates(session: AsyncSession, source_id: int, target_id: int) -> None:
    def of(person_id: int) -> Any:
        return select(Certificate).where(Certificate.person_id == person_id)

    mine = {c.course_id: c for c in (await session.exec(of(target_id))).all()}
    for theirs in (await session.exec(of(source_id))).all():
        kept = mine.get(theirs.course_id)
        if kept is None:
            continue
        if theirs.issued_at < kept.issued_at:  # the first one issued stays: its code is the one handed out
            await session.delete(kept)
            await session.flush()
        else:
            await session.delete(theirs)
    await session.flush()
    await session.exec(update(Certificate).where(col(Certificate.person_id) == source_id).values(person_id=target_id))


def _larger(a: int | None, b: int | None) -> int | None:
    return max(a, b) if a is not None and b is not None else a if a is not None else b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a is not None and b is not None else a if a is not None else b
