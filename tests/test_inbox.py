"""The inbox, dedupe keys and first contact, on SQLite and PostgreSQL (issue 8, defects 7 and 16)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.app import build_services
from bot.settings import Settings
from handlers import texts
from handlers.core import Incoming
from handlers.dispatcher import Dispatcher
from storage import inbox, queries
from storage.models import ConversationState, InboxUpdate, ProcessedUpdate
from tests.support import FakeClock


@pytest.fixture
async def services_on(database_url, clock):
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    built = await build_services(settings, clock=clock, rng=random.Random(3))
    yield built
    await built.database.dispose()


async def test_two_first_messages_of_a_new_chat_at_once_both_get_answers(services_on):
    """Defect 7: on PostgreSQL both created the conversation state and one died on the unique key."""
    dispatcher = Dispatcher(services_on)
    first = Incoming.from_text("telegram", "77", "/start", delivery_key="m:77:1")
    second = Incoming.from_text("telegram", "77", "/trogiup", delivery_key="m:77:2")
    answers = await asyncio.gather(dispatcher.handle(first), dispatcher.handle(second))
    assert all(texts.SORRY not in reply.text for replies in answers for reply in replies)
    assert all(answers)
    async with services_on.database.session() as session:
        assert len((await session.exec(select(ConversationState))).all()) == 1


async def test_prune_removes_only_old_finished_rows_and_keys(services_on, clock: FakeClock):
    """Defect 16: the table of handled updates is pruned, and unfinished inbox rows are never."""
    database = services_on.database
    received = [inbox.Received(f"m:1:{n}", "1", {"update_id": n}) for n in range(3)]
    async with database.session() as session:
        stored = await inbox.store(await session.connection(), "telegram", received, clock())
        await queries.mark_processed(session, "telegram", "m:1:0", clock())
        await inbox.finish(await session.connection(), stored[0][1].id, clock(), [])
    clock.advance(days=8)
    async with database.session() as session:
        await queries.mark_processed(session, "telegram", "m:1:9", clock())  # a recent key stays
        removed = await inbox.prune(session, clock())
    async with database.session() as session:
        keys = (await session.exec(select(ProcessedUpdate.delivery_key))).all()
        rows = (await session.exec(select(InboxUpdate.delivery_key))).all()
    assert removed == 2
    assert keys == ["m:1:9"]
    assert sorted(rows) == ["m:1:1", "m:1:2"]  # never handled: kept however old


async def test_a_redelivered_update_is_stored_once(services_on, clock):
    database = services_on.database
    item = inbox.Received("c:abc", "5", {"update_id": 1})
    async with database.session() as session:
        assert len(await inbox.store(await session.connection(), "telegram", [item], clock())) == 1
    async with database.session() as session:
        assert await inbox.store(await session.connection(), "telegram", [item], clock()) == []


async def test_unfinished_rows_are_claimed_once_their_lease_ran_out(services_on, clock: FakeClock):
    database = services_on.database
    async with database.session() as session:
        await inbox.store(await session.connection(), "telegram", [inbox.Received("m:1:1", "1", {"update_id": 1})],
                          clock())
    async with database.session() as session:
        assert await inbox.claim_unfinished(session, "telegram", clock(), expired_only=True) == []
    clock.advance(seconds=inbox.LEASE.total_seconds() + 1)
    async with database.session() as session:
        claimed = await inbox.claim_unfinished(session, "telegram", clock(), expired_only=True)
    assert [row.chat_id for row in claimed] == ["1"]
    async with database.session() as session:  # now leased again: nobody else takes it
        assert await inbox.claim_unfinished(session, "telegram", clock() + timedelta(seconds=1),
                                            expired_only=True) == []


async def test_the_inbox_commits_reach_the_disk_before_they_return(sqlite_url):
    """A power cut must not lose an update confirmed to Telegram: its transaction is synchronous=FULL
    (2); the others are NORMAL (1), which in WAL mode a crash of the process cannot hurt."""
    from sqlalchemy import text

    from storage.db import Database

    database = Database(sqlite_url)
    try:
        for _ in range(2):  # and each transaction gets its own level back on the same pooled connection
            async with database.transaction(durable=True) as connection:
                assert (await connection.execute(text("PRAGMA synchronous"))).scalar() == 2
                assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            async with database.session() as session:
                connection = await session.connection()
                assert (await connection.execute(text("PRAGMA synchronous"))).scalar() == 1
    finally:
        await database.dispose()


async def test_a_renewed_lease_keeps_a_long_queued_row_from_other_workers(services_on, clock: FakeClock):
    database = services_on.database
    async with database.session() as session:
        received = [inbox.Received("m:2:1", "2", {"update_id": 1})]
        stored = await inbox.store(await session.connection(), "telegram", received, clock())
    clock.advance(seconds=inbox.LEASE.total_seconds() * 0.9)
    async with database.session() as session:
        await inbox.renew_lease(await session.connection(), stored[0][1].id, clock())
    clock.advance(seconds=inbox.LEASE.total_seconds() * 0.5)  # past the first lease, within the renewed one
    async with database.session() as session:
        assert await inbox.claim_unfinished(session, "telegram", clock(), expired_only=True) == []


async def test_a_deleted_sqlite_file_stops_every_transaction_instead_of_saving_into_nothing(tmp_path, clock):
    """Found in review: after `rm var/hocvuso.db*` the bot said "Đã lưu" into a file no start would see."""
    from storage.db import DatabaseFileGone
    from tests.support import Chat

    path = tmp_path / "gone.db"
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")  # type: ignore[call-arg]
    services = await build_services(settings, clock=clock, rng=random.Random(5))
    try:
        chat = Chat(Dispatcher(services))
        assert "Bạn có đồng ý không?" in await chat.say("/start")
        delete_files(path)
        answer = await chat.say("/trogiup")
        assert texts.SORRY in answer and chat.labels == []  # an apology with nothing to press
        with pytest.raises(DatabaseFileGone):
            async with services.database.transaction():
                pass
    finally:
        await services.database.dispose()


def delete_files(path) -> None:
    """What an operator's `rm var/hocvuso.db*` does."""
    from pathlib import Path

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
