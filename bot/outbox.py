"""The outbox sender: delivers `Delivery` rows (storage/outbox.py) within each messenger's limits.

A loop leases due rows in batches and starts each send at its turn: at most `rate` a second per
channel (Telegram allows a bot about 30) and one a second per chat. Each outcome is recorded in its own
transaction the moment it is known:
- sent: `sent`;
- the messenger asks to wait (429 `retry_after`): the whole channel pauses that long, and the row is
  due again then, without counting as a failed try;
- a transient error (5xx, a failed connection): due again after a growing pause (2, 4, 8 … s, at most
  five minutes), kept as `failed` with its reason after `max_attempts` tries;
- the person blocked the bot: `blocked`, and their account is marked so nothing more is queued;
- the messenger refuses the message: `failed`, with its reason.

Several senders may run at once: on PostgreSQL each leases with SKIP LOCKED, on SQLite the lease is one
IMMEDIATE transaction. The rate limit is per process: run one sender per bot token, or give each a
share of `rate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from handlers.core import Reply, from_payload
from storage import outbox, queries
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
# A row is never held past its lease: a start further away than this (the channel paused by a 429) puts
# the rows not yet started back, due when the pause ends, instead of sleeping on them.
LONG_WAIT_SECONDS = 10.0


class Outcome(StrEnum):
    SENT = "sent"
    WAIT = "wait"  # the messenger asked to wait `seconds` (Telegram's 429)
    RETRY = "retry"  # a transient error: try again later
    BLOCKED = "blocked"  # the person blocked the bot
    REFUSED = "refused"  # the messenger will never take this message


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    seconds: float = 0.0
    reason: str = ""  # Vietnamese, for `hocvuso outbox`; never the message's text


class Transport(Protocol):
    """One messenger, as the sender sees it: one try at one message, never retried inside."""

    channel: str

    async def send(self, external_id: str, replies: list[Reply]) -> Result: ...


class RateLimiter:
    """When the next message may start: `rate` a second overall, one per `chat_interval` per chat,
    nothing while the channel is paused."""

    def __init__(self, rate: float, chat_interval: float, monotonic: Callable[[], float]) -> None:
        self.interval = 1.0 / rate
        self.chat_interval = chat_interval
        self.monotonic = monotonic
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._chats: dict[str, float] = {}

    def chat_wait(self, chat: str) -> float:
        """Seconds until this chat may get another message (0: now)."""
        return max(0.0, self._chats.get(chat, -1e9) + self.chat_interval - self.monotonic())

    def slot_wait(self) -> float:
        """Seconds until the next start could be, without reserving it."""
        return max(0.0, self._next_slot - self.monotonic(), self._paused_until - self.monotonic())

    def take_slot(self, chat: str) -> float:
        """Reserve the next start for `chat`; returns how long to wait for it."""
        now = self.monotonic()
        start = max(now, self._next_slot, self._paused_until)
        self._next_slot = start + self.interval
        self._chats[chat] = start
        if len(self._chats) > 10_000:  # forget chats served long ago
            horizon = now - self.chat_interval
            self._chats = {key: at for key, at in self._chats.items() if at > horizon}
        return start - now

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.monotonic() + seconds)


def backoff(attempts: int) -> float:
    """The pause before try `attempts + 1` after a transient error."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** attempts)


class OutboxSender:
    """Drains the outbox for the given transports (one per channel)."""

    def __init__(
        self, database: Database, transports: Sequence[Transport], clock: Callable[[], datetime], *,
        rate: float = 30.0, chat_interval: float = 1.0, max_attempts: int = 5,
        lease: timedelta = timedelta(minutes=2), batch: int = 60, in_flight: int = 16,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, monotonic: Callable[[], float] = time.monotonic,
        idle_seconds: float = 2.0,
    ) -> None:
        self.database = database
        self.transports = {transport.channel: transport for transport in transports}
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease = lease
        self.batch = batch
        self.sleep = sleep
        self.idle_seconds = idle_seconds
        self.limiters = {channel: RateLimiter(rate, chat_interval, monotonic) for channel in self.transports}
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.handled = 0  # rows whose outcome was recorded, for benchmarks and logs

    def wake(self) -> None:
        """New rows were queued: look now, not at the next idle check."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; between rounds, wait for `wake()` or `idle_seconds`."""
        while not stop.is_set():
            try:
                await self.drain(stop)
            except Exception:  # a database that is gone for a moment: try again after the pause
                log.exception("the outbox sender failed a round; it tries again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_of(stop.wait(), self._wake.wait()), self.idle_seconds)
        await self.finish()

    @staticmethod
    async def _first_of(*waits: Awaitable[object]) -> None:
        tasks = [asyncio.ensure_future(wait) for wait in waits]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Send everything due now, until `stop` is set; returns how many rows were started.

        Rows leased but not started when it stops, or when a channel must wait long, are put back at
        once (not left to their lease): another sender, or the next start, takes them.
        """
        started = 0
        while stop is None or not stop.is_set():
            async with self.database.session() as session:
                leased = await outbox.lease_due(session, self.clock(), self.lease, self.batch, list(self.transports))
            if not leased:
                return started
            for index, row in enumerate(leased):
                wait = 0.0 if stop is None or not stop.is_set() else None
                if wait is not None:
                    wait = await self._start(row)
                if wait is None or wait > 0:  # stopping, or this channel waits: the rest goes back
                    await self._put_back(leased[index:], wait or 0.0)
                    return started
                started += 1
        return started

    async def _put_back(self, rows: Sequence[outbox.Leased], wait: float) -> None:
        when = self.clock() + timedelta(seconds=wait)
        async with self.database.session() as session:
            for row in rows:
                await outbox.retry_at(session, row.id, when, "chưa đến lượt gửi", counted=False)

    async def finish(self) -> None:
        """Wait for the sends in flight and their records."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _start(self, row: outbox.Leased) -> float:
        """Start sending `row` at its turn; 0 when started (or put off for its chat), else how long its
        channel must wait (the row is left to the caller, still leased)."""
        limiter = self.limiters[row.channel]
        chat_wait = limiter.chat_wait(row.external_id)
        if chat_wait > 0:  # this chat just got a message: it waits its turn in the database, not here
            async with self.database.session() as session:
                await outbox.retry_at(session, row.id, self.clock() + timedelta(seconds=chat_wait), "giãn cách",
                                      counted=False)
            return 0.0
        await self._slots.acquire()
        channel_wait = limiter.slot_wait()  # after the slot: a 429 may have paused the channel meanwhile
        if channel_wait > LONG_WAIT_SECONDS:
            self._slots.release()
            return channel_wait
        wait = limiter.take_slot(row.external_id)
        if wait > 0:
            await self.sleep(wait)
        task = asyncio.create_task(self._send(row))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return 0.0

    async def _send(self, row: outbox.Leased) -> None:
        try:
            try:
                result = await self.transports[row.channel].send(row.external_id, from_payload(row.payload))
            except Exception as error:  # a bug or an unexpected answer: retried, then kept as failed
                log.warning("outbox: a %s message could not be sent (%s)", row.kind, type(error).__name__)
                result = Result(Outcome.RETRY, reason=f"lỗi không lường trước: {type(error).__name__}")
            await self._record(row, result)
        finally:
            self._slots.release()

    async def _record(self, row: outbox.Leased, result: Result) -> None:
        now = self.clock()
        async with self.database.session() as session:
            if result.outcome is Outcome.SENT:
                await outbox.mark_sent(session, row.id, now, result.reason or None)
            elif result.outcome is Outcome.WAIT:
                self.limiters[row.channel].pause(result.seconds)
                await outbox.retry_at(session, row.id, now + timedelta(seconds=result.seconds),
                                      result.reason or "chờ theo yêu cầu của máy chủ", counted=False)
            elif result.outcome is Outcome.RETRY and row.attempts < self.max_attempts:
                await outbox.retry_at(session, row.id, now + timedelta(seconds=backoff(row.attempts)), result.reason)
            elif result.outcome is Outcome.BLOCKED:
                await outbox.give_up(session, row.id, "blocked", result.reason or "người nhận đã chặn bot")
                await queries.set_blocked(session, row.channel, row.external_id, True)
            else:  # refused, or transient errors until the last try
                await outbox.give_up(session, row.id, "failed", result.reason or "không gửi được")
        self.handled += 1
