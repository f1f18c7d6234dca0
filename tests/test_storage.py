"""Storage on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage import migrate, queries
from storage.db import Database
from storage.models import (
    ALL_TABLES,
    Activity,
    Answer,
    ConversationState,
    Household,
    HouseholdCodeTry,
    Person,
    QuizAttempt,
)

NOW = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)


@pytest.fixture
async def database(database_url):
    db = Database(database_url)
    await migrate.upgrade(db.engine)
    yield db
    await db.dispose()


async def test_migrations_create_every_table_and_reach_head(database):
    assert await migrate.current_revision(database.engine) == migrate.head_revision()
    async with database.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert {model.__tablename__ for model in ALL_TABLES} <= tables


async def test_upgrade_twice_changes_nothing(database):
    await migrate.upgrade(database.engine)
    assert await migrate.current_revision(database.engine) == migrate.head_revision()


async def test_sqlite_runs_in_wal_mode(sqlite_url):
    db = Database(sqlite_url)
    async with db.engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    await db.dispose()
    assert mode == "wal"


async def test_times_come_back_aware_and_equal(database):
    async with database.session() as session:
        person = await queries.create_person(session, "console", "an", NOW)
    async with database.session() as session:
        stored = await session.get(Person, person.id)
    assert stored.consent_at == NOW and stored.consent_at.tzinfo is not None


async def test_json_state_round_trips(database):
    async with database.session() as session:
        state = await queries.load_state(session, "telegram", "42", NOW)
        state.data = {"lesson": "vneid", "answers": {"q1": 2}}
        state.menu = ["menu", "qa:q2:0"]
        session.add(state)
    async with database.session() as session:
        again = await queries.load_state(session, "telegram", "42", NOW)
    assert again.data == {"lesson": "vneid", "answers": {"q1": 2}} and again.menu == ["menu", "qa:q2:0"]


async def test_an_update_is_marked_processed_once(database):
    async with database.session() as session:
        assert await queries.mark_processed(session, "telegram", "1001", NOW)
        assert not await queries.mark_processed(session, "telegram", "1001", NOW)
        assert await queries.mark_processed(session, "zalo", "1001", NOW)


async def test_answers_are_unique_per_attempt_and_question(database):
    async with database.session() as session:
        person = await queries.create_person(session, "console", "an", NOW)
        attempt = QuizAttempt(person_id=person.id, lesson_id="vneid", question_ids=["q1"], total=1, started_at=NOW)
        session.add(attempt)
        await session.flush()
        session.add(Answer(attempt_id=attempt.id, question_id="vneid/q1", option_index=0, correct=True,
                           answered_at=NOW))
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            session.add(Answer(attempt_id=attempt.id, question_id="vneid/q1", option_index=1, correct=False,
                               answered_at=NOW))


async def test_settings_seed_only_an_empty_directory(database):
    for villages in (["Thôn B", "Thôn A", "Thôn B"], ["Thôn C"]):  # the second start must not add Thôn C
        async with database.session() as session:
            await queries.seed_reference_data(session, villages, ["Hội Nông dân xã", "Trường THCS"])
    async with database.session() as session:
        villages = await queries.all_villages(session)
        organisations = await queries.all_organisations(session)
    assert [v.name for v in villages] == ["Thôn B", "Thôn A"]
    assert [(o.name, o.kind) for o in organisations] == [("Hội Nông dân xã", "doan-the"), ("Trường THCS", "truong-hoc")]


async def test_household_codes_never_collide(database):
    class Repeating(random.Random):
        """Gives the same code twice before a new one, to force a collision."""

        def __init__(self):
            super().__init__()
            self.digits = iter("111111" "111111" "222222")

        def choice(self, seq):
            return next(self.digits)

    rng = Repeating()
    async with database.session() as session:
        first = await queries.create_household(session, None, rng, 6, NOW)
        second = await queries.create_household(session, None, rng, 6, NOW)
    assert (first.code, second.code) == ("111111", "222222")


async def test_erase_keeps_only_anonymous_activity(database):
    async with database.session() as session:
        household = await queries.create_household(session, None, random.Random(1), 6, NOW)
        person = await queries.create_person(session, "console", "an", NOW)
        person.household_id = household.id
        session.add(person)
        await queries.log_activity(session, person, "lesson_opened", NOW, "vneid")
        await queries.load_state(session, "console", "an", NOW)
    async with database.session() as session:
        person = await session.get(Person, person.id)
        await queries.erase_person(session, person)
    async with database.session() as session:
        assert (await session.exec(select(Person))).all() == []
        assert (await session.exec(select(Household))).all() == []
        assert (await session.exec(select(ConversationState))).all() == []
        assert [a.person_id for a in (await session.exec(select(Activity))).all()] == [None]


async def test_streak_counts_days_in_a_row():
    today = NOW.date()
    days = {today - timedelta(days=n) for n in (0, 1, 2, 4)}
    assert queries.streak(days, today) == 3
    assert queries.streak(days - {today}, today) == 2  # yesterday still counts until the day ends
    assert queries.streak(set(), today) == 0


async def test_sqlite_transactions_take_the_write_lock_at_begin(sqlite_url):
    """A read-then-write transaction holds the lock from its first read, so writers queue instead of failing."""
    import sqlite3

    from sqlalchemy.engine import make_url

    db = Database(sqlite_url)
    await migrate.upgrade(db.engine)
    async with db.session() as session:
        await queries.load_state(session, "console", "an", NOW)
        other = sqlite3.connect(make_url(sqlite_url).database, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    await db.dispose()


async def test_the_migrations_match_the_models(database):
    """A model changed without a migration fails here (autogenerate would find a difference)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_sqlite_statements_run_on_the_event_loop_thread(sqlite_url):
    """The inline driver: no hand-off to a worker thread per cursor call (docs/BENCHMARKS.md)."""
    import threading

    from sqlalchemy import event

    db = Database(sqlite_url)
    threads: list[int] = []

    def register(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.create_function("thread_of_call", 0, lambda: threads.append(threading.get_ident()) or 1)

    event.listen(db.engine.sync_engine, "connect", register)
    async with db.engine.connect() as connection:
        assert (await connection.execute(text("SELECT thread_of_call()"))).scalar() == 1
    await db.dispose()
    assert threads == [threading.get_ident()]


async def test_sqlite_keeps_foreign_keys_and_rolls_back_a_failed_transaction(sqlite_url):
    db = Database(sqlite_url)
    await migrate.upgrade(db.engine)
    async with db.session() as session:
        person = await queries.create_person(session, "console", "an", NOW)
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            session.add(Person(id=person.id, consent_at=NOW, created_at=NOW))  # the same key again
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            session.add(QuizAttempt(person_id=person.id + 1000, lesson_id="vneid", question_ids=[], total=0,
                                    started_at=NOW))  # nobody with that id
    async with db.session() as session:
        people = (await session.exec(select(Person))).all()
        attempts = (await session.exec(select(QuizAttempt))).all()
    await db.dispose()
    assert [p.id for p in people] == [person.id] and attempts == []


async def test_a_ping_waits_behind_an_open_transaction(sqlite_url):
    """/healthz's query takes its turn: on the loop's thread it must not wait for SQLite's write lock."""
    import asyncio

    db = Database(sqlite_url)
    await migrate.upgrade(db.engine)
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with db.session() as session:
            await queries.load_state(session, "console", "an", NOW)
            inside.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    await inside.wait()
    ping = asyncio.create_task(db.ping())
    release.set()
    await asyncio.gather(holder, ping)  # a ping outside the queue fails here with "database is locked"
    await db.dispose()


async def test_household_code_tries_are_counted_per_chat_and_pruned(database):
    hour = 60
    async with database.session() as session:
        for minutes in (0, 30, 50):
            await queries.record_household_code_try(session, "telegram", "42", NOW + timedelta(minutes=minutes), hour)
        await queries.record_household_code_try(session, "zalo", "42", NOW, hour)
    later = NOW + timedelta(minutes=70)
    async with database.session() as session:
        counted = await queries.household_code_tries(session, "telegram", "42", later - timedelta(minutes=hour))
        assert counted == [NOW + timedelta(minutes=30), NOW + timedelta(minutes=50)]
        await queries.record_household_code_try(session, "telegram", "42", later, hour)  # prunes the 0-minute try
    async with database.session() as session:
        rows = (await session.exec(select(HouseholdCodeTry.channel, HouseholdCodeTry.at))).all()
    assert sorted(rows) == sorted([("zalo", NOW), ("telegram", NOW + timedelta(minutes=30)),
                                   ("telegram", NOW + timedelta(minutes=50)), ("telegram", later)])


async def test_a_member_is_removed_only_from_the_household_they_are_in(database):
    async with database.session() as session:
        ours = await queries.create_household(session, None, random.Random(1), 6, NOW)
        theirs = await queries.create_household(session, None, random.Random(2), 6, NOW)
        person = await queries.create_person(session, "console", "an", NOW)
        person.household_id = theirs.id
        session.add(person)
    async with database.session() as session:
        assert not await queries.remove_from_household(session, person.id, ours.id)
        assert await queries.household_by_code(session, theirs.code, leaving=ours.id) is not None
    async with database.session() as session:
        assert (await session.get(Person, person.id)).household_id == theirs.id
        assert await queries.remove_from_household(session, person.id, theirs.id)
    async with database.session() as session:
        assert (await session.get(Person, person.id)).household_id is None


async def test_long_reads_leave_the_event_loop_thread(database_url):
    """Database.read: on SQLite a figure's statements run on a worker thread, never the loop's."""
    import threading

    from sqlalchemy import func, select

    from storage.models import Person

    db = Database(database_url)
    await migrate.upgrade(db.engine)
    async with db.session() as session:
        session.add(Person(full_name="An", consent_at=NOW, created_at=NOW))

    def count(connection):
        return threading.get_ident(), connection.execute(select(func.count()).select_from(Person)).scalar_one()

    thread, people = await db.read(count)
    assert people == 1
    if database_url.startswith("sqlite"):
        assert thread != threading.get_ident()
    await db.dispose()


async def test_a_directory_household_stays_when_its_last_member_leaves(database):
    async with database.session() as session:
        listed = Household(code="123456", head_name="Nguyễn Văn Cả", in_directory=True, created_at=NOW)
        made_in_chat = Household(code="654321", created_at=NOW)
        session.add_all([listed, made_in_chat])
        await session.flush()
        for household in (listed, made_in_chat):
            await queries.settle_household(session, household.id)
    async with database.session() as session:
        assert (await session.exec(select(Household.code))).all() == ["123456"]


async def test_a_long_read_never_creates_a_deleted_database_file(sqlite_url):
    from pathlib import Path

    from sqlalchemy import select as core_select
    from sqlalchemy.engine import make_url as parse
    from sqlalchemy.exc import OperationalError

    db = Database(sqlite_url)
    await migrate.upgrade(db.engine)
    path = Path(parse(sqlite_url).database)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    with pytest.raises(OperationalError, match="unable to open database file"):
        await db.read(lambda connection: connection.execute(core_select(1)).scalar())
    assert not path.exists()  # noqa: ASYNC240 - a test checking a file, nothing else runs
    await db.dispose()
