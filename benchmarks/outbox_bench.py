"""The outbox sender against the fake Bot API server limiting a bot to 30 messages a second (issue 11).

    .venv/bin/python -m benchmarks.outbox_bench [--messages 10000] [--db PATH | --url POSTGRES_URL]

Each part runs in processes of its own over 127.0.0.1, the fake in one (`--rate` sendMessage a second
per bot, one a second per chat, 429 beyond), the client in another:
- baseline: a bare python-telegram-bot client (no database) that makes the same sendMessage calls at
  the same pacing (`--rate` a second, 16 in flight, a 429 waited out and tried again);
- sender: an outbox of `--messages` reminder rows for as many chats, drained by `OutboxSender` with
  `TelegramOutbox` (bot/outbox.py, bot/channels/telegram.py) as `hocvuso run` builds them;
- kill: the same outbox again; the sender process is killed with SIGKILL once half the messages
  arrived, then started again until the outbox is empty.
Reported: the sustained rate (messages taken by the fake per second between the 5th and 95th
percentile of arrivals), the 429s, duplicates and, for the kill, the rows in hand and the messages
that had gone out unrecorded at the kill, the losses and the duplicates after the restart.
With `--url` (a PostgreSQL server), a database of its own is created and dropped; with neither option
an SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST-token_for-fake"
DEADLINE_TITLE = 'Báo cáo kết quả thực hiện Phong trào "Bình dân học vụ số"'
CHAT_BASE = 7_000_000
IN_FLIGHT = 16  # the sender's default


def reminder(index: int) -> tuple[str, list[list[list[str]]]]:
    """The text and button rows of reminder `index` (one chat each), shaped like issue 11's."""
    text = (f"⏰ Nhắc hạn: {DEADLINE_TITLE}\nHạn: 10/12/2026, còn 7 ngày.\n"
            f"Đơn vị của bạn: Chi hội số {index}: {index % 40} / 40 người đã học xong khóa cơ bản.\n"
            "Bấm nút dưới đây để nhận tệp báo cáo. Khi đã nộp, gõ /danop.")
    return text, [[["📄 Báo cáo của đơn vị", f"report:org:{index}"]]]


def expected_messages(count: int) -> Counter[tuple[int, str]]:
    return Counter((CHAT_BASE + index, reminder(index)[0]) for index in range(count))


# --- the child processes ------------------------------------------------------------------------------

def use_uvloop() -> None:
    """As `hocvuso run` does where uvloop is installed."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve_fake(port: int, rate: float) -> None:
    from tests.fakes.telegram import FakeTelegram

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with FakeTelegram(TOKEN, rate_limit=rate, chat_limit=1.0, port=port):
        print("ready", flush=True)
        await stop.wait()


async def run_baseline(api_url: str, count: int, rate: float) -> None:
    """A bare PTB client: the reminders' sendMessage calls, paced like the sender, no database."""
    from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.error import RetryAfter
    from telegram.request import HTTPXRequest

    from bot.channels.telegram import retry_seconds

    request = HTTPXRequest(connection_pool_size=32, connect_timeout=10, read_timeout=10, write_timeout=10,
                           pool_timeout=10)
    bot = Bot(TOKEN, base_url=f"{api_url}/bot", request=request)
    slots = asyncio.Semaphore(IN_FLIGHT)
    queue = deque(range(count))
    interval, next_start, paused_until = 1.0 / rate, 0.0, 0.0

    async def send(index: int) -> None:
        nonlocal paused_until
        text, rows = reminder(index)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                       for row in rows])
        try:
            await bot.send_message(chat_id=CHAT_BASE + index, text=text, reply_markup=markup)
        except RetryAfter as error:  # the whole bot waits, and this message goes first afterwards
            paused_until = max(paused_until, time.monotonic() + retry_seconds(error))
            queue.appendleft(index)
        finally:
            slots.release()

    tasks: set[asyncio.Task[None]] = set()
    async with bot:
        while queue or tasks:
            if not queue:  # only 429s in flight could bring more
                await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
                continue
            await slots.acquire()
            now = time.monotonic()
            start = max(now, next_start, paused_until)
            next_start = start + interval
            if start > now:
                await asyncio.sleep(start - now)
            task = asyncio.create_task(send(queue.popleft()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


async def run_sender(api_url: str, database_url: str, rate: float) -> None:
    """`OutboxSender` with `TelegramOutbox`, as `hocvuso run` builds them, until the outbox is empty."""
    from bot.channels.telegram import TelegramOutbox, make_bot, make_requests
    from bot.outbox import OutboxSender
    from bot.settings import Settings
    from storage import outbox
    from storage.db import Database

    settings = Settings(_env_file=None, database_url=database_url, telegram_token=TOKEN,  # type: ignore[call-arg]
                        telegram_api_url=api_url)
    database = Database(database_url)
    bot = make_bot(settings, make_requests(settings))
    sender = OutboxSender(database, [TelegramOutbox(bot)], lambda: datetime.now(UTC), rate=rate)
    stop = asyncio.Event()

    async def stop_when_empty() -> None:
        while not stop.is_set():
            async with database.session() as session:
                counts = await outbox.status_counts(session)
            if counts["queued"] + counts["sending"] == 0:
                stop.set()
                sender.wake()
            await asyncio.sleep(0.5)

    async with bot:
        watcher = asyncio.create_task(stop_when_empty())
        await sender.run(stop)
        await watcher
    await database.dispose()


def child_main(options: argparse.Namespace) -> None:
    use_uvloop()
    if options.role == "fake":
        asyncio.run(serve_fake(options.port, options.rate))
    elif options.role == "baseline":
        asyncio.run(run_baseline(options.api, options.messages, options.rate))
    else:
        asyncio.run(run_sender(options.api, options.database_url, options.rate))


# --- the parent -------------------------------------------------------------------------------------

def spawn(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.outbox_bench", *arguments], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


@contextlib.asynccontextmanager
async def fake_server(rate: float) -> AsyncIterator[str]:
    """The fake Bot API server in a process of its own; yields its URL."""
    from tests.fakes.server import free_port

    port = free_port()
    process = spawn("--role", "fake", "--port", str(port), "--rate", str(rate))
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if line.strip() != "ready":
        process.kill()
        raise RuntimeError("the fake server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)


async def fake_stats(api_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        return (await client.get(f"{api_url}/_fake/stats")).json()  # type: ignore[no-any-return]


def sustained_rate(times: Sequence[float]) -> float:
    """Messages a second between the 5th and 95th percentile of arrivals: the start and the tail left out."""
    ordered = sorted(times)
    low, high = len(ordered) * 5 // 100, len(ordered) * 95 // 100
    if high <= low or ordered[high] <= ordered[low]:
        return 0.0
    return (high - low) / (ordered[high] - ordered[low])


def busiest_second(times: Sequence[float]) -> int:
    """The most messages taken within any one second."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def delivery_figures(stats: dict[str, Any], count: int, rate: float) -> dict[str, Any]:
    taken = Counter((chat, text) for chat, text, _ in stats["messages"])
    expected = expected_messages(count)
    times = [at for _, _, at in stats["messages"]]
    measured = sustained_rate(times)
    return {
        "messages_taken": len(stats["messages"]),
        "seconds": round(max(times) - min(times), 1) if times else 0.0,
        "sustained_per_second": round(measured, 2),
        "share_of_limit": round(measured / rate, 3),
        "busiest_second": busiest_second(times),
        "too_many_429": stats["too_many"],
        "duplicates": sum(n - 1 for n in taken.values() if n > 1),
        "lost": sum(1 for key in expected if key not in taken),
        "lost_chats": sorted(key[0] for key in expected if key not in taken)[:20],
        "unexpected": sum(1 for key in taken if key not in expected),
    }


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


async def wait_child(process: subprocess.Popen[str], within: float) -> float:
    """Wait for the client process; returns the CPU seconds it used (no other child ends meanwhile)."""
    before = children_cpu()
    code = await asyncio.to_thread(process.wait, within)
    if code != 0:
        raise RuntimeError(f"a child process ended with {code}")
    return children_cpu() - before


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class Outbox:
    """The benchmark's own database: a fresh SQLite file or PostgreSQL database per part."""

    def __init__(self, sqlite_path: Path | None, postgres_url: str | None) -> None:
        self.sqlite_path = sqlite_path
        self.postgres_url = postgres_url
        self.url = ""

    async def create(self, count: int) -> str:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url
        from sqlalchemy.ext.asyncio import create_async_engine

        if self.postgres_url:
            base = make_url(self.postgres_url)
            name = f"hocvuso_outbox_bench_{uuid.uuid4().hex[:10]}"
            admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
            async with admin.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
            await admin.dispose()
            self.url = base.set(database=name).render_as_string(hide_password=False)
        else:
            assert self.sqlite_path is not None
            remove_sqlite(self.sqlite_path)
            self.url = f"sqlite+aiosqlite:///{self.sqlite_path}"
        await self.fill(count)
        return self.url

    async def fill(self, count: int) -> None:
        from storage import migrate, outbox
        from storage.db import Database

        database = Database(self.url)
        await migrate.upgrade(database.engine)
        now = datetime.now(UTC)
        for first in range(0, count, 1000):
            async with database.session() as session:
                for index in range(first, min(count, first + 1000)):
                    text, rows = reminder(index)
                    await outbox.enqueue(session, key=f"reminder:1:2026-12-10:7:{index}", kind="reminder",
                                         channel="telegram", external_id=str(CHAT_BASE + index),
                                         payload=[{"text": text, "buttons": rows}], now=now)
        await database.dispose()

    async def counts(self) -> dict[str, int]:
        from storage import outbox
        from storage.db import Database

        database = Database(self.url)
        async with database.session() as session:
            counted = await outbox.status_counts(session)
        await database.dispose()
        return counted

    async def sent_chats(self) -> set[int]:
        from sqlmodel import select

        from storage.db import Database
        from storage.models import Delivery

        database = Database(self.url)
        async with database.session() as session:
            rows = (await session.exec(select(Delivery.external_id).where(Delivery.status == "sent"))).all()
        await database.dispose()
        return {int(row) for row in rows}

    async def notes(self) -> dict[str, int]:
        """Rows recorded as sent with a note (sent without Telegram's answer), by note."""
        from sqlmodel import select

        from storage.db import Database
        from storage.models import Delivery

        database = Database(self.url)
        async with database.session() as session:
            rows = (await session.exec(select(Delivery.reason).where(Delivery.status == "sent",
                                                                     Delivery.reason.is_not(None)))).all()
        await database.dispose()
        return dict(Counter(str(reason) for reason in rows))

    async def drop(self) -> None:
        if not self.postgres_url or not self.url:
            return
        from sqlalchemy import text
        from sqlalchemy.engine import make_url
        from sqlalchemy.ext.asyncio import create_async_engine

        admin = create_async_engine(make_url(self.postgres_url), isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(self.url).database}" WITH (FORCE)'))
        await admin.dispose()


async def baseline_part(options: argparse.Namespace) -> dict[str, Any]:
    async with fake_server(options.rate) as api:
        started = time.perf_counter()
        cpu = await wait_child(spawn("--role", "baseline", "--api", api, "--messages", str(options.messages),
                                     "--rate", str(options.rate)), options.messages / options.rate * 3 + 120)
        figures = delivery_figures(await fake_stats(api), options.messages, options.rate)
    return {**figures, "wall_seconds": round(time.perf_counter() - started, 1),
            "client_cpu_ms_per_message": round(cpu / options.messages * 1000, 2)}


async def sender_part(options: argparse.Namespace, store: Outbox) -> dict[str, Any]:
    url = await store.create(options.messages)
    try:
        async with fake_server(options.rate) as api:
            started = time.perf_counter()
            cpu = await wait_child(spawn("--role", "sender", "--api", api, "--database-url", url, "--rate",
                                         str(options.rate)), options.messages / options.rate * 3 + 300)
            figures = delivery_figures(await fake_stats(api), options.messages, options.rate)
        return {**figures, "wall_seconds": round(time.perf_counter() - started, 1),
                "client_cpu_ms_per_message": round(cpu / options.messages * 1000, 2), "outbox": await store.counts(),
                "sent_without_an_answer": await store.notes()}
    finally:
        await store.drop()


async def kill_part(options: argparse.Namespace, store: Outbox) -> dict[str, Any]:
    url = await store.create(options.messages)
    try:
        async with fake_server(options.rate) as api:
            arguments = ("--role", "sender", "--api", api, "--database-url", url, "--rate", str(options.rate))
            process = spawn(*arguments)
            while len((await fake_stats(api))["messages"]) < options.messages // 2:
                if process.poll() is not None:
                    raise RuntimeError("the sender ended before the kill")
                await asyncio.sleep(0.2)
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait)
            await asyncio.sleep(1.0)  # requests the fake was answering at the kill are recorded by now
            at_kill = await fake_stats(api)
            counts_at_kill = await store.counts()
            recorded = await store.sent_chats()
            unrecorded = sum(1 for chat, _, _ in at_kill["messages"] if chat not in recorded)
            started = time.perf_counter()
            await wait_child(spawn(*arguments), options.messages / options.rate * 3 + 300)
            figures = delivery_figures(await fake_stats(api), options.messages, options.rate)
        return {
            "taken_at_kill": len(at_kill["messages"]),
            "rows_leased_at_kill": counts_at_kill["sending"],
            "gone_out_unrecorded_at_kill": unrecorded,
            "restart_wall_seconds": round(time.perf_counter() - started, 1),
            "lost": figures["lost"],
            "lost_chats": figures["lost_chats"],
            "duplicates": figures["duplicates"],
            "too_many_429": figures["too_many_429"],
            "outbox": await store.counts(),
            "sent_without_an_answer": await store.notes(),
        }
    finally:
        await store.drop()


async def bench(options: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="outbox-bench-") as folder:
        sqlite_path = None if options.url else Path(options.db or Path(folder) / "outbox.db")
        store = Outbox(sqlite_path, options.url)
        parts = options.parts.split(",")
        result: dict[str, Any] = {
            "command": " ".join([".venv/bin/python -m benchmarks.outbox_bench", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                        "sqlite": sqlite3.sqlite_version},
            "database": "postgresql" if options.url else "sqlite",
            "messages": options.messages, "limit_per_second": options.rate,
        }
        if "baseline" in parts:
            result["baseline_bare_ptb"] = await baseline_part(options)
        if "sender" in parts:
            result["outbox_sender"] = await sender_part(options, store)
        if "kill" in parts:
            result["kill_and_restart"] = await kill_part(options, store)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="an SQLite file to use (replaced)")
    where.add_argument("--url", help="a PostgreSQL server URL; a database of its own is made there and dropped")
    parser.add_argument("--rate", type=float, default=30.0, help="the fake's limit and the sender's rate")
    parser.add_argument("--parts", default="baseline,sender,kill")
    parser.add_argument("--role", choices=["fake", "baseline", "sender"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.role:
        child_main(options)
        return
    print(json.dumps(asyncio.run(bench(options)), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
