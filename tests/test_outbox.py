"""The outbox (issue 11): stored once by key, sent within Telegram's limits, each message exactly once.

Storage and sender tests run on SQLite and, with TEST_DATABASE_URL, on PostgreSQL. Time is virtual:
the sender's clock, monotonic clock and sleep, and the fake Bot API server's flood control all read one
`VirtualTime`, which moves only when the sender sleeps, so 30 messages a second are tested without
waiting a second.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select
from telegram.error import NetworkError

from bot.channels.telegram import TelegramOutbox, make_bot, make_requests
from bot.outbox import OutboxSender, Outcome, Result, Transport
from bot.settings import Settings
from handlers.core import Button, Reply, to_payload
from storage import migrate, outbox
from storage.db import Database
from storage.models import ChannelAccount, Delivery, Person
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.support import START

LEASE = timedelta(minutes=2)


# --- virtual time -------------------------------------------------------------------------------------

class VirtualTime:
    """One clock for senders and the fake server; it moves only when told (a sender's sleep, a test)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()  # senders on threads of their own share it

    def monotonic(self) -> float:
        return self.seconds

    def clock(self) -> datetime:
        return START + timedelta(seconds=self.seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.seconds += max(0.0, seconds)

    def advance_to(self, when: datetime) -> None:
        self.advance((when - self.clock()).total_seconds())


class Wire:
    """A transport as the sender sees it, watched: which sends are on the wire (time does not move
    while one is, so the fake sees each send at the moment it was paced for), and a cut like a kill -9
    after `cut_after` sends: later sends hang for ever, after their message went out or before."""

    def __init__(self, inner: Transport, time: VirtualTime) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.time = time
        self.calls: list[tuple[str, float]] = []  # (chat, virtual second) of every send started
        self.cut_after: int | None = None
        self.went_out = True
        self.hung: list[asyncio.Task[Any]] = []
        self._on_wire = 0
        self._idle = asyncio.Condition()  # notified when a send leaves the wire or hangs

    async def send(self, external_id: str, replies: list[Reply]) -> Result:
        self.calls.append((external_id, self.time.monotonic()))
        cut = self.cut_after is not None and len(self.calls) > self.cut_after
        if cut and not self.went_out:
            return await self._hang()
        async with self._idle:
            self._on_wire += 1
        try:
            result = await self.inner.send(external_id, replies)
        finally:
            async with self._idle:
                self._on_wire -= 1
                self._idle.notify_all()
        return await self._hang() if cut else result

    async def _hang(self) -> Result:
        """What a killed process does: never records anything."""
        task = asyncio.current_task()
        assert task is not None
        async with self._idle:
            self.hung.append(task)
            self._idle.notify_all()
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def idle(self) -> None:
        async with self._idle:
            await self._idle.wait_for(lambda: self._on_wire == 0)

    async def hanging(self, count: int) -> None:
        """Wait until `count` sends hang (the sender cut off)."""
        async with self._idle:
            await asyncio.wait_for(self._idle.wait_for(lambda: len(self.hung) >= count), 30)

    def sleep(self) -> Callable[[float], Awaitable[None]]:
        """The sender's sleep: lets the send just started reach the wire, waits for the sends on it,
        then moves virtual time."""
        async def _sleep(seconds: float) -> None:
            await asyncio.sleep(0)
            await self.idle()
            self.time.advance(seconds)
            await asyncio.sleep(0)
        return _sleep


class Scripted:
    """A messenger that answers from a script (then `SENT`), for tests that need no HTTP."""

    channel = "telegram"

    def __init__(self, *results: Result) -> None:
        self.results = list(results)

    async def send(self, external_id: str, replies: list[Reply]) -> Result:
        return self.results.pop(0) if self.results else Result(Outcome.SENT)


# --- helpers ------------------------------------------------------------------------------------------

@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    built = Database(database_url)
    await migrate.upgrade(built.engine)
    yield built
    await built.dispose()


def reminder(number: int) -> list[dict[str, Any]]:
    return to_payload([Reply(f"⏰ Nhắc hạn báo cáo số {number}: còn 7 ngày.", ((Button("📄 Báo cáo", "report"),),))])


async def fill(database: Database, time: VirtualTime, chats: list[int], **extra: Any) -> list[tuple[int, str]]:
    """One reminder per entry of `chats` (a chat may come more than once); returns (chat, text) of each."""
    sent: list[tuple[int, str]] = []
    async with database.session() as session:
        for number, chat in enumerate(chats):
            payload = reminder(number)
            assert await outbox.enqueue(session, key=f"reminder:1:2026-12-10:7:{number}", kind="reminder",
                                        channel="telegram", external_id=str(chat), payload=payload,
                                        now=time.clock(), **extra)
            sent.append((chat, payload[0]["text"]))
    return sent


def sender_for(database: Database, wire: Wire, **options: Any) -> OutboxSender:
    return OutboxSender(database, [wire], wire.time.clock, sleep=wire.sleep(), monotonic=wire.time.monotonic,
                        **options)


async def drive(sender: OutboxSender, database: Database, time: VirtualTime) -> None:
    """Drain until nothing is queued, moving the clock to the next row due (after a 429, a chat's
    second, a back-off)."""
    for _ in range(1000):
        await sender.drain()
        await sender.finish()
        async with database.session() as session:
            due = (await session.exec(select(func.min(Delivery.next_try_at))  # type: ignore[call-overload]
                                      .where(Delivery.status == "queued"))).one()
        if due is None:
            return
        # Some time always passes between rounds (a row due "now" may still be a microsecond early).
        time.advance(max(1e-6, (due - time.clock()).total_seconds()))
    raise AssertionError("the outbox never emptied")


async def rows(database: Database) -> list[Delivery]:
    async with database.session() as session:
        return list((await session.exec(select(Delivery).order_by(Delivery.id))).all())  # type: ignore[arg-type]


async def statuses(database: Database) -> dict[str, int]:
    async with database.session() as session:
        return {status: n for status, n in (await outbox.status_counts(session)).items() if n}


# --- storage ------------------------------------------------------------------------------------------

async def test_enqueue_is_idempotent_by_key(database, time):
    async with database.session() as session:
        first = await outbox.enqueue(session, key="reminder:1:2026-12-10:7:42", kind="reminder", channel="telegram",
                                     external_id="42", payload=reminder(1), now=time.clock())
        again = await outbox.enqueue(session, key="reminder:1:2026-12-10:7:42", kind="reminder", channel="telegram",
                                     external_id="42", payload=reminder(2), now=time.clock())
        nobody = await outbox.enqueue_for_person(session, 999, key="nudge:999:1", kind="nudge", payload=reminder(3),
                                                 now=time.clock())
    assert (first, again, nobody) == (True, False, False)
    stored = await rows(database)
    assert len(stored) == 1 and stored[0].payload == reminder(1)  # the first stays as it was


async def test_a_row_is_leased_once_and_then_recorded(database, time):
    await fill(database, time, [1, 2])
    async with database.session() as session:
        await outbox.enqueue(session, key="later", kind="notice", channel="telegram", external_id="3",
                             payload=reminder(9), now=time.clock(), not_before=time.clock() + timedelta(hours=1))
    async with database.session() as session:
        first = await outbox.lease_due(session, time.clock(), LEASE, 1, ["telegram"])
    async with database.session() as session:
        second = await outbox.lease_due(session, time.clock(), LEASE, 10, ["telegram", "zalo"])
        none = await outbox.lease_due(session, time.clock(), LEASE, 10, ["telegram"])
    assert [(row.external_id, row.attempts) for row in first + second] == [("1", 1), ("2", 1)]
    assert none == []  # leased rows are not taken again, and "later" is not due
    async with database.session() as session:
        await outbox.mark_sent(session, first[0].id, time.clock())
    assert await statuses(database) == {"sent": 1, "sending": 1, "queued": 1}
    held = (await rows(database))[1]
    assert held.status == "sending" and held.lease_until == time.clock() + LEASE


async def test_a_429_pauses_the_channel_and_reschedules_without_using_a_try(database, time):
    await fill(database, time, [1, 2, 3])
    seen: list[tuple[str, int, str | None, datetime]] = []

    class Peeks(Scripted):
        async def send(self, external_id: str, replies: list[Reply]) -> Result:
            if external_id == "2":  # the first row, meanwhile
                first = (await rows(database))[0]
                seen.append((first.status, first.attempts, first.reason, first.next_try_at))
            return await super().send(external_id, replies)

    wire = Wire(Peeks(Result(Outcome.WAIT, 7.0, "Telegram yêu cầu chờ (429)")), time)
    sender = sender_for(database, wire, in_flight=1)  # one at a time: the pause is known before the next
    await drive(sender, database, time)
    # Nothing starts during the pause; the first row goes again once it is due.
    assert [(chat, round(at, 3)) for chat, at in wire.calls] == [("1", 0.0), ("2", 7.0), ("3", 7.033), ("1", 7.067)]
    assert seen == [("queued", 0, "Telegram yêu cầu chờ (429)", START + timedelta(seconds=7))]
    assert [(row.status, row.attempts) for row in await rows(database)] == [("sent", 1)] * 3


async def test_transient_errors_back_off_then_end_failed_with_the_reason(database, time):
    await fill(database, time, [1])
    error = Result(Outcome.RETRY, reason="lỗi mạng hoặc máy chủ Telegram")
    wire = Wire(Scripted(*[error] * 10), time)
    sender = sender_for(database, wire, max_attempts=3)
    await drive(sender, database, time)
    assert [at for _, at in wire.calls] == [0.0, 2.0, 6.0]  # 2 s, then 4 s, then no fourth try
    row = (await rows(database))[0]
    assert (row.status, row.attempts, row.reason) == ("failed", 3, "lỗi mạng hoặc máy chủ Telegram")


async def test_a_refused_message_fails_at_once_with_telegrams_reason(database, time):
    await fill(database, time, [1])
    wire = Wire(Scripted(Result(Outcome.REFUSED, reason="Telegram từ chối: Bad Request: chat not found")), time)
    await drive(sender_for(database, wire), database, time)
    row = (await rows(database))[0]
    assert len(wire.calls) == 1
    assert (row.status, row.reason) == ("failed", "Telegram từ chối: Bad Request: chat not found")


async def test_a_403_marks_the_row_and_the_account_blocked(database, time):
    async with database.session() as session:
        person = Person(full_name="Nguyễn Văn An", consent_at=time.clock(), created_at=time.clock())
        session.add(person)
        await session.flush()
        session.add(ChannelAccount(channel="telegram", external_id="42", person_id=person.id, created_at=time.clock()))
        await session.flush()
        assert await outbox.enqueue_for_person(session, person.id, key="reminder:a", kind="reminder",
                                               payload=reminder(1), now=time.clock())
    wire = Wire(Scripted(Result(Outcome.BLOCKED, reason="người nhận đã chặn bot")), time)
    await drive(sender_for(database, wire), database, time)
    async with database.session() as session:
        account = (await session.exec(select(ChannelAccount))).one()
        later = await outbox.enqueue_for_person(session, person.id, key="reminder:b", kind="reminder",
                                                payload=reminder(2), now=time.clock())
    row = (await rows(database))[0]
    assert (row.status, row.reason, len(wire.calls)) == ("blocked", "người nhận đã chặn bot", 1)
    assert account.blocked and later is False  # nothing more is queued for someone who blocked the bot


async def test_expired_rows_are_never_sent(database, time):
    await fill(database, time, [1], expires_at=time.clock() + timedelta(hours=1))
    async with database.session() as session:
        await outbox.enqueue(session, key="stays", kind="notice", channel="telegram", external_id="2",
                             payload=reminder(5), now=time.clock())
    time.advance(2 * 3600)
    wire = Wire(Scripted(), time)
    await drive(sender_for(database, wire), database, time)
    assert [chat for chat, _ in wire.calls] == ["2"]
    assert [(row.status, row.reason) for row in await rows(database)] == [
        ("expired", "hết thời gian gửi"), ("sent", None)]


async def test_a_lease_left_by_a_dead_sender_is_taken_again(database, time):
    await fill(database, time, [1])
    async with database.session() as session:  # a sender leases the row, then dies
        assert len(await outbox.lease_due(session, time.clock(), LEASE, 10, ["telegram"])) == 1
    wire = Wire(Scripted(), time)
    sender = sender_for(database, wire)
    await sender.drain()
    assert wire.calls == []  # still leased
    time.advance(LEASE.total_seconds() + 1)
    await drive(sender, database, time)
    assert len(wire.calls) == 1
    assert [(row.status, row.attempts) for row in await rows(database)] == [("sent", 2)]


async def test_the_sender_keeps_to_30_a_second_and_one_a_second_per_chat(database, time):
    await fill(database, time, [*range(100, 160), 7, 7, 7])
    wire = Wire(Scripted(), time)
    await drive(sender_for(database, wire), database, time)
    times = sorted(at for _, at in wire.calls)
    assert len(times) == 63
    assert max(sum(1 for at in times if start <= at < start + 1 - 1e-6) for start in times) <= 30
    chat = [at for chat, at in wire.calls if chat == "7"]
    assert len(chat) == 3 and all(b - a >= 1 - 1e-6 for a, b in itertools.pairwise(chat))


async def test_stopping_returns_once_the_sends_in_flight_are_recorded(database, time):
    """A SIGTERM with 100 rows queued: the sends in flight finish and are recorded, the rows leased but
    not started go back at once (not after their lease), and nothing is lost."""
    await fill(database, time, list(range(1, 101)))
    stop = asyncio.Event()

    class StopsAfterFive(Scripted):
        async def send(self, external_id: str, replies: list[Reply]) -> Result:
            if len(wire.calls) == 5:
                stop.set()  # SIGTERM arrives
            return Result(Outcome.SENT)

    wire = Wire(StopsAfterFive(), time)
    sender = sender_for(database, wire)
    await sender.run(stop)
    assert sender.handled <= 5 + 16
    async with database.session() as session:
        counts = await outbox.status_counts(session)
    assert counts["sending"] == 0 and counts["sent"] == sender.handled and counts["queued"] == 100 - sender.handled


async def test_a_429_longer_than_the_lease_sends_nothing_twice(database, time):
    """The channel paused longer than a lease: the rows not yet started go back, due when the pause
    ends, instead of being slept on while their leases run out and another round takes them again."""
    chats = [1, 2, 3, 4, 5]
    await fill(database, time, chats)
    wire = Wire(Scripted(Result(Outcome.WAIT, LEASE.total_seconds() + 30, "Telegram yêu cầu chờ (429)")), time)
    await drive(sender_for(database, wire, in_flight=1), database, time)
    sends = [chat for chat, _ in wire.calls]
    assert sorted(sends) == ["1", *map(str, chats)]  # the first twice (after its 429), every other once


# --- end to end through the fake Bot API server --------------------------------------------------------

@pytest.fixture
async def telegram(time: VirtualTime) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(rate_limit=30, chat_limit=1.0, blocked={666}, monotonic=time.monotonic) as fake:
        yield fake


def settings_for(database: Database, telegram: FakeTelegram) -> Settings:
    return Settings(_env_file=None, database_url=database.url, telegram_token=TOKEN,  # type: ignore[call-arg]
                    telegram_api_url=telegram.api_url, telegram_timeout=5)


async def deliver_all(database: Database, telegram: FakeTelegram, time: VirtualTime, **options: Any) -> Wire:
    """A sender with the real TelegramOutbox (PTB against the fake) drains the outbox."""
    bot = make_bot(settings_for(database, telegram), make_requests(settings_for(database, telegram)))
    async with bot:
        wire = Wire(TelegramOutbox(bot), time)
        await drive(sender_for(database, wire, **options), database, time)
    return wire


def repeats(telegram: FakeTelegram) -> int:
    return sum(n - 1 for n in telegram.message_counts().values())


async def test_at_30_a_second_every_message_arrives_exactly_once(database, telegram, time):
    chats = [*range(1000, 1100), 2000, 2000, 2000, 666]  # three for one chat; 666 blocked the bot
    expected = await fill(database, time, chats)
    await deliver_all(database, telegram, time)
    counts = telegram.message_counts()
    assert {key: counts[key] for key in expected if key[0] != 666} == {key: 1 for key in expected if key[0] != 666}
    assert sum(counts.values()) == len(chats) - 1
    assert telegram.too_many == 0  # paced within both limits, Telegram never had to refuse
    assert await statuses(database) == {"sent": len(chats) - 1, "blocked": 1}
    taken = [sent.at for sent in telegram.messages_taken()]
    assert time.seconds >= (len(taken) - 1) / 30 - 1e-6


async def test_a_sender_faster_than_telegram_allows_waits_out_each_429(database, time):
    async with FakeTelegram(rate_limit=10, monotonic=time.monotonic) as telegram:
        expected = await fill(database, time, list(range(1000, 1060)))
        await deliver_all(database, telegram, time)
    assert telegram.too_many > 0
    assert telegram.message_counts() == dict.fromkeys(expected, 1)
    assert {(row.status, row.attempts) for row in await rows(database)} == {("sent", 1)}  # no 429 cost a try


@pytest.mark.parametrize("stop", ["between sends", "in flight"])
async def test_a_restart_in_the_middle_delivers_every_message_once(database, telegram, time, stop):
    """Killed after 30 sends with 16 more started: "in flight", those 16 had reached Telegram unrecorded
    and are the only repeats; "between sends", none had left and nothing repeats."""
    expected = await fill(database, time, list(range(1000, 1100)))
    bot = make_bot(settings_for(database, telegram), make_requests(settings_for(database, telegram)))
    async with bot:
        wire = Wire(TelegramOutbox(bot), time)
        wire.cut_after, wire.went_out = 30, stop == "in flight"
        sender = sender_for(database, wire)
        draining = asyncio.create_task(sender.drain())
        await wire.hanging(16)  # every slot is taken by a send that never ends
        for task in [draining, *wire.hung]:
            task.cancel()
        await asyncio.gather(draining, *wire.hung, return_exceptions=True)
    in_flight = len(wire.hung)
    leased = (await statuses(database))["sending"]
    gone_out = sum(telegram.message_counts().values())
    await database.dispose()

    time.advance(LEASE.total_seconds() + 1)
    restarted = Database(database.url)
    try:
        await deliver_all(restarted, telegram, time)
        assert await statuses(restarted) == {"sent": len(expected)}
    finally:
        await restarted.dispose()
    counts = telegram.message_counts()
    assert set(counts) == set(expected)  # nothing lost
    assert leased >= in_flight == 16
    assert gone_out == (46 if stop == "in flight" else 30)
    assert repeats(telegram) == (in_flight if stop == "in flight" else 0)


async def test_two_senders_at_once_deliver_every_message_exactly_once(database, telegram, time):
    """Two processes, played by two threads with an event loop, a Database and a bot each."""
    expected = await fill(database, time, list(range(1000, 1240)))
    handled: list[int] = []

    async def one_sender() -> None:
        own = Database(database.url)
        bot = make_bot(settings_for(own, telegram), make_requests(settings_for(own, telegram)))
        async with bot:
            sender = sender_for(own, Wire(TelegramOutbox(bot), time), rate=15.0)  # half the bot's limit each
            await drive(sender, own, time)
        handled.append(sender.handled)
        await own.dispose()

    await asyncio.gather(*(asyncio.to_thread(asyncio.run, one_sender()) for _ in range(2)))
    assert telegram.message_counts() == dict.fromkeys(expected, 1)
    assert sum(handled) == len(expected) and min(handled) > 0  # both took part
    assert await statuses(database) == {"sent": len(expected)}


# --- TelegramOutbox: what a failed connection means ---------------------------------------------------

class _FailingBot:
    def __init__(self, cause: Exception) -> None:
        self.cause = cause

    async def send_message(self, **_: Any) -> None:
        error = NetworkError("telegram unreachable")
        error.__cause__ = self.cause
        raise error


@pytest.mark.parametrize(("cause", "outcome"), [
    (httpx.ReadTimeout("read"), Outcome.SENT),  # the request went out whole: Telegram may have taken it
    (httpx.RemoteProtocolError("server disconnected"), Outcome.RETRY),  # a stale keep-alive: never arrived
    (httpx.ConnectError("refused"), Outcome.RETRY),
    (httpx.WriteError("broken pipe"), Outcome.RETRY),
])
async def test_a_failed_connection_is_retried_and_only_a_read_timeout_counts_as_sent(cause, outcome):
    result = await TelegramOutbox(_FailingBot(cause)).send("42", [Reply("⏰ Còn 3 ngày")])  # type: ignore[arg-type]
    assert result.outcome is outcome and "Còn 3 ngày" not in result.reason
