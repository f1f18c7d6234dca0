"""The outbox: every message the bot starts itself (a reminder, a nudge, an announcement, a notice) is
a `Delivery` row stored under a unique key before anything is sent. Its payload is the message as
channel-neutral JSON (`handlers.core.to_payload`).

The key names what the message is ("reminder:3:2026-12-10:7:42" is deadline 3's reminder seven days
before its 10/12/2026 occurrence, for person 42), so enqueueing it twice, from a restart or from a
second process, stores it once. A sender (bot/outbox.py) leases due rows, sends them and records the
outcome row by row. A sender killed between Telegram's answer and that record leaves a `sending` row
whose lease runs out; it is sent again: at most the messages in flight at the kill can repeat, and
none is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel import select as select_models
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelAccount, ConversationState, Delivery

_delivery = Delivery.__table__  # type: ignore[attr-defined]

REASON_MAX = 200


# --- putting messages in ----------------------------------------------------------------------------

def _insert(dialect: str) -> Any:
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


async def enqueue(
    session: AsyncSession, *, key: str, kind: str, channel: str, external_id: str, payload: list[dict[str, Any]],
    now: datetime, person_id: int | None = None, announcement_id: int | None = None,
    not_before: datetime | None = None, expires_at: datetime | None = None,
) -> bool:
    """Store one message under `key`; False when a message with that key was stored before (it is
    left as it is, whatever its state)."""
    connection = await session.connection()
    statement: Insert = _insert(connection.dialect.name)(_delivery).values(
        key=key[:160], kind=kind, channel=channel, external_id=external_id, person_id=person_id,
        announcement_id=announcement_id, payload=payload, status="queued", attempts=0,
        next_try_at=not_before or now, expires_at=expires_at, created_at=now,
    ).on_conflict_do_nothing(index_elements=["key"])
    result = await connection.execute(statement)
    return result.rowcount == 1


async def account_for(session: AsyncSession, person_id: int) -> ChannelAccount | None:
    """The account a message to this person goes to: of those that have not blocked the bot, the one
    whose chat they used last (its conversation state changes on every message they send), else the
    newest. Someone on two messengers (/lienket) gets one copy, where they are now."""
    used = and_(col(ConversationState.channel) == col(ChannelAccount.channel),
                col(ConversationState.external_id) == col(ChannelAccount.external_id))
    statement = (select_models(ChannelAccount)
                 .outerjoin(ConversationState, used)
                 .where(ChannelAccount.person_id == person_id, col(ChannelAccount.blocked).is_(False))
                 .order_by(col(ConversationState.updated_at).desc().nulls_last(), col(ChannelAccount.id).desc())
                 .limit(1))
    return (await session.exec(statement)).first()


async def enqueue_for_person(
    session: AsyncSession, person_id: int, *, key: str, kind: str, payload: list[dict[str, Any]], now: datetime,
    announcement_id: int | None = None, not_before: datetime | None = None, expires_at: datetime | None = None,
) -> bool:
    """Store a message to a person on their account (see `account_for`); False when they have no
    account the bot may write to, or when `key` was stored before."""
    account = await account_for(session, person_id)
    if account is None:
        return False
    return await enqueue(session, key=key, kind=kind, channel=account.channel, external_id=account.external_id,
                         payload=payload, now=now, person_id=person_id, announcement_id=announcement_id,
                         not_before=not_before, expires_at=expires_at)


# --- taking messages out ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Leased:
    """A row a sender holds until `lease_until`."""

    id: int
    key: str
    kind: str
    channel: str
    external_id: str
    person_id: int | None
    payload: list[dict[str, Any]]  # the message as handlers.core.to_payload made it
    attempts: int  # including this one


async def lease_due(
    session: AsyncSession, now: datetime, lease: timedelta, limit: int, channels: Sequence[str],
    external_id: str | None = None,
) -> list[Leased]:
    """Lease up to `limit` due rows of `channels`, oldest first.

    First, in the same transaction: rows past `expires_at` become `expired`, and `sending` rows whose
    lease ran out (their sender died) are due again. On PostgreSQL the rows are locked with SKIP
    LOCKED, so several senders share the outbox without taking the same row; SQLite has one writer.
    """
    delivery = _delivery.c
    await session.exec(update(_delivery)  # type: ignore[call-overload]
                       .where(delivery.status == "queued", delivery.expires_at.is_not(None),
                              delivery.expires_at <= now)
                       .values(status="expired", reason="hết thời gian gửi"))
    await session.exec(update(_delivery)  # type: ignore[call-overload]
                       .where(delivery.status == "sending", delivery.lease_until < now)
                       .values(status="queued"))
    due = (select(delivery.id)
           .where(delivery.status == "queued", delivery.next_try_at <= now, delivery.channel.in_(list(channels)))
           .order_by(delivery.next_try_at, delivery.id).limit(limit))
    if external_id is not None:  # one chat's messages only (the terminal shows its own person's)
        due = due.where(delivery.external_id == external_id)
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row[0] for row in (await connection.execute(due)).all()]
    if not ids:
        return []
    rows = (await connection.execute(
        update(_delivery).where(delivery.id.in_(ids))
        .values(status="sending", lease_until=now + lease, attempts=delivery.attempts + 1)
        .returning(delivery.id, delivery.key, delivery.kind, delivery.channel, delivery.external_id,
                   delivery.person_id, delivery.payload, delivery.attempts)
    )).all()
    leased = [Leased(id_, key, kind, channel, external_id, person_id, list(payload), attempts)
              for id_, key, kind, channel, external_id, person_id, payload, attempts in rows]
    return sorted(leased, key=lambda row: ids.index(row.id))


async def _finish(session: AsyncSession, row_id: int, **values: Any) -> None:
    delivery = _delivery.c
    await session.exec(update(_delivery).where(delivery.id == row_id)  # type: ignore[call-overload]
                       .values(lease_until=None, **values))


async def mark_sent(session: AsyncSession, row_id: int, now: datetime, note: str | None = None) -> None:
    """Sent; `note` when it is not certain (a timeout after the message went out is taken as sent,
    since sending again could repeat it)."""
    await _finish(session, row_id, status="sent", sent_at=now, reason=note[:REASON_MAX] if note else None)


async def retry_at(session: AsyncSession, row_id: int, when: datetime, reason: str, *, counted: bool = True) -> None:
    """Due again at `when`. Not `counted`: the try was not the message's failure (the messenger asked
    to wait, or the chat had a message a moment ago), so it does not use up one of its tries."""
    extra: dict[str, Any] = {} if counted else {"attempts": _delivery.c.attempts - 1}
    await _finish(session, row_id, status="queued", next_try_at=when, reason=reason[:REASON_MAX], **extra)


async def give_up(session: AsyncSession, row_id: int, status: str, reason: str) -> None:
    """`failed` (kept, with its reason) or `blocked` (the person blocked the bot)."""
    assert status in ("failed", "blocked")
    await _finish(session, row_id, status=status, reason=reason[:REASON_MAX])


# --- what it holds ------------------------------------------------------------------------------------

async def status_counts(session: AsyncSession, *, announcement_id: int | None = None) -> dict[str, int]:
    """Rows per status (all statuses present, zero when none), of one announcement or of everything."""
    delivery = _delivery.c
    query = select(delivery.status, func.count()).group_by(delivery.status)
    if announcement_id is not None:
        query = query.where(delivery.announcement_id == announcement_id)
    counted = {status: count for status, count in (await (await session.connection()).execute(query)).all()}
    return {status: int(counted.get(status, 0)) for status in ("queued", "sending", "sent", "failed", "blocked",
                                                                "expired")}


async def kind_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(kind, status) -> rows, for `hocvuso outbox`."""
    delivery = _delivery.c
    rows = (await (await session.connection()).execute(
        select(delivery.kind, delivery.status, func.count()).group_by(delivery.kind, delivery.status))).all()
    return {(kind, status): int(count) for kind, status, count in rows}


async def recent_failures(session: AsyncSession, limit: int = 20) -> list[tuple[str, str, str | None]]:
    """(kind, key, reason) of the latest failed rows: the key names the occasion, never the text."""
    delivery = _delivery.c
    rows = (await (await session.connection()).execute(
        select(delivery.kind, delivery.key, delivery.reason)
        .where(or_(delivery.status == "failed", and_(delivery.status == "queued", delivery.attempts > 1)))
        .order_by(delivery.id.desc()).limit(limit))).all()
    return [(kind, key, reason) for kind, key, reason in rows]
