"""The inbox: updates stored before the messenger is told they arrived, and what is still to send.

A row goes through three moments, each its own commit:
1. stored (before the next poll or the webhook's 200), with a lease for the worker that stored it;
2. handled: the dispatcher's transaction stores the messages to send in `replies` (see
   `Dispatcher.handle(keep=...)`), so a crash after it resends them instead of losing them;
3. sent: `sent` counts the messages delivered so far, and `done_at` closes the row.
A row whose lease ran out without `done_at` (its worker died) is taken again by any worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboxUpdate, ProcessedUpdate

LEASE = timedelta(minutes=2)
# Telegram keeps an unconfirmed update for 24 hours; a week of keys is far more than a redelivery needs.
KEEP_HANDLED = timedelta(days=7)


@dataclass(frozen=True)
class Received:
    """One update as the messenger sent it, with the key that makes it unique and its chat."""

    delivery_key: str
    chat_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Pending:
    """A stored row still to finish: handle it (replies None), or send what is left of its replies."""

    id: int
    chat_id: str
    payload: dict[str, Any]
    replies: list[dict[str, Any]] | None
    sent: int


def _insert(connection: AsyncConnection) -> Any:
    return postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert


async def store(
    connection: AsyncConnection, channel: str, received: Sequence[Received], now: datetime
) -> list[tuple[Received, Pending]]:
    """Store new updates; returns those not stored before (a redelivery is dropped here).

    Run it in a durable transaction (`Database.transaction(durable=True)`): Telegram is told the
    updates arrived right after.
    """
    stored: list[tuple[Received, Pending]] = []
    insert = _insert(connection)
    for item in received:
        statement = (
            insert(InboxUpdate)
            .values(channel=channel, delivery_key=item.delivery_key, chat_id=item.chat_id, payload=item.payload,
                    sent=0, received_at=now, lease_until=now + LEASE)
            .on_conflict_do_nothing(index_elements=["channel", "delivery_key"])
            .returning(InboxUpdate.id)
        )
        row_id = (await connection.execute(statement)).scalar()
        if row_id is not None:
            stored.append((item, Pending(row_id, item.chat_id, item.payload, None, 0)))
    return stored


async def renew_lease(connection: AsyncConnection, row_id: int, now: datetime) -> None:
    """Keep a row that waited long in this worker's queue (a flood) from being taken by another."""
    await connection.execute(
        update(InboxUpdate)
        .where(col(InboxUpdate.id) == row_id, col(InboxUpdate.done_at).is_(None))
        .values(lease_until=now + LEASE)
    )


# Built once: these run for every update, and building a statement costs more than running it on SQLite.
_KEEP = update(InboxUpdate).where(col(InboxUpdate.id) == bindparam("row_id")).values(replies=bindparam("replies"))
_SENT = update(InboxUpdate).where(col(InboxUpdate.id) == bindparam("row_id")).values(sent=bindparam("sent"))
_SENT_AND_DONE = (update(InboxUpdate).where(col(InboxUpdate.id) == bindparam("row_id"))
                  .values(sent=bindparam("sent"), done_at=bindparam("done_at")))


async def keep_replies(connection: AsyncConnection, row_id: int, replies: list[dict[str, Any]]) -> None:
    """Record what the row's answer is, inside the transaction that handled it."""
    await connection.execute(_KEEP, {"row_id": row_id, "replies": replies})


async def mark_sent(connection: AsyncConnection, row_id: int, sent: int, now: datetime, *, done: bool) -> None:
    if done:
        await connection.execute(_SENT_AND_DONE, {"row_id": row_id, "sent": sent, "done_at": now})
    else:
        await connection.execute(_SENT, {"row_id": row_id, "sent": sent})


async def finish(connection: AsyncConnection, row_id: int, now: datetime, replies: list[dict[str, Any]]) -> None:
    """Close a row that needs no (more) sending: skipped, unreadable, or answered outside the dispatcher."""
    await connection.execute(
        update(InboxUpdate).where(col(InboxUpdate.id) == row_id).values(replies=replies, done_at=now)
    )


async def claim_unfinished(
    session: AsyncSession, channel: str, now: datetime, *, expired_only: bool
) -> list[Pending]:
    """Rows without `done_at`, oldest first, now leased to the caller.

    `expired_only` takes only rows whose worker's lease ran out (several workers on PostgreSQL); one
    process on its own SQLite file takes every row at start, since any row left was its own.
    """
    query = select(InboxUpdate).where(InboxUpdate.channel == channel, col(InboxUpdate.done_at).is_(None))
    if expired_only:
        query = query.where(InboxUpdate.lease_until < now)
    query = query.order_by(col(InboxUpdate.id)).with_for_update(skip_locked=True)
    rows = list((await session.exec(query)).all())
    claimed = []
    for row in rows:
        row.lease_until = now + LEASE
        session.add(row)
        claimed.append(Pending(row.id, row.chat_id, row.payload, row.replies, row.sent))  # type: ignore[arg-type]
    return claimed


async def prune(session: AsyncSession, now: datetime, keep: timedelta = KEEP_HANDLED) -> int:
    """Delete finished inbox rows and dedupe keys older than `keep`; returns how many went.

    Safe because a key only has to outlive the messenger's own redelivery window (24 hours on
    Telegram), and keys name what an update carries, so an old key can never stand for a new update.
    """
    cutoff = now - keep
    inbox = await session.exec(delete(InboxUpdate).where(col(InboxUpdate.done_at) < cutoff))
    processed = await session.exec(delete(ProcessedUpdate).where(col(ProcessedUpdate.processed_at) < cutoff))
    return (inbox.rowcount or 0) + (processed.rowcount or 0)
