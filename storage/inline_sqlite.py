"""An aiosqlite-shaped SQLite driver that runs each call on the event loop's own thread.

SQLAlchemy's async SQLite dialect talks to aiosqlite, which runs every cursor call on a worker thread:
creating, executing, fetching and closing a cursor are four hand-offs between threads, each a lock,
a wake-up and a loop iteration. For the small statements of a chat turn that costs far more than SQLite
itself (measured in docs/BENCHMARKS.md). Here the same calls run inline: a statement on a local file
takes microseconds, less than one hand-off.

The price: a call blocks the event loop while it runs, so a second process writing to the same file
(which the design does not do: one process per SQLite file, PostgreSQL for several workers) would hold
the bot up for as long as SQLite's busy timeout. `storage.db` plugs this module in through SQLAlchemy's
own aiosqlite dialect; the attributes below are the part of aiosqlite's interface that dialect uses.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from sqlite3 import (  # noqa: F401  (the dialect reads these from the driver module)
    DatabaseError,
    Error,
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    sqlite_version,
    sqlite_version_info,
)
from types import SimpleNamespace
from typing import Any


class Cursor:
    """One sqlite3 cursor behind aiosqlite's awaitable cursor methods."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's request queue: the dialect's isolation-level setter puts a call here."""

    def put_nowait(self, request: tuple[Any, Callable[[], Any]]) -> None:
        future, function = request
        try:
            result = function()
        except Exception as error:  # handed to whoever awaits the future, as aiosqlite does
            future.set_exception(error)
        else:
            future.set_result(result)


class Connection:
    """A sqlite3 connection opened when awaited, with aiosqlite's awaitable methods."""

    def __init__(self, database: str, **kwargs: Any) -> None:
        self._database = database
        self._kwargs = kwargs
        self._conn: sqlite3.Connection | None = None
        self._tx = _RunNow()
        self._thread = SimpleNamespace(daemon=True)  # the dialect marks aiosqlite's thread as a daemon

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def _open(self) -> Connection:
        # Sessions may end on another thread than they started (a pool reset at interpreter exit);
        # each call still runs where it is awaited, never two at once.
        self._conn = sqlite3.connect(self._database, **{"check_same_thread": False, **self._kwargs})
        return self

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    def _open_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._open_connection().isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._open_connection().isolation_level = value

    def cursor(self) -> Cursor:
        return Cursor(self._open_connection().cursor())

    async def commit(self) -> None:
        self._open_connection().commit()

    async def rollback(self) -> None:
        self._open_connection().rollback()

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any],
                              deterministic: bool = False) -> None:
        self._open_connection().create_function(name, num_params, func, deterministic=deterministic)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connect(database: str, *, iter_chunk_size: int = 64, loop: object = None, **kwargs: Any) -> Connection:
    """Like `aiosqlite.connect`: the connection opens when awaited."""
    del iter_chunk_size, loop  # aiosqlite's own tuning knobs; nothing to tune here
    return Connection(database, **kwargs)
