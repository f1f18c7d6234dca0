"""Queries of announcements (/thongbao) and learner nudges: who an audience reaches, one outbox row per
recipient in one INSERT ... SELECT, the announcements whose sending is over, and the learners due for
an encouragement.

Everything is counted and chosen in SQL: a province-sized audience (tens of thousands of people) is
never walked row by row in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    String,
    Subquery,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Activity,
    Announcement,
    ChannelAccount,
    ConversationState,
    Delivery,
    LessonProgress,
    Membership,
    Person,
)
from storage.types import UTCDateTime

_person = Person.__table__.c  # type: ignore[attr-defined]
_account_table = ChannelAccount.__table__  # type: ignore[attr-defined]
_state_table = ConversationState.__table__  # type: ignore[attr-defined]
_membership = Membership.__table__.c  # type: ignore[attr-defined]
_delivery_table = Delivery.__table__  # type: ignore[attr-defined]
_delivery = _delivery_table.c
_announcement_table = Announcement.__table__  # type: ignore[attr-defined]
_announcement = _announcement_table.c
_progress = LessonProgress.__table__.c  # type: ignore[attr-defined]
_activity = Activity.__table__.c  # type: ignore[attr-defined]

BUSY = ("queued", "sending")


# --- audiences ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Audience:
    """Who an announcement goes to: the commune, one village or one organisation (its members,
    confirmed or claimed)."""

    kind: str  # commune | village | org
    id: int | None = None

    @property
    def key(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


def parse_audience(key: str) -> Audience | None:
    """'org:5' -> Audience('org', 5); None for anything else (forged or damaged step data)."""
    kind, _, number = key.partition(":")
    if kind == "commune" and not number:
        return Audience(kind)
    if kind in {"village", "org"} and number.isascii() and number.isdecimal() and len(number) <= 9:
        return Audience(kind, int(number))
    return None


def _in_audience(audience: Audience) -> ColumnElement[bool]:
    if audience.kind == "village":
        return _person.village_id == audience.id  # type: ignore[no-any-return]
    if audience.kind == "org":
        return exists().where(_membership.person_id == _person.id,  # type: ignore[no-any-return]
                              _membership.organisation_id == audience.id)
    return true()


def _reachable() -> ColumnElement[bool]:
    """The person has an account the bot may write to (only consenting people have a person row)."""
    account = _account_table.c
    return exists().where(account.person_id == _person.id, account.blocked.is_(False))  # type: ignore[no-any-return]


def _newest_accounts() -> Subquery:
    """Each person's account that has not blocked the bot and whose chat they used last, else the
    newest: the one storage.outbox.account_for picks, so someone on two messengers gets one copy,
    where they are now."""
    account, state = _account_table.c, _state_table.c
    used = and_(state.channel == account.channel, state.external_id == account.external_id)
    rank = func.row_number().over(partition_by=account.person_id,
                                  order_by=(state.updated_at.desc().nulls_last(), account.id.desc()))
    ranked = (select(account.person_id, account.id.label("account_id"), rank.label("rank"))
              .select_from(_account_table.outerjoin(_state_table, used))
              .where(account.blocked.is_(False)).subquery("ranked"))
    return select(ranked.c.person_id, ranked.c.account_id).where(ranked.c.rank == 1).subquery("newest")


async def reachable_count(session: AsyncSession, audience: Audience) -> int:
    """How many people of the audience an announcement would reach now."""
    statement = select(func.count()).select_from(Person.__table__).where(  # type: ignore[attr-defined]
        _in_audience(audience), _reachable())
    return int((await (await session.connection()).execute(statement)).scalar_one())


async def enqueue_announcement(
    session: AsyncSession, announcement_id: int, audience: Audience, payload: list[dict[str, Any]], now: datetime,
) -> int:
    """One outbox row per reachable person of the audience (key `announcement:{id}:{person}`), in one
    INSERT ... SELECT; returns the rows stored (a key stored before is left as it is)."""
    newest = _newest_accounts()
    account = _account_table.c
    source = (
        select(
            literal(f"announcement:{announcement_id}:", String) + cast(_person.id, String),
            literal("announcement", String), account.channel, account.external_id, _person.id,
            # No CAST around the payload: SQLite reads "AS JSON" as numeric affinity and stores 0.
            literal(announcement_id), literal(payload, JSON), literal("queued", String), literal(0),
            literal(now, UTCDateTime), literal(now, UTCDateTime),
        )
        .select_from(Person.__table__  # type: ignore[attr-defined]
                     .join(newest, newest.c.person_id == _person.id)
                     .join(_account_table, account.id == newest.c.account_id))
        # Always a WHERE (the commune's is "1 = 1"): SQLite parses INSERT ... SELECT ... ON CONFLICT
        # only with one.
        .where(_in_audience(audience))
    )
    columns = ["key", "kind", "channel", "external_id", "person_id", "announcement_id", "payload", "status",
               "attempts", "next_try_at", "created_at"]
    connection = await session.connection()
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(_delivery_table).from_select(columns, source).on_conflict_do_nothing(index_elements=["key"])
    return int((await connection.execute(statement)).rowcount)


async def sent_since(session: AsyncSession, author_id: int, since: datetime) -> int:
    """Announcements a person made from `since` on (the flood limit)."""
    statement = select(func.count()).where(_announcement.author_id == author_id, _announcement.created_at >= since)
    return int((await (await session.connection()).execute(statement)).scalar_one())


# --- finishing --------------------------------------------------------------------------------------

async def finished_unreported(session: AsyncSession, limit: int) -> list[Announcement]:
    """Announcements none of whose rows still waits or is being sent, and whose author was not yet
    given the final numbers."""
    busy = exists().where(_delivery.announcement_id == Announcement.id, _delivery.status.in_(BUSY))
    statement = (select(Announcement).where(Announcement.finished_at.is_(None), ~busy)  # type: ignore[union-attr]
                 .order_by(Announcement.id).limit(limit))
    return list((await session.exec(statement)).scalars().all())  # type: ignore[call-overload]


async def mark_finished(session: AsyncSession, announcement_id: int, now: datetime) -> bool:
    """Set `finished_at` unless another process did first: only the winner tells the author."""
    result = await (await session.connection()).execute(
        update(_announcement_table)
        .where(_announcement.id == announcement_id, _announcement.finished_at.is_(None))
        .values(finished_at=now))
    return result.rowcount == 1


# --- nudges -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NudgeCandidate:
    person_id: int
    channel: str
    external_id: str
    next_lesson: str  # the first core lesson, in course order, not completed
    done: int  # core lessons completed


def nudge_candidates(
    connection: Connection, core: Sequence[str], *, idle_since: datetime, nudged_since: datetime,
) -> list[NudgeCandidate]:
    """People due for an encouragement, in one query (a `Database.read`): they consented (have a
    person row), did not turn nudges off, started the core course and did not complete it, did
    nothing since `idle_since`, got no nudge since `nudged_since` (one that expired unsent does not
    count), and have an account the bot may write to."""
    if not core:
        return []

    def completed(lesson_id: str) -> ColumnElement[bool]:
        return exists().where(_progress.person_id == _person.id, _progress.lesson_id == lesson_id,  # type: ignore[no-any-return]
                              _progress.status == "completed")

    # Each EXISTS is one seek in the (person_id, lesson_id) unique index, and CASE stops at the first.
    next_lesson = case(*[(~completed(lesson_id), literal(lesson_id, String)) for lesson_id in core], else_=null())
    done = (select(func.count()).where(_progress.person_id == _person.id, _progress.lesson_id.in_(list(core)),
                                       _progress.status == "completed").scalar_subquery())
    started = exists().where(_progress.person_id == _person.id, _progress.lesson_id.in_(list(core)))
    active = exists().where(_activity.person_id == _person.id, _activity.at > idle_since)
    nudged = exists().where(_delivery.person_id == _person.id, _delivery.kind == "nudge",
                            _delivery.created_at > nudged_since, _delivery.status != "expired")
    newest = _newest_accounts()
    account = _account_table.c
    inner = (
        select(_person.id.label("person_id"), account.channel, account.external_id,
               next_lesson.label("next_lesson"), done.label("done"))
        .select_from(Person.__table__  # type: ignore[attr-defined]
                     .join(newest, newest.c.person_id == _person.id)
                     .join(_account_table, account.id == newest.c.account_id))
        .where(and_(_person.nudges_off.is_(False), started, ~active, ~nudged))
        .subquery("due")
    )
    rows = connection.execute(select(inner).where(inner.c.next_lesson.is_not(None))
                              .order_by(inner.c.person_id)).all()
    return [NudgeCandidate(int(person_id), channel, external_id, lesson, int(done_count))
            for person_id, channel, external_id, lesson, done_count in rows]


async def enqueue_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Store outbox rows (each a dict of Delivery's columns, all with the same keys); returns how many
    were new (a key stored before is left as it is).

    One statement compiled once and sent as many rows (SQLAlchemy's "insertmanyvalues" batches them
    into multi-row INSERTs): compiling a multi-row VALUES per chunk cost seconds for thousands of rows.
    The ids it returns count the rows actually inserted, on SQLite and PostgreSQL alike.
    """
    if not rows:
        return 0
    connection = await session.connection()
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = (insert(_delivery_table).on_conflict_do_nothing(index_elements=["key"])
                 .returning(_delivery.id))
    return len((await connection.execute(statement, list(rows))).all())
