"""Fixtures: a fresh database per test on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import build_services
from bot.settings import Settings
from handlers.context import Services
from handlers.dispatcher import Dispatcher
from tests.support import CHANNELS, Chat, FakeClock

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")

# Modules whose `chat` stays the console (listed here, not marked in the module itself): why each.
CONSOLE_ONLY_MODULES = {
    "tests.test_plain_words": "it checks the console's typed menus (\"Gõ 1 →\") and its rendering",
    "tests.test_contract": "it sends console Incomings and puts the console chat in each step",
    "tests.test_hardening_dispatcher": "it writes the console chat's step and menu into the database",
    "tests.test_certificates": "it finds the person by `chat.user`, the chat id on the console only (with "
                               "`chat.external_id` it would run on all three)",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "console_only(reason): the test's `chat`/`make_chat` are the console only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that talks through `chat` or `make_chat` runs on the console, Telegram and Zalo
    (ids "console", "telegram", "zalo"), unless marked `console_only` or its module is listed above."""
    if "chat_channel" not in metafunc.fixturenames:
        return
    if any("chat_channel" in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize")):
        return  # the test chose its channels itself
    if (metafunc.definition.get_closest_marker("console_only") is not None
            or metafunc.module.__name__ in CONSOLE_ONLY_MODULES):
        return
    metafunc.parametrize("chat_channel", CHANNELS, indirect=True)


async def _create_pg_database(url: str) -> str:
    """A new, empty PostgreSQL database next to the one in TEST_DATABASE_URL; returns its URL."""
    base = make_url(url)
    name = f"hocvuso_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    target = make_url(url)
    admin = create_async_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: an SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hocvuso.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    url = await _create_pg_database(POSTGRES_URL)
    try:
        yield url
    finally:
        await _drop_pg_database(url)


@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped lessons and courses."""
    from content.loader import CONTENT_DIR

    target = tmp_path / "content"
    shutil.copytree(CONTENT_DIR / "lessons", target / "lessons")
    shutil.copytree(CONTENT_DIR / "courses", target / "courses")
    return target


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'hocvuso.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fake_sleep(sleeps: list[float]):
    """A channel's pauses (retries, back-offs, quota waits) recorded, not waited: one turn of the loop."""
    async def _sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)
    return _sleep


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(_env_file=None, database_url=sqlite_url)  # type: ignore[call-arg]


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    built = await build_services(settings, clock=clock, rng=random.Random(7))
    yield built
    await built.database.dispose()


@pytest.fixture
def dispatcher(services: Services) -> Dispatcher:
    return Dispatcher(services)


@pytest.fixture
def chat_channel(request: pytest.FixtureRequest) -> str:
    """The channel the test's chats go through: each of CHANNELS in turn, or the console."""
    return getattr(request, "param", "console")


@pytest.fixture
def make_chat(dispatcher: Dispatcher, chat_channel: str) -> Callable[..., Chat]:
    """`make_chat(user="an", display_name=None, dispatcher=None)`: a person on the test's channel, talking
    to the `dispatcher` fixture's dispatcher unless given another (a restarted process's). A test whose
    services are its own uses `Chat.on(chat_channel, Dispatcher(services), …)` with the `chat_channel` fixture."""

    def make(user: str = "an", display_name: str | None = None, dispatcher: Dispatcher = dispatcher) -> Chat:
        return Chat.on(chat_channel, dispatcher, user=user, display_name=display_name)

    return make


@pytest.fixture
def chat(make_chat: Callable[..., Chat]) -> Chat:
    """The person "an", talking to the bot on the test's channel."""
    return make_chat()


@pytest.fixture(autouse=True)
def _no_env_leaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never read the developer's HOCVUSO_* variables or `.env`."""
    for name in list(os.environ):
        if name.startswith("HOCVUSO_"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "alembic.runtime.migration")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
