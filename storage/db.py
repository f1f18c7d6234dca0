"""The async engine and sessions, for SQLite (WAL) and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import inline_sqlite
from storage.turn_queue import TurnQueue

T = TypeVar("T")

# Long reads (figures, reports) of every Database share two threads: ten leaders asking at once queue
# here instead of taking the CPU from the chats.
READ_THREADS = 2


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of an SQLite file on first use (`./var/` by default)."""
    database = make_url(url).database
    if is_sqlite(url) and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _foreign_keys_off(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _tune_sqlite(dbapi_connection: object, _record: object) -> None:
    # Let SQLAlchemy, not the driver, start transactions (see _begin_immediate).
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets readers go on while one writer commits; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL: in WAL mode a crash of the process loses nothing; a power cut may lose the last commits,
    # which is why a transaction that must survive one (the inbox, before Telegram is told an update
    # arrived) asks for FULL (see _begin_immediate); its fsync also makes every earlier commit durable.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Deleted rows are overwritten with zeros, so an erased person's name leaves the file (and the
    # WAL) on every build; the compile-time default differs between builds.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # The safety level can only change between transactions, so it is set here, just before BEGIN:
    # FULL (fsync at commit: 0.2 ms on one VM, 4 ms median on another, docs/BENCHMARKS.md "Zalo") only for
    # transactions opened with durable=True.
    wanted = "FULL" if connection.get_execution_options().get("durable") else "NORMAL"
    if connection.info.get("synchronous") != wanted:
        connection.exec_driver_sql(f"PRAGMA synchronous={wanted}")
        connection.info["synchronous"] = wanted
    # A transaction that reads and then writes must hold the write lock from its start: otherwise two
    # concurrent ones fail with "database is locked" when the second tries to write, and SQLite's busy
    # timeout cannot help. With the lock taken at BEGIN, writers simply queue.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, foreign_keys: bool = True) -> AsyncEngine:
    """An engine for `url`; SQLite files get their folder, WAL mode, immediate transactions and the inline driver.

    Parameters are hidden from every error SQLAlchemy raises: they are names, household codes and what
    people typed, and an error ends up in the log. `foreign_keys=False` is for migrations only (see
    storage.migrate).
    """
    ensure_sqlite_folder(url)
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)
    engine = create_async_engine(url, module=AsyncAdapt_aiosqlite_dbapi(inline_sqlite, sqlite3), hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    if not foreign_keys:
        event.listen(engine.sync_engine, "connect", _foreign_keys_off)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _tune_sqlite_reader(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]  # BEGIN comes from _begin_read
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA query_only=ON")  # a reader never writes, whatever it is given
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_read(connection: Connection) -> None:
    # A deferred BEGIN: every statement of one read sees the same snapshot of the WAL.
    connection.exec_driver_sql("BEGIN")


READ_NICENESS = 10


def _lower_priority() -> None:
    """A long read yields the CPU to the chats' turns: on Linux a thread has its own nice value, so the
    read threads go behind the event loop's thread (on two cores ten leaders' counts otherwise doubled
    the residents' p99, docs/BENCHMARKS.md). Elsewhere the call would lower the whole process: skipped."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READ_NICENESS)


def create_sqlite_reader(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, for reads run on worker threads (see Database.read)."""
    database = Path(make_url(url).database or "").resolve()
    # mode=rw: a reader never creates the file. Were it deleted under the running bot, an empty file
    # made here would be what the next start finds and migrates.
    engine = create_sync_engine(f"sqlite:///file:{database.as_posix()}?mode=rw&uri=true",
                                connect_args={"check_same_thread": False}, hide_parameters=True)
    event.listen(engine, "connect", _tune_sqlite_reader)
    event.listen(engine, "begin", _begin_read)
    return engine


class DatabaseFileGone(RuntimeError):
    """The SQLite file was deleted or replaced while the bot ran: what it writes now would be lost."""


class Database:
    """Owns the engine and hands out sessions that keep objects usable after commit."""

    def __init__(self, url: str, read_threads: int = READ_THREADS) -> None:
        """`read_threads`: how many long reads run at once on SQLite (see `read`)."""
        self.url = url
        self._read_thread_count = read_threads
        self.engine = create_engine(url)
        database = make_url(url).database if is_sqlite(url) else None
        self._file = Path(database) if database and database != ":memory:" else None
        self._file_identity: tuple[int, int] | None = None
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite has one writer at a time, and a connection waiting for the lock sleeps in steps of up
        # to 100 ms. Queueing this process's transactions here instead keeps them back to back.
        self._queue = TurnQueue() if is_sqlite(url) else None
        self._reader: Engine | None = None
        self._read_threads: ThreadPoolExecutor | None = None

    def _turn(self, urgent: bool) -> contextlib.AbstractAsyncContextManager[None]:
        """This process's place in the SQLite queue (PostgreSQL needs none)."""
        return self._queue.hold(urgent=urgent) if self._queue else contextlib.nullcontext()

    @asynccontextmanager
    async def session(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error.

        `urgent` (a few microseconds of bookkeeping) goes before the transactions waiting on SQLite.
        """
        async with self._turn(urgent), self._sessions() as session:
            try:
                if self._file is not None:
                    await session.connection()  # opens (and on first use creates) the file first
                    self._check_file()
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False, durable: bool = False) -> AsyncIterator[AsyncConnection]:
        """A Core connection in one transaction, for small statements that need no ORM session.

        `durable`: on SQLite the commit is on disk before it returns (PostgreSQL's always is).
        """
        async with self._turn(urgent), self.engine.connect() as connection:
            self._check_file()
            if durable:
                await connection.execution_options(durable=True)
            async with connection.begin():
                yield connection

    def _check_file(self) -> None:
        """Refuse to go on once the SQLite file is not the one opened at start.

        SQLite keeps writing to a deleted file through its open handle, so every answer would say
        "saved" while the next start finds an empty database. One stat per transaction finds it.
        """
        if self._file is None:
            return
        try:
            status = os.stat(self._file)
        except FileNotFoundError:
            raise DatabaseFileGone from None
        identity = (status.st_dev, status.st_ino)
        if self._file_identity is None:
            self._file_identity = identity
        elif identity != self._file_identity:
            raise DatabaseFileGone

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` (plain synchronous SQLAlchemy Core on one connection) as one consistent read.

        For long reads (figures, reports) that must not hold up the chats. On SQLite statements of the
        async engine run on the event loop's thread (storage/inline_sqlite.py), so a 100 ms aggregate
        there would stall every chat for 100 ms: `work` runs on a worker thread instead, on its own
        read-only connection (WAL lets it read while turns write), and sqlite3 lets go of the GIL while
        SQLite computes. On PostgreSQL it runs through `run_sync`, whose I/O is asynchronous, in one
        REPEATABLE READ transaction so every figure comes from the same moment.
        """
        if not is_sqlite(self.url):
            async with self.engine.connect() as connection:
                connection = await connection.execution_options(isolation_level="REPEATABLE READ")
                async with connection.begin():
                    return await connection.run_sync(work)
        if self._reader is None:
            self._reader = create_sqlite_reader(self.url)
            self._read_threads = ThreadPoolExecutor(self._read_thread_count, thread_name_prefix="hocvuso-read",
                                                    initializer=_lower_priority)
        reader = self._reader

        def run() -> T:
            with reader.begin() as connection:
                return work(connection)

        return await asyncio.get_running_loop().run_in_executor(self._read_threads, run)

    async def ping(self) -> None:
        """One trivial query, queued like every transaction: on SQLite a query outside the queue would
        wait for the write lock on the event loop's own thread, stalling the transaction that holds it."""
        async with self.session() as session:
            await (await session.connection()).execute(text("SELECT 1"))

    async def check_writable(self) -> None:
        """Write one row back unchanged: a read-only SQLite file (or a read-only PostgreSQL replica) is
        found at start, not at the first person's message. Needs the migrations applied."""
        async with self.session() as session:
            await (await session.connection()).execute(text("UPDATE alembic_version SET version_num = version_num"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._read_threads is not None:
            self._read_threads.shutdown(wait=True)
        if self._reader is not None:
            self._reader.dispose()
