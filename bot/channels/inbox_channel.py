"""What every messenger channel does with its inbox: store, queue per chat, replay, and record sends.

A channel (Telegram, Zalo) reads its own wire format into `inbox.Received` rows and `Incoming`
messages, and knows how to send; this base stores the rows before the messenger is told they arrived,
runs them per chat in order with a global bound (`ChatQueues`), takes up rows a crashed worker left,
prunes old keys, and records how many messages of an answer were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

from bot.chat_queues import ChatQueues
from handlers.core import Incoming
from handlers.dispatcher import Dispatcher
from storage import inbox
from storage.db import Database, is_sqlite

log = logging.getLogger(__name__)

SWEEP_EVERY = 30.0  # seconds between looks for rows a crashed worker left behind
PRUNE_EVERY = 3600.0
STOP_GRACE = 20.0  # seconds the updates in hand get to finish at a stop; then they wait in the inbox
Sleep = Callable[[float], Awaitable[None]]

# The inbox row whose answer this task is sending, so a long wait on the messenger can renew its lease.
_row_in_hand: ContextVar[int | None] = ContextVar("hocvuso_inbox_row", default=None)


@dataclass
class Job:
    """An inbox row to finish, with its update already read when it has just arrived."""

    pending: inbox.Pending
    update: Any = None  # the channel's own reading of the update
    incoming: Incoming | None = None
    queued_at: datetime | None = None


Arrived = tuple[inbox.Received, Any, Incoming]  # a row to store, the channel's update, its neutral form


class InboxChannel:
    """The inbox side of a channel; subclasses read updates and implement `_finish_job`."""

    channel: str

    def __init__(self, dispatcher: Dispatcher, concurrency: int, sleep: Sleep) -> None:
        self.dispatcher = dispatcher
        self.database: Database = dispatcher.services.database
        self.clock = dispatcher.services.clock
        self.sleep = sleep  # injected: tests record the pauses instead of waiting them
        self.queues: ChatQueues[Job] = ChatQueues(concurrency, self._process, f"{self.channel} update")
        self._in_hand: set[int] = set()  # inbox rows queued or running in this process
        self._tasks: list[asyncio.Task[None]] = []

    async def _start_inbox(self) -> None:
        """Replay what the inbox still holds, and start the upkeep."""
        # One process per SQLite file: every unfinished row was this process's before a restart.
        await self._replay(expired_only=not is_sqlite(self.database.url))
        self._tasks.append(asyncio.create_task(self._maintain_forever(), name=f"{self.channel}-maintenance"))

    async def _stop_inbox(self) -> None:
        """Stop fetching, finish the updates in hand; the rest waits in the inbox."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.queues.stop(grace=STOP_GRACE)

    async def _wait_without_a_slot(self, seconds: float) -> None:
        """A pause on the messenger (`retry_after`, a back-off): the slot serves another chat meanwhile."""
        async with ChatQueues.slot_lent():
            await self.sleep(seconds)
        row_id = _row_in_hand.get()
        if row_id is not None:  # still at work on it: no other worker may take it up meanwhile
            async with self.database.transaction() as connection:
                await inbox.renew_lease(connection, row_id, self.clock())

    # --- storing ---------------------------------------------------------------------------------

    def _refused(self, item: inbox.Received) -> None:
        log.warning("%s update skipped: the database refused it", self.channel)

    async def _store(self, received: list[Arrived]) -> None:
        if not received:
            return
        arrived = {item.delivery_key: (update, incoming) for item, update, incoming in received}
        items = [item for item, _, _ in received]
        try:
            stored = await self._store_items(items)
        except (DataError, IntegrityError):
            # One update the database refuses must not hold up the batch (and polling) forever: each is
            # stored on its own, and the refused one is skipped. An outage raises other errors.
            stored = []
            for item in items:
                try:
                    stored += await self._store_items([item])
                except (DataError, IntegrityError):
                    self._refused(item)
        for item, pending in stored:
            self._queue(Job(pending, *arrived[item.delivery_key]))

    async def _store_items(self, items: list[inbox.Received]) -> list[tuple[inbox.Received, inbox.Pending]]:
        async with self.database.transaction(durable=True) as connection:
            return await inbox.store(connection, self.channel, items, self.clock())

    def _queue(self, job: Job) -> None:
        if job.pending.id in self._in_hand:
            return
        self._in_hand.add(job.pending.id)
        job.queued_at = self.clock()
        self.queues.put(job.pending.chat_id, job)

    async def _replay(self, *, expired_only: bool) -> None:
        async with self.database.session() as session:
            rows = await inbox.claim_unfinished(session, self.channel, self.clock(), expired_only=expired_only)
        for pending in rows:
            self._queue(Job(pending))
        if rows:
            log.warning("%s: %d update(s) from before were taken up again", self.channel, len(rows))

    async def _maintain_forever(self) -> None:
        """Take up rows a crashed worker left, and prune old keys, now and then."""
        since_prune = PRUNE_EVERY
        while True:
            try:
                if since_prune >= PRUNE_EVERY:
                    async with self.database.session() as session:
                        await inbox.prune(session, self.clock())
                    since_prune = 0.0
                await self._replay(expired_only=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s inbox upkeep failed; trying again later", self.channel)
            await asyncio.sleep(SWEEP_EVERY)
            since_prune += SWEEP_EVERY

    # --- handling --------------------------------------------------------------------------------

    async def _process(self, job: Job) -> None:
        token = _row_in_hand.set(job.pending.id)
        try:
            if job.queued_at is not None and self.clock() - job.queued_at > inbox.LEASE / 2:
                async with self.database.transaction() as connection:
                    await inbox.renew_lease(connection, job.pending.id, self.clock())
            await self._finish_job(job)
        finally:
            _row_in_hand.reset(token)
            self._in_hand.discard(job.pending.id)

    async def _finish_job(self, job: Job) -> None:
        raise NotImplementedError

    async def _close_unusable(self, pending: inbox.Pending) -> None:
        """A stored row that can no longer be read as an update: closed with nothing to send."""
        async with self.database.transaction() as connection:
            await inbox.finish(connection, pending.id, self.clock(), [])

    async def _keep_apology(self, pending: inbox.Pending, calls: list[dict[str, Any]]) -> None:
        """After a failed turn (rolled back, answered with an apology): the apology becomes the row's
        answer. If even this fails, the row is taken up again once its lease runs out."""
        async with self.database.transaction() as connection:
            await inbox.keep_replies(connection, pending.id, calls)

    async def _record_sent(self, row_id: int, sent: int, *, finished: bool) -> None:
        # Urgent: until this is written, a kill -9 would make the restart send the message again.
        async with self.database.transaction(urgent=True) as connection:
            await inbox.mark_sent(connection, row_id, sent, self.clock(), done=finished)
