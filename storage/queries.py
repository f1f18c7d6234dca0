"""Queries the conversation needs. Each takes an open session; the caller owns the transaction."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import and_, bindparam, delete, func, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Activity,
    Announcement,
    Answer,
    Certificate,
    CertificateCodeTry,
    ChannelAccount,
    ConversationState,
    Deadline,
    Delivery,
    HandIn,
    Household,
    HouseholdCodeTry,
    Initiative,
    InviteCode,
    InviteCodeTry,
    LessonProgress,
    Membership,
    Organisation,
    Person,
    ProcessedUpdate,
    QuizAttempt,
    RoleGrant,
    UnitActivity,
    UnitActivityMember,
    Village,
)


async def seed_reference_data(session: AsyncSession, villages: Iterable[str], organisations: Iterable[str]) -> None:
    """Fill an empty directory from the settings (HOCVUSO_VILLAGES, HOCVUSO_ORGANISATIONS).

    Only a table with no rows at all is seeded: once the commune imports its directory (or anything
    is stored), the database is the list and the settings are ignored.
    """
    if (await session.exec(select(func.count()).select_from(Village))).one() == 0:
        session.add_all(Village(name=name) for name in dict.fromkeys(villages))
    if (await session.exec(select(func.count()).select_from(Organisation))).one() == 0:
        session.add_all(Organisation(name=name, kind=guess_kind(name)) for name in dict.fromkeys(organisations))
    await session.flush()


_KIND_WORDS = (("mttq", "mat-tran"), ("mặt trận", "mat-tran"), ("trường", "truong-hoc"),
               ("doanh nghiệp", "doanh-nghiep"), ("công ty", "doanh-nghiep"), ("phòng", "co-quan"),
               ("ủy ban", "co-quan"), ("hội", "doan-the"), ("đoàn", "doan-the"))


def guess_kind(name: str) -> str:
    """The kind of a seeded organisation from the words of its name (the directory import sets it)."""
    lowered = name.lower()
    return next((kind for word, kind in _KIND_WORDS if word in lowered), "khac")


async def all_villages(session: AsyncSession) -> list[Village]:
    """Every village, in the directory's order."""
    return list((await session.exec(select(Village).order_by(col(Village.id)))).all())


async def all_organisations(session: AsyncSession) -> list[Organisation]:
    """Every organisation, in the directory's order."""
    return list((await session.exec(select(Organisation).order_by(col(Organisation.id)))).all())


def _mark_processed_statement(insert: Callable[..., Insert]) -> Insert:
    return (
        insert(ProcessedUpdate)
        .values(channel=bindparam("channel"), delivery_key=bindparam("delivery_key"),
                processed_at=bindparam("processed_at"))
        .on_conflict_do_nothing(index_elements=["channel", "delivery_key"])
    )


# Built once: these run on every update, and building a statement costs more than running it on SQLite.
_MARK_PROCESSED = {"sqlite": _mark_processed_statement(sqlite_insert),
                   "postgresql": _mark_processed_statement(postgresql_insert)}


async def mark_processed(session: AsyncSession, channel: str, delivery_key: str, now: datetime) -> bool:
    """Record an update as handled; False when it was handled before (a redelivery).

    One INSERT ... ON CONFLICT DO NOTHING, so two workers given the same update cannot both take it.
    """
    connection = await session.connection()  # Core, not the ORM: a plain insert needs no unit of work
    result = await connection.execute(
        _MARK_PROCESSED[connection.dialect.name],
        {"channel": channel, "delivery_key": delivery_key, "processed_at": now},
    )
    return result.rowcount == 1


async def load_state(session: AsyncSession, channel: str, external_id: str, now: datetime) -> ConversationState:
    """The conversation state of this chat, created at the main menu on first contact."""
    # FOR UPDATE (PostgreSQL; SQLite already holds the write lock) keeps two workers given two
    # messages of one chat from overwriting each other's step.
    query = (
        select(ConversationState)
        .where(ConversationState.channel == channel, ConversationState.external_id == external_id)
        .with_for_update()
    )
    state = (await session.exec(query)).first()
    if state is None:
        # Insert-or-get: two first messages handled at once (two workers) must not both insert the row;
        # on PostgreSQL the second insert waits for the first to commit, then does nothing.
        connection = await session.connection()
        insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        await connection.execute(
            insert(ConversationState)
            .values(channel=channel, external_id=external_id, step="new", data={}, menu=[], menu_labels=[],
                    updated_at=now)
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        )
        state = (await session.exec(query)).one()
    return state


_CHAT_WITH_PERSON = (
    select(ConversationState, Person, ChannelAccount)
    .outerjoin(ChannelAccount, and_(
        col(ChannelAccount.channel) == col(ConversationState.channel),
        col(ChannelAccount.external_id) == col(ConversationState.external_id),
    ))
    .outerjoin(Person, col(Person.id) == col(ChannelAccount.person_id))
    .where(col(ConversationState.channel) == bindparam("channel"),
           col(ConversationState.external_id) == bindparam("external_id"))
    .with_for_update(of=ConversationState)
)


async def load_chat(
    session: AsyncSession, channel: str, external_id: str, now: datetime
) -> tuple[ConversationState, Person | None]:
    """The chat's state (created on first contact) and the consenting person behind it, in one query.

    A chat that writes to us is no longer blocked. The state row is read FOR UPDATE (PostgreSQL;
    SQLite already holds the write lock), so two workers given two messages of one chat take turns.
    """
    row = (await session.exec(_CHAT_WITH_PERSON, params={"channel": channel, "external_id": external_id})).first()
    if row is None:
        return await load_state(session, channel, external_id, now), await person_for(session, channel, external_id)
    state, person, account = row
    if account is not None and account.blocked:
        account.blocked = False
        session.add(account)
    return state, person


async def person_for(session: AsyncSession, channel: str, external_id: str) -> Person | None:
    """The consenting person behind this chat; a chat that writes to us is no longer blocked."""
    result = await session.exec(
        select(Person, ChannelAccount)
        .join(ChannelAccount, col(ChannelAccount.person_id) == col(Person.id))
        .where(ChannelAccount.channel == channel, ChannelAccount.external_id == external_id)
    )
    row = result.first()
    if row is None:
        return None
    person, account = row
    if account.blocked:
        account.blocked = False
        session.add(account)
    return person


async def person_of(session: AsyncSession, channel: str, external_id: str) -> Person | None:
    """The consenting person behind this chat, read only (see `person_for`)."""
    statement = (select(Person)
                 .join(ChannelAccount, col(ChannelAccount.person_id) == col(Person.id))
                 .where(ChannelAccount.channel == channel, ChannelAccount.external_id == external_id))
    return (await session.exec(statement)).first()


async def create_person(
    session: AsyncSession, channel: str, external_id: str, now: datetime, consent_version: int = 1
) -> Person:
    person = Person(consent_at=now, created_at=now, consent_version=consent_version, consent_offered=consent_version)
    session.add(person)
    await session.flush()
    session.add(ChannelAccount(channel=channel, external_id=external_id, person_id=person.id, created_at=now))
    await session.flush()
    return person


def _household_code(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(length))


async def _free_code(session: AsyncSession, rng: random.Random, length: int) -> str:
    """A numeric code no household has (digits are easy to read aloud and to type)."""
    for _ in range(50):
        code = _household_code(rng, length)
        taken = (await session.exec(select(Household.id).where(Household.code == code))).first()
        if taken is None:
            return code
    raise RuntimeError("không tạo được mã hộ mới: hãy tăng HOCVUSO_HOUSEHOLD_CODE_LENGTH")


async def create_household(
    session: AsyncSession, village_id: int | None, rng: random.Random, length: int, now: datetime
) -> Household:
    """A new household with a fresh numeric code."""
    household = Household(code=await _free_code(session, rng, length), village_id=village_id, created_at=now)
    session.add(household)
    await session.flush()
    return household


async def renew_household_code(session: AsyncSession, household: Household, rng: random.Random, length: int) -> str:
    """Give the household a fresh code: whoever knew the old one (a removed stranger) cannot join again."""
    household.code = await _free_code(session, rng, length)
    session.add(household)
    await session.flush()
    return household.code


async def household_by_code(
    session: AsyncSession, code: str, *, leaving: int | None = None
) -> Household | None:
    """The household with this code, its row locked until the transaction ends.

    A join and the deletion of the household by its last member leaving or erasing take the same row
    lock (FOR UPDATE on PostgreSQL; SQLite has one writer anyway), so one waits for the other: the
    join either sees the household gone, or the deletion sees the new member and keeps it.
    `leaving` (the joiner's current household, which the join may empty and delete) is locked by the
    same statement, both in id order, so two people swapping households at once cannot deadlock.
    """
    condition = Household.code == code
    if leaving is not None:
        condition = or_(condition, Household.id == leaving)
    rows = await session.exec(select(Household).where(condition).order_by(col(Household.id)).with_for_update())
    return next((household for household in rows.all() if household.code == code), None)


async def _lock_household(session: AsyncSession, household_id: int) -> bool:
    """Lock the household row (see `household_by_code`); False when it is gone."""
    statement = select(Household.id).where(Household.id == household_id).with_for_update()
    return (await session.exec(statement)).first() is not None


async def household_members(session: AsyncSession, household_id: int) -> list[Person]:
    """The household's members, in the order they were registered."""
    statement = select(Person).where(Person.household_id == household_id).order_by(col(Person.id))
    return list((await session.exec(statement)).all())


async def remove_from_household(session: AsyncSession, person_id: int, household_id: int) -> bool:
    """Take a person out of this household; False (and nothing changed) unless they are in it now.

    One conditional UPDATE, so a member who left or erased meanwhile is never touched.
    """
    result = await session.exec(
        update(Person)
        .where(col(Person.id) == person_id, col(Person.household_id) == household_id)
        .values(household_id=None, is_household_head=False)
    )
    return result.rowcount == 1


ChatTry = type[HouseholdCodeTry] | type[InviteCodeTry] | type[CertificateCodeTry]


async def chat_tries(session: AsyncSession, model: ChatTry, channel: str, external_id: str,
                     since: datetime) -> list[datetime]:
    """When this chat made a refused try (a wrong household or invitation code) after `since`, oldest first."""
    statement = (
        select(model.at)
        .where(model.channel == channel, model.external_id == external_id, model.at > since)
        .order_by(col(model.at))
    )
    return list((await session.exec(statement)).all())


async def record_chat_try(session: AsyncSession, model: ChatTry, channel: str, external_id: str, now: datetime,
                          window: timedelta) -> None:
    """Note a refused try, and forget this chat's tries that no longer count. Holds no code and no name."""
    await session.exec(
        delete(model).where(
            col(model.channel) == channel, col(model.external_id) == external_id, col(model.at) <= now - window,
        )
    )
    session.add(model(channel=channel, external_id=external_id, at=now))
    await session.flush()


async def household_code_tries(
    session: AsyncSession, channel: str, external_id: str, since: datetime
) -> list[datetime]:
    """When this chat typed a wrong household code after `since`, the oldest first."""
    return await chat_tries(session, HouseholdCodeTry, channel, external_id, since)


async def record_household_code_try(
    session: AsyncSession, channel: str, external_id: str, now: datetime, window_minutes: int
) -> None:
    await record_chat_try(session, HouseholdCodeTry, channel, external_id, now, timedelta(minutes=window_minutes))


async def memberships_of(session: AsyncSession, person_id: int) -> list[Membership]:
    return list((await session.exec(select(Membership).where(Membership.person_id == person_id))).all())


async def set_memberships(session: AsyncSession, person_id: int, organisation_ids: Iterable[int]) -> None:
    """Make the person a member of exactly these organisations, keeping existing roles."""
    wanted = set(organisation_ids)
    current = {m.organisation_id: m for m in await memberships_of(session, person_id)}
    for organisation_id, membership in current.items():
        if organisation_id not in wanted:
            await session.delete(membership)
    session.add_all(
        Membership(person_id=person_id, organisation_id=organisation_id)
        for organisation_id in wanted - set(current)
    )
    await session.flush()


async def log_activity(
    session: AsyncSession, person: Person | None, kind: str, now: datetime,
    lesson_id: str | None = None, detail: str | None = None,
) -> None:
    """Append one event; nothing is logged for people who did not consent."""
    if person is None:
        return
    session.add(Activity(person_id=person.id, kind=kind, lesson_id=lesson_id, detail=detail, at=now))


async def progress_of(session: AsyncSession, person_id: int) -> dict[str, LessonProgress]:
    rows = await session.exec(select(LessonProgress).where(LessonProgress.person_id == person_id))
    return {row.lesson_id: row for row in rows.all()}


async def start_lesson(session: AsyncSession, person_id: int, lesson_id: str, now: datetime) -> LessonProgress:
    progress = (
        await session.exec(
            select(LessonProgress).where(LessonProgress.person_id == person_id, LessonProgress.lesson_id == lesson_id)
        )
    ).first()
    if progress is None:
        progress = LessonProgress(person_id=person_id, lesson_id=lesson_id, started_at=now)
        session.add(progress)
        await session.flush()
    return progress


async def open_attempt(session: AsyncSession, person_id: int, lesson_id: str) -> QuizAttempt | None:
    """The person's unfinished attempt at this lesson's quiz, if any."""
    result = await session.exec(
        select(QuizAttempt)
        .where(
            QuizAttempt.person_id == person_id,
            QuizAttempt.lesson_id == lesson_id,
            col(QuizAttempt.finished_at).is_(None),
        )
        .order_by(col(QuizAttempt.id).desc())
    )
    return result.first()


async def answers_of(session: AsyncSession, attempt_id: int) -> dict[str, Answer]:
    result = await session.exec(select(Answer).where(Answer.attempt_id == attempt_id).order_by(col(Answer.id)))
    return {answer.question_id: answer for answer in result.all()}


async def recent_attempts(session: AsyncSession, person_id: int, limit: int = 5) -> list[QuizAttempt]:
    result = await session.exec(
        select(QuizAttempt)
        .where(QuizAttempt.person_id == person_id, col(QuizAttempt.finished_at).is_not(None))
        .order_by(col(QuizAttempt.finished_at).desc(), col(QuizAttempt.id).desc())
        .limit(limit)
    )
    return list(result.all())


async def activity_days(session: AsyncSession, person_id: int, zone: tzinfo, since: datetime) -> set[date]:
    """The local calendar days on which the person did anything, from `since` on."""
    result = await session.exec(select(Activity.at).where(Activity.person_id == person_id, Activity.at >= since))
    return {moment.astimezone(zone).date() for moment in result.all()}


def streak(days: set[date], today: date) -> int:
    """Days in a row with activity, ending today (or yesterday, so the streak is not lost by morning)."""
    day = today if today in days else today - timedelta(days=1)
    count = 0
    while day in days:
        count += 1
        day -= timedelta(days=1)
    return count


async def count_rows(session: AsyncSession, model: type, person_id: int) -> int:
    result = await session.exec(select(func.count()).select_from(model).where(model.person_id == person_id))
    return result.one()


async def answer_count(session: AsyncSession, person_id: int) -> int:
    result = await session.exec(
        select(func.count())
        .select_from(Answer)
        .join(QuizAttempt, col(QuizAttempt.id) == col(Answer.attempt_id))
        .where(QuizAttempt.person_id == person_id)
    )
    return result.one()


async def channel_accounts_of(session: AsyncSession, person_id: int) -> list[ChannelAccount]:
    return list((await session.exec(select(ChannelAccount).where(ChannelAccount.person_id == person_id))).all())


async def erase_person(session: AsyncSession, person: Person, keep_state_id: int | None = None) -> None:
    """Delete everything personal; activity rows stay as anonymous counts.

    The conversation state `keep_state_id` (the chat asking) is kept for the caller to reset.

    Deletes are explicit rather than left to ON DELETE CASCADE so that the result does not depend
    on the database enforcing foreign keys.
    """
    person_id = person.id
    household_id = person.household_id
    attempt_ids = select(QuizAttempt.id).where(QuizAttempt.person_id == person_id)
    await session.exec(delete(Answer).where(col(Answer.attempt_id).in_(attempt_ids)))
    # Certificates too: they carry the person's name (verifying one afterwards finds nothing).
    for model in (QuizAttempt, LessonProgress, Membership, RoleGrant, Certificate):
        await session.exec(delete(model).where(model.person_id == person_id))
    # Invitations they made or used stay (the audit log refers to them) without pointing at anyone.
    await session.exec(update(InviteCode).where(col(InviteCode.created_by) == person_id).values(created_by=None))
    await session.exec(update(InviteCode).where(col(InviteCode.used_by) == person_id).values(used_by=None))
    await session.exec(update(Activity).where(Activity.person_id == person_id).values(person_id=None))
    # Messages not yet sent to them go; deadlines, hand-ins and announcements they made stay, unsigned.
    await session.exec(delete(Delivery).where(col(Delivery.person_id) == person_id))
    await session.exec(update(Deadline).where(col(Deadline.created_by) == person_id).values(created_by=None))
    await session.exec(update(HandIn).where(col(HandIn.person_id) == person_id).values(person_id=None))
    await session.exec(update(Announcement).where(col(Announcement.author_id) == person_id)
                       .values(author_id=None, author_external_id=""))
    await _erase_offline_work(session, person_id)  # type: ignore[arg-type]
    accounts = await channel_accounts_of(session, person_id)
    for account in accounts:
        await session.exec(
            delete(ConversationState).where(
                ConversationState.channel == account.channel,
                ConversationState.external_id == account.external_id,
                ConversationState.id != keep_state_id,
            )
        )
    await session.exec(delete(ChannelAccount).where(ChannelAccount.person_id == person_id))
    await session.delete(person)
    await session.flush()
    if household_id is not None:
        await settle_household(session, household_id)


async def _erase_offline_work(session: AsyncSession, person_id: int) -> None:
    """Issue 14's rows: their own initiatives and attendances go; what they recorded or helped with stays,
    without their id. Residents they helped keep their "learned with help" marks (`assisted`)."""
    await session.exec(delete(Initiative).where(col(Initiative.proposed_by) == person_id))
    await session.exec(update(Initiative).where(col(Initiative.recognised_by) == person_id).values(recognised_by=None))
    await session.exec(delete(UnitActivityMember).where(col(UnitActivityMember.person_id) == person_id))
    await session.exec(update(UnitActivity).where(col(UnitActivity.recorded_by) == person_id).values(recorded_by=None))
    for model in (LessonProgress, QuizAttempt):
        await session.exec(update(model).where(col(model.assisted_by) == person_id).values(assisted_by=None))
    await session.exec(update(Person).where(col(Person.registered_by) == person_id).values(registered_by=None))
    await session.exec(update(ConversationState).where(col(ConversationState.learning_with) == person_id)
                       .values(learning_with=None))


async def settle_household(session: AsyncSession, household_id: int) -> None:
    """After someone left: delete the household when nobody is left in it (unless the directory lists it),
    else make sure it has a head.

    Without a head nobody could remove a stranger or renew the code, so the member who has been
    registered longest takes the role. The row is locked before counting, so a join holding it
    finishes first and is counted (each statement of a PostgreSQL READ COMMITTED transaction sees what
    committed before it).
    """
    if not await _lock_household(session, household_id):
        return
    members = await household_members(session, household_id)
    if not members:
        # A household of the commune's directory stays listed (and keeps its code) with nobody in it.
        await session.exec(delete(Household).where(col(Household.id) == household_id,
                                                   col(Household.in_directory).is_(False)))
    elif not any(member.is_household_head for member in members):
        members[0].is_household_head = True
        session.add(members[0])
        await session.flush()


async def set_blocked(session: AsyncSession, channel: str, external_id: str, blocked: bool) -> None:
    """Mark a channel account blocked (it refused our messages) or reachable again."""
    await session.exec(
        update(ChannelAccount)
        .where(ChannelAccount.channel == channel, ChannelAccount.external_id == external_id)
        .values(blocked=blocked)
    )


async def is_blocked(session: AsyncSession, channel: str, external_id: str) -> bool:
    result = await session.exec(
        select(ChannelAccount.blocked).where(
            ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
        )
    )
    return bool(result.first())


async def latest_answers(session: AsyncSession, person_id: int) -> dict[str, Answer]:
    """The person's most recent answer to each question they ever answered, by question key."""
    result = await session.exec(
        select(Answer)
        .join(QuizAttempt, col(QuizAttempt.id) == col(Answer.attempt_id))
        .where(QuizAttempt.person_id == person_id)
        .order_by(col(Answer.answered_at), col(Answer.id))
    )
    return {answer.question_id: answer for answer in result.all()}


async def due_for_review(session: AsyncSession, person_id: int, now: datetime, after: timedelta) -> list[str]:
    """Questions whose latest answer was wrong and at least `after` ago, the oldest first.

    Answering one right takes it off the list; answering it wrong again brings it back `after` later.
    """
    latest = await latest_answers(session, person_id)
    due = [a for a in latest.values() if not a.correct and a.answered_at <= now - after]
    return [answer.question_id for answer in sorted(due, key=lambda a: (a.answered_at, a.id or 0))]


async def open_review(session: AsyncSession, person_id: int) -> QuizAttempt | None:
    result = await session.exec(
        select(QuizAttempt)
        .where(QuizAttempt.person_id == person_id, QuizAttempt.kind == "review",
               col(QuizAttempt.finished_at).is_(None))
        .order_by(col(QuizAttempt.id).desc())
    )
    return result.first()
