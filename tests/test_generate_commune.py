"""benchmarks/generate_commune.py: the small sizes on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

Row counts come out exactly as asked, every reference points at a row that exists (SANITY), the schema is
the migrations' own, and the same seed gives the same rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks import generate_commune as gen
from content.loader import load_catalog
from tests.conftest import POSTGRES_URL, _create_pg_database, _drop_pg_database

NOW = datetime(2026, 11, 26, tzinfo=UTC)
PERIOD_START = "2025-12-11"  # after 10/12 of last year


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog()


def _sqlite_schema(path: Path) -> list[tuple[str, str, list[str]]]:
    """Tables and indexes as SQLite keeps them; a table's lines sorted, since Alembic's batch mode on SQLite
    writes a table's constraints in no fixed order (two migrations of empty files differ there)."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                                  "ORDER BY type, name").fetchall()
    return [(kind, name, sorted(line.strip().rstrip(",") for line in sql.splitlines())) for kind, name, sql in rows]


def _check_sqlite(path: Path, sizes: gen.Sizes) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    count = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in gen.TABLES}
    assert count["person"] == count["channelaccount"] == count["conversationstate"] == sizes.people
    assert count["household"] == sizes.households
    assert count["organisation"] == sizes.organisations
    assert count["village"] == sizes.villages
    assert count["answer"] == sizes.answers
    assert count["activity"] == sizes.activity
    for name, query in gen.SANITY.items():
        assert connection.execute(query).fetchone()[0] == 0, name
    assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    assert connection.execute("PRAGMA user_version").fetchone()[0] == sizes.marker
    return connection


def test_small_commune_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "commune.db"
    gen.main(["commune", "--db", str(path), "--sizes", "small", "--now", "2026-11-26"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    sizes = gen.SMALL_COMMUNE
    assert report["rows"]["answer"] == sizes.answers
    connection = _check_sqlite(path, sizes)
    one = lambda query: connection.execute(query).fetchone()[0]  # noqa: E731

    # The schema is exactly the migrations' (indexes dropped for the load are back, by the same SQL).
    fresh = tmp_path / "fresh.db"
    asyncio.run(gen._migrate(f"sqlite+aiosqlite:///{fresh}"))
    assert _sqlite_schema(path) == _sqlite_schema(fresh)

    # What the report needs is there: both consent versions, target groups, VNeID, memberships both
    # confirmed and claimed, population figures for the commune and (all but one) per village.
    assert {row[0] for row in connection.execute("SELECT DISTINCT consent_version FROM person")} == {1, 2}
    assert one("SELECT count(DISTINCT target_group) FROM person") == 4
    assert {row[0] for row in connection.execute("SELECT DISTINCT vneid_level2 FROM person")} >= {"yes", "no"}
    assert one("SELECT count(*) FROM membership WHERE confirmed") > 0
    assert one("SELECT count(*) FROM membership WHERE NOT confirmed AND confirmed_at IS NULL") > 0
    assert one("SELECT count(*) FROM membership WHERE organisation_id = 1") == sizes.big_organisation
    assert one("SELECT count(*) FROM populationfigure WHERE village_id IS NULL") == 4
    assert one("SELECT count(*) FROM populationfigure WHERE village_id IS NOT NULL") == 4 * sizes.villages - 1
    assert one("SELECT count(*) FROM organisation WHERE parent_id IS NOT NULL") == 2
    assert one("SELECT count(*) FROM household WHERE in_directory AND head_name IS NOT NULL") > 0
    assert one("SELECT count(*) FROM quizattempt WHERE kind = 'review'") > 0
    assert one("SELECT count(*) FROM quizattempt WHERE finished_at IS NULL") > 0
    assert one("SELECT count(*) FROM activity WHERE person_id IS NULL") == round(sizes.activity * gen.GHOST_ACTIVITY)

    # Answers over the last 14 months, most but not all of them in this year's reporting period.
    earliest = (NOW - timedelta(days=gen.HISTORY_DAYS + 1)).strftime("%Y-%m-%d")
    assert one(f"SELECT count(*) FROM answer WHERE answered_at < '{earliest}' OR answered_at > '2026-11-26'") == 0
    share = one(f"SELECT avg(answered_at > '{PERIOD_START}') FROM answer")
    assert 0.5 < share < 0.95

    # An existing file is not overwritten unless asked.
    with pytest.raises(SystemExit):
        gen.main(["commune", "--db", str(path), "--sizes", "small"])


def test_small_province_on_sqlite(tmp_path: Path, catalog) -> None:  # type: ignore[no-untyped-def]
    sizes = gen.SMALL_PROVINCE
    path = tmp_path / "province.db"
    gen.generate(path, sizes, catalog, NOW)
    connection = _check_sqlite(path, sizes)
    # Each commune's people live in its villages and join its organisations.
    names = [row[0] for row in connection.execute("SELECT name FROM village ORDER BY id")]
    assert len({name.partition(" xã ")[2] for name in names}) == sizes.communes
    pairs = connection.execute(
        "SELECT v.name, o.name FROM membership m JOIN person p ON p.id = m.person_id "
        "JOIN village v ON v.id = p.village_id JOIN organisation o ON o.id = m.organisation_id").fetchall()
    assert pairs
    assert all(organisation.endswith(" " + village.partition(" xã ")[2]) for village, organisation in pairs)


def test_the_same_seed_gives_the_same_rows(catalog) -> None:  # type: ignore[no-untyped-def]
    def digest(sizes: gen.Sizes) -> str:
        hasher = hashlib.sha256()
        for table, rows in gen.Plan(sizes, catalog, NOW).rows(int):
            hasher.update(table.encode())
            hasher.update(repr(rows).encode())
        return hasher.hexdigest()

    sizes = gen.SMALL_PROVINCE
    assert digest(sizes) == digest(sizes)
    other = gen.Sizes(sizes.people, sizes.households, sizes.organisations, sizes.answers, sizes.activity,
                      sizes.villages, sizes.big_organisation, sizes.seed + 1, sizes.communes)
    assert digest(other) != digest(sizes)


def test_sqlite_stores_times_as_the_bot_does() -> None:
    connection = sqlite3.connect(":memory:")
    moments = [datetime(2000, 1, 1, tzinfo=UTC), NOW, NOW - timedelta(microseconds=1),
               datetime(2025, 12, 10, 23, 59, 59, 123, tzinfo=UTC)]
    for moment in moments:
        us = gen.to_us(moment)
        stored = connection.execute("SELECT " + gen.SQLITE_TIME.format(n=1), (us,)).fetchone()[0]
        assert stored == gen.sqlite_time(us) == moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_refuses_the_test_database() -> None:
    with pytest.raises(SystemExit):
        gen.database_name("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    assert gen.database_name("postgresql+asyncpg://postgres@127.0.0.1:5432/hocvuso_x") == "hocvuso_x"


@pytest.mark.skipif(not POSTGRES_URL, reason="TEST_DATABASE_URL is not set")
async def test_small_province_on_postgres(catalog) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    sizes = gen.SMALL_PROVINCE
    url = await _create_pg_database(POSTGRES_URL)  # type: ignore[arg-type]
    reference = await _create_pg_database(POSTGRES_URL)  # type: ignore[arg-type]
    try:
        result = await gen.load_postgres(url, sizes, catalog, NOW)
        assert result["rows"]["answer"] == sizes.answers
        assert result["rows"]["activity"] == sizes.activity
        assert result["rows"]["person"] == sizes.people
        assert result["rows"]["household"] == sizes.households
        assert result["rows"]["organisation"] == sizes.organisations
        await gen._migrate(reference)
        connection = await asyncpg.connect(gen.asyncpg_dsn(url))
        fresh = await asyncpg.connect(gen.asyncpg_dsn(reference))
        try:
            for name, query in gen.SANITY.items():
                assert await connection.fetchval(query) == 0, name
            # Keys, foreign keys and indexes are the migrations' own, by name and definition.
            assert await gen.schema_of(connection) == await gen.schema_of(fresh)
            # The next row the bot adds gets a fresh id.
            for table in gen.TABLES:
                highest = await connection.fetchval(f'SELECT coalesce(max(id), 0) FROM "{table}"')
                assert await connection.fetchval(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))") > highest
            stored = await connection.fetchval("SELECT max(answered_at) FROM answer")
            assert NOW - timedelta(days=2) < stored.replace(tzinfo=UTC) < NOW
        finally:
            await connection.close()
            await fresh.close()
        with pytest.raises(SystemExit):  # a database that holds people is never filled again
            await gen.prepare_database(url, replace=False)
    finally:
        await _drop_pg_database(url)
        await _drop_pg_database(reference)
